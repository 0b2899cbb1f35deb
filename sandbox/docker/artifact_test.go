package docker_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// readTar lists a tar stream as "name type [size|->link]" lines and the
// contents of its regular files.
func readTar(t *testing.T, r io.Reader) ([]string, map[string]string) {
	t.Helper()
	var list []string
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return list, files
		}
		if err != nil {
			t.Fatalf("reading the artifact tar: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
			list = append(list, fmt.Sprintf("%s f %d", h.Name, len(b)))
		case tar.TypeDir:
			list = append(list, h.Name+" d")
		case tar.TypeSymlink:
			list = append(list, h.Name+" l->"+h.Linkname)
		default:
			list = append(list, fmt.Sprintf("%s %c", h.Name, h.Typeflag))
		}
	}
}

// TestReadArtifacts: files and directories matching the patterns come out
// with workspace-relative names; links are entries pointing where they
// pointed, never followed, also when a pattern's directory part is a link.
func TestReadArtifacts(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	run.Workspace = ""
	_, state := runStep(t, d, run, shStep(0, `
		mkdir -p dist coverage/html out
		echo tarball > dist/app.tar.gz; echo other > dist/app.zip
		echo report > coverage/index.txt; echo page > coverage/html/a.html
		ln -s /etc/passwd passwd-link
		ln -s /etc out/etc
		ln -s /etc etclink
		echo top > top.txt`))
	if state.ExitCode != 0 {
		t.Fatalf("setup step exited %d", state.ExitCode)
	}
	rc, err := d.ReadArtifacts(t.Context(), run, dockertest.Image,
		[]string{"dist/*.tar.gz", "coverage/", "passwd-link", "etclink/passwd", "out/*/passwd", "*.txt", "missing/x", "coverage"})
	if err != nil {
		t.Fatalf("ReadArtifacts: %v", err)
	}
	list, files := readTar(t, rc)
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	want := []string{
		"dist/app.tar.gz f 8",
		"coverage/ d", "coverage/html/ d", "coverage/html/a.html f 5", "coverage/index.txt f 7",
		"passwd-link l->/etc/passwd",
		"top.txt f 4",
	}
	slices.Sort(list)
	slices.Sort(want)
	if !slices.Equal(list, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(list, "\n"), strings.Join(want, "\n"))
	}
	for name, body := range files {
		if strings.Contains(body, "root:") {
			t.Errorf("%s holds a passwd file: %q", name, body)
		}
	}
	if files["dist/app.tar.gz"] != "tarball\n" {
		t.Errorf("dist/app.tar.gz = %q", files["dist/app.tar.gz"])
	}

	for _, bad := range []string{"/etc/passwd", "../x", "a/../../b", "", "[", "a\\b"} {
		_, err := d.ReadArtifacts(t.Context(), run, dockertest.Image, []string{bad})
		var se *sandbox.StepError
		if !errors.As(err, &se) {
			t.Errorf("pattern %q: %v, want a StepError", bad, err)
		}
	}
	// Closing before the end stops the copy and removes the carrier.
	rc, err = d.ReadArtifacts(t.Context(), run, dockertest.Image, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("early Close: %v", err)
	}
	for _, o := range dockertest.RunLeftovers(t, run.Instance, run.ID) {
		if strings.HasPrefix(o, "container/") {
			t.Errorf("left: %s", o)
		}
	}
}
