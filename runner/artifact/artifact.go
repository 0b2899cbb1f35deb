// Package artifact keeps the files steps keep from their workspaces: it
// reads the tar stream a sandbox.ArtifactReader gives, stores each match
// under the data dir (data/artifacts/<run>/<sha256 of the name>, so no name
// can reach outside the run's directory) and records it in the store.
package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kod-forge/kod/forge"
)

// LimitError is returned by Save when a run's artifacts would exceed the
// limit; nothing of the artifact that crossed it is kept.
type LimitError struct {
	Limit int64 // bytes
	Name  string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("artifact %s: the run's artifacts exceed KOD_ARTIFACT_LIMIT (%s)", e.Name, FormatBytes(e.Limit))
}

// FormatBytes writes n bytes as "1 GiB", "512 MiB", "300 B".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	v := float64(n)
	for v >= 1024 && i < len(units)-1 && int64(v)%1024 == 0 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%g %s", v, units[i])
}

// Store keeps artifact files under Dir, their records in Records.
type Store struct {
	Dir     string // data/artifacts
	Records forge.ArtifactStore
	Limit   int64 // bytes per run; 0 = forge.DefaultArtifactLimit
}

// Step names the step whose artifacts Save keeps.
type Step struct {
	Name  string
	Index int
}

// file is where the artifact name of run is stored.
func (s *Store) file(runID, name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(s.Dir, runID, hex.EncodeToString(sum[:16]))
}

// Open opens the stored file of an artifact record.
func (s *Store) Open(a *forge.Artifact) (*os.File, error) {
	f, err := os.Open(s.file(a.RunID, a.Name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, forge.NotFound("Artifact not found")
	}
	return f, err
}

// DeleteRun removes the files of a run (its records go with the run).
func (s *Store) DeleteRun(runID string) error {
	if runID == "" || strings.ContainsAny(runID, `/\.`) {
		return fmt.Errorf("artifact: bad run id %q", runID)
	}
	return os.RemoveAll(filepath.Join(s.Dir, runID))
}

// Link gives run to the artifacts of run from that take accepts (those of
// the steps a failed-only re-run reuses): the files are hard links, so
// either run may be deleted first.
func (s *Store) Link(ctx context.Context, from, to string, take func(*forge.Artifact) bool) error {
	list, err := s.Records.ListArtifacts(ctx, from)
	if err != nil {
		return err
	}
	for _, a := range list {
		if !take(a) {
			continue
		}
		dst := s.file(to, a.Name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Link(s.file(from, a.Name), dst); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("linking artifact %s: %w", a.Name, err)
		}
		cp := *a
		cp.RunID = to
		if err := s.Records.PutArtifact(ctx, &cp); err != nil {
			return err
		}
	}
	return nil
}

// Save reads a tar stream of workspace entries (names relative to the
// workspace, parents before children, as sandbox.ArtifactReader gives)
// and keeps each match: a regular file as itself, a directory with
// everything under it as <name>.tar.gz, a symbolic link as <name>.tar.gz
// holding the link (never followed). It returns the records it stored. Over
// the run's limit it stops with a *LimitError; the records stored before
// stay.
func (s *Store) Save(ctx context.Context, runID string, step Step, at forge.Millis, stream io.Reader) ([]*forge.Artifact, error) {
	limit := s.Limit
	if limit <= 0 {
		limit = forge.DefaultArtifactLimit
	}
	existing, err := s.Records.ListArtifacts(ctx, runID)
	if err != nil {
		return nil, err
	}
	var used int64
	for _, a := range existing {
		used += a.Size
	}
	sv := &saver{s: s, ctx: ctx, runID: runID, step: step, at: at, used: used, limit: limit}
	tr := tar.NewReader(stream)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			sv.abort()
			return sv.saved, fmt.Errorf("reading artifacts: %w", err)
		}
		if err := sv.entry(h, tr); err != nil {
			sv.abort()
			return sv.saved, err
		}
	}
	return sv.saved, sv.finish()
}

