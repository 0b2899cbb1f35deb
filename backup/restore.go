package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
)

// Target is where Restore puts an archive: the server's data dir (database
// and logs), repos dir and SSH host key path, as `kod serve` resolves them.
type Target struct {
	DataDir     string
	ReposDir    string
	HostKeyPath string
	// Force replaces what the directories hold; without it they must be
	// empty (or missing) and the host key absent.
	Force bool
	// ResumeWebhooks keeps the restored webhooks delivering. Without it the
	// restored server starts with webhook deliveries paused (nothing is
	// recorded or sent) until an admin resumes them: a restore is often a
	// copy beside the original, whose receivers must not get its events.
	ResumeWebhooks bool
}

// Refusals of Restore; the returned errors wrap them with details.
var (
	ErrServerRunning = errors.New("a kod server is using the data dir")
	ErrNotEmpty      = errors.New("the target is not empty")
	ErrBadArchive    = errors.New("not a complete kod backup")
)

// Names of the work directories Restore makes inside each target directory,
// on the target's own file system (so moving entries is a rename, even when
// the target is a mount point).
const (
	stagingDir = ".kod-restore-new"
	oldDir     = ".kod-restore-old"
	keyStaging = ".kod-restore-key"
)

// Restore unpacks the archive read from r into t and returns its manifest.
// It refuses (ErrServerRunning) while a server holds the database, and
// (ErrNotEmpty) targets with content unless t.Force. The archive is fully
// unpacked and checked (complete, database readable) beside the targets
// before anything there changes; a bad archive changes nothing. The
// restored database gets a new instance id, so the restored server never
// sweeps the containers of the server the backup came from, and (unless
// t.ResumeWebhooks) its webhook deliveries are paused.
func Restore(ctx context.Context, r io.Reader, t Target) (*Manifest, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	dataStage, reposStage := filepath.Join(t.DataDir, stagingDir), filepath.Join(t.ReposDir, stagingDir)
	keyStage := filepath.Join(filepath.Dir(t.HostKeyPath), keyStaging)
	for _, d := range []string{dataStage, reposStage, keyStage} {
		if err := os.MkdirAll(filepath.Dir(d), 0o700); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(d); err != nil { // left by a failed restore
			return nil, err
		}
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, d := range []string{dataStage, reposStage, keyStage} {
			os.RemoveAll(d)
		}
	}()
	x := &extractor{data: dataStage, repos: reposStage, key: keyStage}
	m, err := x.extract(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := prepareDB(ctx, filepath.Join(dataStage, "kod.db"), !t.ResumeWebhooks); err != nil {
		return nil, err
	}
	if err := swapIn(t.DataDir, dataStage); err != nil {
		return nil, err
	}
	if err := swapIn(t.ReposDir, reposStage); err != nil {
		return nil, err
	}
	if err := placeHostKey(t.HostKeyPath, keyStage, m.HostKey); err != nil {
		return nil, err
	}
	return m, nil
}

// check applies the refusals before anything is written.
func (t Target) check() error {
	if t.DataDir == "" || t.ReposDir == "" || t.HostKeyPath == "" {
		return errors.New("restore needs the data dir, repos dir and host key path")
	}
	data, _ := filepath.Abs(t.DataDir)
	repos, _ := filepath.Abs(t.ReposDir)
	if within(data, repos) || within(repos, data) {
		return fmt.Errorf("the data dir (%s) and the repos dir (%s) must not contain each other", data, repos)
	}
	if err := serverRunning(t.DataDir); err != nil {
		return err
	}
	if t.Force {
		return nil
	}
	for _, d := range []string{t.DataDir, t.ReposDir} {
		if n, err := entries(d); err != nil {
			return err
		} else if n > 0 {
			return fmt.Errorf("%w: %s has content; restore into empty directories or pass --force to replace it", ErrNotEmpty, d)
		}
	}
	if _, err := os.Stat(t.HostKeyPath); err == nil {
		return fmt.Errorf("%w: the SSH host key %s exists; pass --force to replace it", ErrNotEmpty, t.HostKeyPath)
	}
	return nil
}

func within(parent, p string) bool {
	rel, err := filepath.Rel(parent, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// serverRunning is ErrServerRunning when the database in dataDir is locked
// (bbolt's exclusive lock) or the hook socket answers.
func serverRunning(dataDir string) error {
	db := filepath.Join(dataDir, "kod.db")
	if _, err := os.Stat(db); err == nil {
		h, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("%w: %s is locked; stop the server before restoring", ErrServerRunning, db)
		}
		if err == nil {
			h.Close()
		}
	}
	if c, err := net.DialTimeout("unix", filepath.Join(dataDir, "hook.sock"), time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%w: its hook socket in %s answers; stop the server before restoring", ErrServerRunning, dataDir)
	}
	return nil
}

// entries counts the entries of dir other than restore's work directories;
// a missing dir has none.
func entries(dir string) (int, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		if e.Name() != stagingDir && e.Name() != oldDir && e.Name() != keyStaging {
			n++
		}
	}
	return n, nil
}

// prepareDB checks the restored database page by page and gives it a new
// instance id; pauseWebhooks pauses its webhook deliveries.
func prepareDB(ctx context.Context, path string, pauseWebhooks bool) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: the database does not open: %v", ErrBadArchive, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		var first error
		for e := range tx.Check() { // drained: the checker sends every error
			if first == nil {
				first = e
			}
		}
		return first
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: the database is damaged: %v", ErrBadArchive, err)
	}
	store, err := boltstore.Open(path)
	if err != nil {
		return err
	}
	err = store.ResetInstanceID(ctx)
	if err == nil && pauseWebhooks {
		err = store.SetWebhooksPaused(ctx, true)
	}
	return errors.Join(err, store.Close())
}

