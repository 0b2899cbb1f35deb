// Package backup writes and restores kod's backup archives: a gzipped tar
// holding a manifest, a consistent snapshot of the bbolt database, the bare
// repositories, the step logs and the SSH host key. Archives are taken while
// the server runs (the database inside one read transaction, each
// repository from a snapshot of its refs) or offline, and restored into
// empty directories, or replacing their contents with Force.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// FormatVersion is the layout version this package writes; Restore refuses
// archives of a newer one.
const FormatVersion = 1

// Names inside an archive.
const (
	manifestName = "kod-backup/manifest.json" // always the first entry
	endName      = "kod-backup/end.json"      // always the last entry
	dbName       = "data/kod.db"
	logsPrefix   = "data/logs/"
	artsPrefix   = "data/artifacts/"
	reposPrefix  = "repos/"
	hostKeyName  = "ssh/host_key"
	hostPubName  = "ssh/host_key.pub"
)

// Manifest describes an archive; it is its first entry.
type Manifest struct {
	Format     int      `json:"format"`
	KodVersion string   `json:"kodVersion"`
	CreatedAt  int64    `json:"createdAt"` // ms since the epoch
	Mode       string   `json:"mode"`      // "online" (server running) or "offline"
	Repos      []string `json:"repos"`     // repository names
	HostKey    bool     `json:"hostKey"`
}

// end is the last entry: its presence proves the archive is complete.
type end struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Source is what Write archives.
type Source struct {
	DB       *bolt.DB // snapshotted inside one read transaction
	ReposDir string   // every <name>.git directory in it is archived
	LogsDir  string   // step logs; "" or missing is skipped
	// ArtifactsDir holds the runs' artifact files (data/artifacts); "" or
	// missing is skipped. Files a re-run shares with its original (hard
	// links) are archived, and restored, once per run.
	ArtifactsDir string
	HostKeyPath  string // SSH host key (and .pub); "" or missing is skipped
	Mode         string // recorded in the manifest
	Git          *gitsvc.Git
}

// Summary is what Write archived.
type Summary struct {
	Manifest Manifest
	Files    int
	Bytes    int64 // uncompressed bytes of file content
}

// Write streams the archive of src to w (gzip, tar). The database is copied
// first, inside one read transaction; each repository is then copied from a
// snapshot of its refs taken before its objects, so a push in progress is
// either absent or complete in the copy. Errors leave w incomplete: the
// archive then lacks its end entry and Restore refuses it.
func Write(ctx context.Context, w io.Writer, src Source) (*Summary, error) {
	if src.Git == nil {
		src.Git = &gitsvc.Git{}
	}
	repos, err := listRepos(src.ReposDir)
	if err != nil {
		return nil, err
	}
	_, keyErr := os.Stat(src.HostKeyPath)
	m := Manifest{Format: FormatVersion, KodVersion: forge.Version, CreatedAt: time.Now().UnixMilli(), Mode: src.Mode,
		Repos: repos, HostKey: src.HostKeyPath != "" && keyErr == nil}
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	aw := &archiveWriter{tw: tar.NewWriter(gz)}
	steps := []func() error{
		func() error { return aw.json(manifestName, m) },
		func() error { return aw.snapshot(src.DB) },
		func() error {
			for _, name := range repos {
				if err := aw.repo(ctx, src.Git, filepath.Join(src.ReposDir, name+".git"), reposPrefix+name+".git/"); err != nil {
					return fmt.Errorf("repository %s: %w", name, err)
				}
			}
			return nil
		},
		func() error { return aw.tree(ctx, src.LogsDir, logsPrefix) },
		func() error { return aw.tree(ctx, src.ArtifactsDir, artsPrefix) },
		func() error { return aw.hostKey(src.HostKeyPath, m.HostKey) },
		func() error { return aw.json(endName, end{Files: aw.files, Bytes: aw.bytes}) },
		aw.tw.Close,
		gz.Close,
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	return &Summary{Manifest: m, Files: aw.files, Bytes: aw.bytes}, nil
}

// listRepos returns the names of the <name>.git directories of dir, sorted.
func listRepos(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the repos dir: %w", err)
	}
	names := []string{}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".git"); ok && e.IsDir() && forge.ValidateRepoName(name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// archiveWriter adds entries to the tar stream and counts them.
type archiveWriter struct {
	tw    *tar.Writer
	files int
	bytes int64
}

func (a *archiveWriter) json(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return a.bytesEntry(name, data, 0o644)
}

func (a *archiveWriter) bytesEntry(name string, data []byte, mode int64) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: mode, ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := a.tw.Write(data)
	a.files++
	a.bytes += int64(len(data))
	return err
}

func (a *archiveWriter) dir(name string) error {
	return a.tw.WriteHeader(&tar.Header{Name: strings.TrimSuffix(name, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX})
}

// snapshot writes the database as one read transaction sees it.
func (a *archiveWriter) snapshot(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		hdr := &tar.Header{Name: dbName, Typeflag: tar.TypeReg, Size: size, Mode: 0o600, ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX}
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tx.WriteTo(a.tw); err != nil {
			return fmt.Errorf("copying the database: %w", err)
		}
		a.files++
		a.bytes += size
		return nil
	})
}

// smallFile is the size up to which a file is read whole before its header
// is written, so a file rewritten meanwhile is still copied consistently.
const smallFile = 1 << 20

// file copies the file at full as entry name. It returns os.ErrNotExist
// (wrapped) when the file vanished before it was opened.
func (a *archiveWriter) file(full, name string) error {
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	mode := int64(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	if fi.Size() <= smallFile {
		data, err := io.ReadAll(io.LimitReader(f, smallFile+1))
		if err != nil {
			return err
		}
		return a.bytesEntry(name, data, mode)
	}
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: fi.Size(), Mode: mode, ModTime: fi.ModTime().Truncate(time.Second), Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(a.tw, f, fi.Size()); err != nil {
		return fmt.Errorf("copying %s (it shrank while being read): %w", full, err)
	}
	a.files++
	a.bytes += fi.Size()
	return nil
}

// tree copies every regular file under dir with prefix; dir "" or missing
// is nothing. Files that vanish meanwhile are skipped.
func (a *archiveWriter) tree(ctx context.Context, dir, prefix string) error {
	if dir == "" {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if err := a.file(p, prefix+filepath.ToSlash(rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (a *archiveWriter) hostKey(p string, present bool) error {
	if !present {
		return nil
	}
	if err := a.file(p, hostKeyName); err != nil {
		return fmt.Errorf("SSH host key: %w", err)
	}
	if err := a.file(p+".pub", hostPubName); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// cleanName checks an archive entry name: relative, slash-separated, no
// "." or ".." elements. It returns the cleaned name.
func cleanName(name string) (string, bool) {
	clean := path.Clean(strings.TrimSuffix(name, "/"))
	if name == "" || path.IsAbs(name) || clean == "." || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return "", false
	}
	for _, el := range strings.Split(clean, "/") {
		if el == ".." || el == "." || el == "" {
			return "", false
		}
	}
	return clean, true
}