// saver follows one Save: the directory (or link) archive being written,
// if any.
type saver struct {
	s     *Store
	ctx   context.Context
	runID string
	step  Step
	at    forge.Millis
	used  int64
	limit int64
	saved []*forge.Artifact

	root string   // name of the open directory archive ("" = none)
	out  *outFile // its file
	gz   *gzip.Writer
	tw   *tar.Writer
}

func (sv *saver) entry(h *tar.Header, r io.Reader) error {
	name := strings.TrimSuffix(h.Name, "/")
	if sv.root != "" && strings.HasPrefix(name, sv.root+"/") {
		if err := sv.tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			_, err := io.Copy(sv.tw, r)
			return err
		}
		return nil
	}
	if err := sv.finish(); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeReg:
		if err := forge.ValidateArtifactName(name); err != nil {
			return fmt.Errorf("artifact %q: %w", name, err)
		}
		out, err := sv.create(name)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, r); err != nil {
			out.discard()
			return err
		}
		return sv.commit(name, out)
	case tar.TypeDir, tar.TypeSymlink:
		stored := name + ".tar.gz"
		if err := forge.ValidateArtifactName(stored); err != nil {
			return fmt.Errorf("artifact %q: %w", name, err)
		}
		out, err := sv.create(stored)
		if err != nil {
			return err
		}
		sv.root, sv.out = name, out
		sv.gz = gzip.NewWriter(out)
		sv.tw = tar.NewWriter(sv.gz)
		// Entries keep their names relative to the workspace: unpacking
		// the archive in a checkout puts them where they were.
		return sv.tw.WriteHeader(h)
	default:
		return nil // devices, fifos, hard links to elsewhere: not kept
	}
}

// finish closes the open directory archive and records it.
func (sv *saver) finish() error {
	if sv.root == "" {
		return nil
	}
	name, out := sv.root+".tar.gz", sv.out
	sv.root, sv.out = "", nil
	err := errors.Join(sv.tw.Close(), sv.gz.Close())
	if err != nil {
		out.discard()
		return err
	}
	return sv.commit(name, out)
}

// abort drops the open directory archive.
func (sv *saver) abort() {
	if sv.out != nil {
		sv.out.discard()
		sv.root, sv.out = "", nil
	}
}

func (sv *saver) create(name string) (*outFile, error) {
	dst := sv.s.file(sv.runID, name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return nil, err
	}
	return &outFile{f: f, dst: dst, name: name, sum: sha256.New(), room: sv.limit - sv.used, limit: sv.limit}, nil
}

// commit moves a written file into place and records it.
func (sv *saver) commit(name string, out *outFile) error {
	if err := out.f.Close(); err != nil {
		out.discard()
		return err
	}
	if err := os.Rename(out.f.Name(), out.dst); err != nil {
		out.discard()
		return err
	}
	a := &forge.Artifact{RunID: sv.runID, Name: name, Size: out.n, Step: sv.step.Name, StepIndex: sv.step.Index,
		SHA256: hex.EncodeToString(out.sum.Sum(nil)), CreatedAt: sv.at}
	if err := sv.s.Records.PutArtifact(sv.ctx, a); err != nil {
		os.Remove(out.dst)
		return err
	}
	sv.used += out.n
	sv.saved = append(sv.saved, a)
	return nil
}

// outFile is an artifact being written: counted against the run's room,
// hashed.
type outFile struct {
	f     *os.File
	dst   string
	name  string
	sum   hash.Hash
	n     int64
	room  int64
	limit int64
}

func (o *outFile) Write(p []byte) (int, error) {
	if o.n+int64(len(p)) > o.room {
		return 0, &LimitError{Limit: o.limit, Name: o.name}
	}
	n, err := o.f.Write(p)
	o.sum.Write(p[:n])
	o.n += int64(n)
	return n, err
}

func (o *outFile) discard() {
	o.f.Close()
	os.Remove(o.f.Name())
}