// swapIn replaces the entries of dir with those of stage (a directory
// inside dir): the old entries move aside first and come back if a move
// fails, and are removed at the end.
func swapIn(dir, stage string) error {
	old := filepath.Join(dir, oldDir)
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Mkdir(old, 0o700); err != nil {
		return err
	}
	moved, err := moveEntries(dir, old, nil)
	if err == nil {
		_, err = moveEntries(stage, dir, nil)
	}
	if err != nil {
		// Put back what was there; the staged entries are dropped with stage.
		_, backErr := moveEntries(old, dir, moved)
		return errors.Join(fmt.Errorf("replacing the content of %s: %w", dir, err), backErr)
	}
	return os.RemoveAll(old)
}

// moveEntries renames the entries of from into to (skipping restore's work
// directories); only names in onlyThese when it is non-nil. It returns the
// names it moved.
func moveEntries(from, to string, onlyThese []string) ([]string, error) {
	es, err := os.ReadDir(from)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, e := range es {
		name := e.Name()
		if name == stagingDir || name == oldDir || name == keyStaging {
			continue
		}
		if onlyThese != nil && !contains(onlyThese, name) {
			continue
		}
		if onlyThese != nil { // moving back: drop what the failed restore put there
			if err := os.RemoveAll(filepath.Join(to, name)); err != nil {
				return moved, err
			}
		}
		if err := os.Rename(filepath.Join(from, name), filepath.Join(to, name)); err != nil {
			return moved, err
		}
		moved = append(moved, name)
	}
	return moved, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// placeHostKey moves the staged host key (and .pub) to path.
func placeHostKey(path, stage string, present bool) error {
	if !present {
		return nil
	}
	for _, suffix := range []string{"", ".pub"} {
		src := filepath.Join(stage, "host_key"+suffix)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err := os.Rename(src, path+suffix); err != nil {
			return fmt.Errorf("placing the SSH host key: %w", err)
		}
	}
	return nil
}

// extractor unpacks an archive into the staging directories.
type extractor struct {
	data, repos, key string
	sawDB, sawEnd    bool
	sawKey           bool
}

func (x *extractor) extract(ctx context.Context, r io.Reader) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	tr := tar.NewReader(gz)
	m, err := readManifest(tr)
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if x.sawEnd {
			return nil, fmt.Errorf("%w: entries after the end marker", ErrBadArchive)
		}
		if err := x.entry(hdr, tr); err != nil {
			return nil, err
		}
	}
	if _, err := io.Copy(io.Discard, gz); err != nil { // gzip checks its CRC at the end
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	switch {
	case !x.sawEnd:
		return nil, fmt.Errorf("%w: the archive is truncated (no end marker)", ErrBadArchive)
	case !x.sawDB:
		return nil, fmt.Errorf("%w: no database in the archive", ErrBadArchive)
	case m.HostKey && !x.sawKey:
		return nil, fmt.Errorf("%w: the manifest lists a host key the archive lacks", ErrBadArchive)
	}
	return m, nil
}

func readManifest(tr *tar.Reader) (*Manifest, error) {
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName {
		return nil, fmt.Errorf("%w: it does not start with %s", ErrBadArchive, manifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrBadArchive, err)
	}
	if m.Format < 1 || m.Format > FormatVersion {
		return nil, fmt.Errorf("%w: format %d is not supported by this kod (%s, format %d); use a newer kod", ErrBadArchive, m.Format, forge.Version, FormatVersion)
	}
	return &m, nil
}
