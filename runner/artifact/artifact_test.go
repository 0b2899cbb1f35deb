package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
)

type entry struct {
	name, body, link string
	typ              byte
}

func tarOf(t *testing.T, entries ...entry) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return &buf
}

func newStore(t *testing.T, limit int64) (*Store, *boltstore.Store, []string) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.CreateRepo(ctx, &forge.Repo{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	var runs []string
	for range 2 {
		id := forge.NewID()
		if err := db.CreateRun(ctx, &forge.Run{ID: id, RepoName: "r", Status: forge.RunRunning}); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, id)
	}
	return &Store{Dir: filepath.Join(t.TempDir(), "artifacts"), Records: db, Limit: limit}, db, runs
}

func untar(t *testing.T, r io.Reader) []string {
	t.Helper()
	gz, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, h.Name+"="+string(b)+h.Linkname)
	}
}

// TestSave: a file is kept as itself with its size and sha256, a directory
// and a link as .tar.gz archives (the link pointing where it pointed, the
// file it names not read), records name the step; a link to the files of
// another run survives that run's deletion.
func TestSave(t *testing.T) {
	s, db, runs := newStore(t, 0)
	ctx := context.Background()
	saved, err := s.Save(ctx, runs[0], Step{Name: "build", Index: 2}, 1000, tarOf(t,
		entry{name: "dist/app.bin", body: "binary", typ: tar.TypeReg},
		entry{name: "coverage/", typ: tar.TypeDir},
		entry{name: "coverage/index.txt", body: "report", typ: tar.TypeReg},
		entry{name: "coverage/html/", typ: tar.TypeDir},
		entry{name: "passwd", link: "/etc/passwd", typ: tar.TypeSymlink},
	))
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	if len(saved) != 3 {
		t.Fatalf("saved %d artifacts: %+v", len(saved), saved)
	}
	list, _ := db.ListArtifacts(ctx, runs[0])
	names := []string{}
	for _, a := range list {
		names = append(names, a.Name)
		if a.Step != "build" || a.StepIndex != 2 || a.CreatedAt != 1000 {
			t.Errorf("record %+v", a)
		}
	}
	if strings.Join(names, " ") != "coverage.tar.gz dist/app.bin passwd.tar.gz" {
		t.Errorf("names %v", names)
	}
	read := func(run, name string) ([]byte, *forge.Artifact) {
		a, err := db.GetArtifact(ctx, run, name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.Open(a)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return b, a
	}
	b, a := read(runs[0], "dist/app.bin")
	sum := sha256.Sum256([]byte("binary"))
	if string(b) != "binary" || a.Size != 6 || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("dist/app.bin: %q %+v", b, a)
	}
	b, _ = read(runs[0], "coverage.tar.gz")
	if got := strings.Join(untar(t, bytes.NewReader(b)), " "); got != "coverage/= coverage/index.txt=report coverage/html/=" {
		t.Errorf("coverage.tar.gz holds %s", got)
	}
	b, _ = read(runs[0], "passwd.tar.gz")
	if got := strings.Join(untar(t, bytes.NewReader(b)), " "); got != "passwd=/etc/passwd" {
		t.Errorf("passwd.tar.gz holds %s", got)
	}

	if err := s.Link(ctx, runs[0], runs[1], func(a *forge.Artifact) bool { return a.Step == "build" }); err != nil {
		t.Fatalf("Link: %v", err)
	}
	if err := db.DeleteRun(ctx, runs[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRun(runs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, runs[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files of a deleted run: %v", err)
	}
	if b, _ := read(runs[1], "dist/app.bin"); string(b) != "binary" {
		t.Errorf("linked artifact after the first run's deletion: %q", b)
	}
}

// TestSaveLimit: the artifact that crosses the run's limit fails with a
// LimitError and leaves no file; the ones before it stay.
func TestSaveLimit(t *testing.T) {
	s, db, runs := newStore(t, 10)
	ctx := context.Background()
	_, err := s.Save(ctx, runs[0], Step{Name: "s"}, 1, tarOf(t,
		entry{name: "a", body: "123456", typ: tar.TypeReg},
		entry{name: "b", body: "123456", typ: tar.TypeReg},
	))
	var le *LimitError
	if !errors.As(err, &le) || le.Name != "b" || !strings.Contains(err.Error(), "KOD_ARTIFACT_LIMIT (10 B)") {
		t.Fatalf("Save over the limit: %v", err)
	}
	list, _ := db.ListArtifacts(ctx, runs[0])
	if len(list) != 1 || list[0].Name != "a" {
		t.Errorf("records after the limit: %+v", list)
	}
	files, _ := os.ReadDir(filepath.Join(s.Dir, runs[0]))
	if len(files) != 1 {
		t.Errorf("files after the limit: %v", files)
	}
	// The next step of the run has no room left either.
	_, err = s.Save(ctx, runs[0], Step{Name: "t"}, 1, tarOf(t, entry{name: "c/", typ: tar.TypeDir}, entry{name: "c/x", body: "12345", typ: tar.TypeReg}))
	if !errors.As(err, &le) {
		t.Errorf("second Save: %v", err)
	}
	if FormatBytes(1<<30) != "1 GiB" || FormatBytes(1500) != "1500 B" {
		t.Errorf("FormatBytes: %s %s", FormatBytes(1<<30), FormatBytes(1500))
	}
}
