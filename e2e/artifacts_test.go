package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

const artifactWorkflow = `
[[steps]]
name = "build"
run = """
mkdir -p dist coverage/html
printf 'binary bytes' > dist/app.bin
echo report > coverage/index.txt
echo page > coverage/html/a.html
ln -s /etc/passwd passwd-link
"""
artifacts = ["dist/*.bin", "coverage/", "passwd-link"]

[[steps]]
name = "test"
run = "mkdir -p reports; echo 'FAILED: TestX' > reports/junit.xml; exit 1"
artifacts = ["reports/junit.xml"]
artifacts_when = "failure"
`

const bigArtifactWorkflow = `
[[steps]]
name = "huge"
run = "dd if=/dev/zero of=big.bin bs=1024 count=2048 2>/dev/null"
artifacts = ["big.bin"]
`

// download fetches an artifact and returns its bytes and headers.
func (s *server) download(repo, id, name string) ([]byte, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/repos/"+repo+"/workflows/"+id+"/artifacts/"+name, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("download %s: %d %s", name, res.StatusCode, b)
	}
	return b, res.Header
}

// tarEntries lists a .tar.gz as "name" or "name -> link" entries with the
// contents of its files.
func tarEntries(t *testing.T, b []byte) ([]string, string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var contents strings.Builder
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, contents.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeSymlink {
			names = append(names, h.Name+" -> "+h.Linkname)
			continue
		}
		names = append(names, h.Name)
		io.Copy(&contents, tr)
	}
}

// TestArtifacts: a file and a directory are downloadable with the right
// bytes and sha256; a link to /etc/passwd is kept as a link (no passwd file
// in the download); a failing step keeps its report (artifacts_when =
// "failure"); over KOD_ARTIFACT_LIMIT the step fails clearly; the CLI lists
// and downloads; retention deletes a run's artifacts with it.
func TestArtifacts(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_ARTIFACT_LIMIT=1m", "KOD_RUN_RETENTION=2"})
	s.createRepo("arts")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": artifactWorkflow})
	p.git("push", "-q", s.gitURL("arts", adminToken), "main")
	run := s.waitRun("arts", s.onlyRun("arts").ID, 3*time.Minute)
	st := stepsByName(t, run)
	if st["build"].Status != forge.StepCompleted || st["test"].Status != forge.StepFailed {
		t.Fatalf("steps: %+v", run.Result.Steps)
	}
	var list []forge.Artifact
	s.mustDo("GET", "/repos/arts/workflows/"+run.ID+"/artifacts", adminToken, nil, http.StatusOK, &list)
	byName := map[string]forge.Artifact{}
	for _, a := range list {
		byName[a.Name] = a
	}
	for _, name := range []string{"dist/app.bin", "coverage.tar.gz", "passwd-link.tar.gz", "reports/junit.xml"} {
		a, ok := byName[name]
		if !ok {
			t.Errorf("artifact %s missing from %+v", name, list)
			continue
		}
		b, h := s.download("arts", run.ID, name)
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(b)) != a.Size || h.Get("Content-Length") != strconv.Itoa(len(b)) || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") {
			t.Errorf("%s: %d bytes, sha256 %x, headers %v; record %+v", name, len(b), sum, h, a)
		}
	}
	if b, _ := s.download("arts", run.ID, "dist/app.bin"); string(b) != "binary bytes" {
		t.Errorf("dist/app.bin = %q", b)
	}
	if byName["dist/app.bin"].Step != "build" || byName["reports/junit.xml"].Step != "test" {
		t.Errorf("steps of the artifacts: %+v", list)
	}
	b, _ := s.download("arts", run.ID, "coverage.tar.gz")
	if names, body := tarEntries(t, b); strings.Join(names, " ") != "coverage/ coverage/html/ coverage/html/a.html coverage/index.txt" && strings.Join(names, " ") != "coverage/ coverage/index.txt coverage/html/ coverage/html/a.html" || !strings.Contains(body, "report") {
		t.Errorf("coverage.tar.gz: %v %q", names, body)
	}
	b, _ = s.download("arts", run.ID, "passwd-link.tar.gz")
	if names, body := tarEntries(t, b); strings.Join(names, " ") != "passwd-link -> /etc/passwd" || body != "" || bytes.Contains(b, []byte("root:")) {
		t.Errorf("passwd-link.tar.gz: %v %q", names, body)
	}

	// The CLI lists and downloads.
	c := newCLI(t, s)
	if out := c.ok("workflow", "artifacts", "arts", run.ID); !strings.Contains(out, "dist/app.bin") || !strings.Contains(out, "reports/junit.xml") {
		t.Errorf("kod workflow artifacts:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "app")
	c.ok("workflow", "download", "arts", run.ID, "dist/app.bin", "-o", dst)
	if got, _ := os.ReadFile(dst); string(got) != "binary bytes" {
		t.Errorf("kod workflow download wrote %q", got)
	}

	// Over the limit: the step fails, saying why.
	p.commit("big", map[string]string{".kod/workflows/ci.toml": bigArtifactWorkflow})
	p.git("push", "-q", s.gitURL("arts", adminToken), "main")
	big := s.waitRun("arts", newestRun(t, s, "arts", run.ID).ID, 3*time.Minute)
	if h := stepsByName(t, big)["huge"]; big.Status != forge.RunFailed || h.Status != forge.StepFailed || !strings.Contains(h.Error, "artifacts: artifact big.bin: the run's artifacts exceed KOD_ARTIFACT_LIMIT (1 MiB)") {
		t.Errorf("over the limit: %s %+v", big.Status, h)
	}

	// Retention (2 runs): a third run deletes the first with its artifacts.
	p.commit("third", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"x\"\nrun = \"true\"\n"})
	p.git("push", "-q", s.gitURL("arts", adminToken), "main")
	s.waitRun("arts", newestRun(t, s, "arts", run.ID, big.ID).ID, 3*time.Minute)
	dir := filepath.Join(s.Home, "data", "artifacts", run.ID)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		status, _ := s.do("GET", "/repos/arts/workflows/"+run.ID+"/artifacts", adminToken, nil)
		_, err := os.Stat(dir)
		if status == http.StatusNotFound && os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first run's artifacts outlived it: %d, %v", status, err)
		}
	}
	assertNoLeftovers(t, s)
}
