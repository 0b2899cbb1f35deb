// Package dockertest gives tests a sandbox/docker backend on the real engine,
// or skips them where there is none. CI sets KOD_REQUIRE_DOCKER=1 so that a
// missing engine fails instead of silently skipping.
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
)

// Image is the image tests run steps in, built by scripts/build-images.
const Image = "kod/busybox:local"

// RequireEnv is the environment variable that turns "no engine" from a skip
// into a failure when set to 1.
const RequireEnv = "KOD_REQUIRE_DOCKER"

// Require returns a backend connected to the engine (from DOCKER_HOST or the
// default socket), closed when the test ends. It skips the test if the engine
// does not answer, or fails it when KOD_REQUIRE_DOCKER=1; it fails if Image
// has not been built.
func Require(t testing.TB) *docker.Docker {
	t.Helper()
	return RequireHost(t, "")
}

// RequireHost is Require with the backend talking to the engine at host
// ("" = the environment's), e.g. a Proxy's Host.
func RequireHost(t testing.TB, host string) *docker.Docker {
	t.Helper()
	return require(t, docker.Config{Host: host})
}

// RequireServer is RequireHost with the backend configured as `kod serve`
// configures it: each workspace network held by a container of Image
// (docker.Config.NetworkHolderImage), so steps that run one after another
// share its network namespace.
func RequireServer(t testing.TB, host string) *docker.Docker {
	t.Helper()
	return require(t, docker.Config{Host: host, NetworkHolderImage: Image})
}

func require(t testing.TB, cfg docker.Config) *docker.Docker {
	t.Helper()
	d, err := docker.New(cfg, nil)
	if err != nil {
		t.Fatalf("docker backend: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close docker backend: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.Ping(ctx); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("docker engine required (%s=1) but unreachable: %v", RequireEnv, err)
		}
		t.Skipf("docker engine unreachable (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	ok, err := d.ImagePresent(ctx, Image)
	if err != nil {
		t.Fatalf("inspect %s: %v", Image, err)
	}
	if !ok {
		t.Fatalf("image %s is missing: run scripts/build-images", Image)
	}
	return d
}

// NewID returns a random 16-character [a-z0-9] id, usable as a run id or an
// instance id so parallel tests never share objects.
func NewID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Leftovers lists the containers ("container/<name>"), networks
// ("network/<name>") and volumes ("volume/<name>") labelled with instance,
// sorted; tests assert it is empty once they have cleaned up.
func Leftovers(t testing.TB, instance string) []string {
	t.Helper()
	return objects(t, filters.NewArgs(filters.Arg("label", sandbox.LabelInstance+"="+instance)))
}

// objects lists the containers, networks and volumes f selects, as
// Leftovers names them, sorted.
func objects(t testing.TB, f filters.Args) []string {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	for _, c := range cs {
		name := c.ID
		if len(c.Names) > 0 {
			name = c.Names[0][1:] // names start with "/"
		}
		out = append(out, "container/"+name)
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	for _, n := range ns {
		out = append(out, "network/"+n.Name)
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatalf("list volumes: %v", err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume/"+v.Name)
	}
	slices.Sort(out)
	return out
}

// Clean removes every object labelled with instance, for t.Cleanup after a
// test that may have failed half-way; failures are test errors.
func Clean(t testing.TB, d *docker.Docker, instance string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Sweep(ctx, instance, func(string) bool { return false }); err != nil {
		t.Errorf("sweep instance %s: %v", instance, err)
	}
}

// RunLeftovers is Leftovers narrowed to the objects labelled with run.
func RunLeftovers(t testing.TB, instance, run string) []string {
	t.Helper()
	return objects(t, filters.NewArgs(
		filters.Arg("label", sandbox.LabelInstance+"="+instance),
		filters.Arg("label", sandbox.LabelRun+"="+run),
	))
}
