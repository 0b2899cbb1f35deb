package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// composeService is the part of docker-compose.yml's kod service the test
// turns into `docker run` flags, as Compose would.
type composeService struct {
	Image       string            `yaml:"image"`
	User        string            `yaml:"user"`
	GroupAdd    []string          `yaml:"group_add"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
}

var composeVarRE = regexp.MustCompile(`\$\{([A-Z_]+)(?::([-?])([^}]*))?\}`)

// interpolate applies Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}
// with vars; an unset required variable fails the test with its message.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return composeVarRE.ReplaceAllStringFunc(s, func(m string) string {
		p := composeVarRE.FindStringSubmatch(m)
		if v := vars[p[1]]; v != "" {
			return v
		}
		if p[2] == "?" {
			t.Fatalf("docker-compose.yml: %s: %s", p[1], p[3])
		}
		return p[3]
	})
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestComposeImageOffline: the kod image built offline (scripts/
// build-kod-image) and started as docker-compose.yml's kod service would be
// (its user, the socket's group, socket and data volume, environment,
// ports) creates its admin token on first start, runs a pushed workflow's
// step as a sibling container through the mounted socket, and keeps its
// data, token and runs across a container restart.
func TestComposeImageOffline(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc, ok := file.Services["kod"]
	if !ok {
		t.Fatal("docker-compose.yml has no kod service")
	}

	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	tag, name := "kod/kod:e2e-"+suffix, "kod-e2e-compose-"+suffix
	build := exec.Command("scripts/build-kod-image", tag)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-kod-image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", tag).Run() })
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &st); err != nil {
		t.Fatalf("the Docker socket: %v", err)
	}
	vars := map[string]string{"DOCKER_GID": fmt.Sprint(st.Gid), "KOD_IMAGE": tag}

	args := []string{"run", "-d", "--name", name, "--label", "dev.kod.test=compose"}
	if svc.User != "" {
		args = append(args, "--user", interpolate(t, svc.User, vars))
	}
	for _, g := range svc.GroupAdd {
		args = append(args, "--group-add", interpolate(t, g, vars))
	}
	for k, v := range svc.Environment {
		args = append(args, "-e", k+"="+interpolate(t, v, vars))
	}
	for _, p := range svc.Ports {
		p = interpolate(t, p, vars)
		args = append(args, "-p", "127.0.0.1::"+p[strings.LastIndex(p, ":")+1:]) // a free host port
	}
	var volumes []string
	for _, v := range svc.Volumes {
		src, dst, _ := strings.Cut(interpolate(t, v, vars), ":")
		if !strings.HasPrefix(src, "/") { // a named volume: this test's own
			src = name + "-" + src
			docker(t, "volume", "create", "--label", "dev.kod.test=compose", src)
			volumes = append(volumes, src)
		}
		args = append(args, "-v", src+":"+dst)
	}
	image := interpolate(t, svc.Image, vars)
	if image != tag {
		t.Fatalf("the service's image is %q, not KOD_IMAGE (%s)", image, tag)
	}
	docker(t, append(args, image)...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		// A failed run can leave its step objects behind when kod is
		// killed here: remove whatever carries one of its instance ids.
		logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
		exec.Command("docker", "rm", "-f", name).Run()
		removeInstanceObjects(string(logs))
		for _, v := range volumes {
			exec.Command("docker", "volume", "rm", "-f", v).Run()
		}
	})

	// started waits for the n-th "kod is listening" and returns the API.
	started := func(n int) *server {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			if strings.Count(string(logs), `msg="kod is listening"`) >= n {
				break
			}
			if state := docker(t, "inspect", "-f", "{{.State.Status}}", name); state == "exited" || time.Now().After(deadline) {
				t.Fatalf("kod did not start (%s):\n%s", state, logs)
			}
			time.Sleep(200 * time.Millisecond)
		}
		hostPort := docker(t, "port", name, "3000/tcp")
		return &server{t: t, URL: "http://" + strings.Split(hostPort, "\n")[0]}
	}
	s := started(1)
	token := docker(t, "exec", name, "cat", "/var/lib/kod/admin-token")
	logs := docker(t, "logs", name)
	if !strings.Contains(logs, "created the admin token") || !strings.Contains(logs, "path=/var/lib/kod/admin-token") || strings.Contains(logs, token) {
		t.Errorf("first start log:\n%s", logs)
	}
	if uid := docker(t, "exec", name, "id", "-u"); uid != "10001" {
		t.Errorf("kod runs as uid %s", uid)
	}
	if groups := docker(t, "exec", name, "id", "-G"); !strings.Contains(" "+groups+" ", " "+vars["DOCKER_GID"]+" ") {
		t.Errorf("kod's groups %q lack the socket's %s", groups, vars["DOCKER_GID"])
	}

	s.mustDo("POST", "/repos", token, map[string]string{"name": "composed"}, http.StatusCreated, nil)
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"where\"\nrun = \"echo step on $(hostname)\"\n"})
	p.git("push", "-q", s.gitURL("composed", token), "main")
	var runs []forge.Run
	s.mustDo("GET", "/repos/composed/workflows", token, nil, http.StatusOK, &runs)
	if len(runs) != 1 {
		t.Fatalf("runs after the push: %+v", runs)
	}
	id := runs[0].ID
	var run forge.Run
	waitFor(t, 3*time.Minute, "the run to end", func() bool {
		s.mustDo("GET", "/repos/composed/workflows/"+id, token, nil, http.StatusOK, &run)
		return run.Status.Done()
	})
	if run.Status != forge.RunCompleted || len(run.Result.Steps) != 1 {
		t.Fatalf("run: %s %s %+v", run.Status, run.Error, run.Result)
	}
	stepHost := strings.TrimSpace(strings.TrimPrefix(run.Result.Steps[0].Output, "step on "))
	kodHost := docker(t, "inspect", "-f", "{{.Config.Hostname}}", name)
	if stepHost == "" || stepHost == kodHost {
		t.Errorf("the step ran on %q, the kod container is %q: not a sibling container", stepHost, kodHost)
	}

	docker(t, "restart", name)
	s = started(2)
	s.mustDo("GET", "/repos/composed/workflows/"+id, token, nil, http.StatusOK, &run)
	if run.Status != forge.RunCompleted {
		t.Errorf("the run after a restart: %s", run.Status)
	}
	if again := docker(t, "exec", name, "cat", "/var/lib/kod/admin-token"); again != token {
		t.Errorf("the restart replaced the admin token")
	}
	if !strings.Contains(docker(t, "logs", name), "using the admin token from its file") {
		t.Errorf("the restart did not reuse the token file")
	}
	if refs := p.git("ls-remote", s.gitURL("composed", token)); !strings.Contains(refs, "refs/heads/main") {
		t.Errorf("refs after a restart: %s", refs)
	}
}

// removeInstanceObjects removes the containers, volumes and networks of every
// kod instance named in logs (`instance=<id>` of "kod is listening").
func removeInstanceObjects(logs string) {
	for _, m := range regexp.MustCompile(`instance=([a-z0-9]+)`).FindAllStringSubmatch(logs, -1) {
		filter := "label=dev.kod.instance=" + m[1]
		for _, kind := range []string{"container", "volume", "network"} {
			ls := []string{kind, "ls", "-q", "--filter", filter}
			if kind == "container" {
				ls = append(ls, "-a")
			}
			out, _ := exec.Command("docker", ls...).Output()
			ids := strings.Fields(string(out))
			if len(ids) == 0 {
				continue
			}
			rm := []string{kind, "rm"}
			if kind != "network" {
				rm = append(rm, "-f")
			}
			exec.Command("docker", append(rm, ids...)...).Run()
		}
	}
}
