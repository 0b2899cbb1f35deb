package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/backup"
	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/config"
)

// serverDirFlags are the flags with which backup and restore find the
// server's directories, resolved exactly as `kod serve` resolves them.
type serverDirFlags struct{ configPath string }

func (f *serverDirFlags) register(fs *pflag.FlagSet) {
	d := config.Default(config.Home())
	fs.StringVar(&f.configPath, "config", "", "server config file (default KOD_CONFIG, then ~/.kod/config.json)")
	fs.String("data-dir", d.DataDir, "the server's data directory (else KOD_DATA_DIR, the config file)")
	fs.String("repos-dir", d.ReposDir, "the server's repositories directory (else KOD_REPOS_DIR, the config file)")
	fs.String("ssh-host-key", d.SSHHostKeyPath, "the server's SSH host key (else KOD_SSH_HOST_KEY_PATH, the config file)")
}

// resolve returns the server settings: defaults < config file < env < flags.
func (f *serverDirFlags) resolve(a *app, fs *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default(config.Home())
	path := f.configPath
	if path == "" {
		path = a.getenv("KOD_CONFIG")
	}
	err := config.Load(&cfg, path, fs, a.getenv)
	return cfg, err
}

func newBackupCmd(a *app) *cobra.Command {
	var out string
	var offline bool
	var dirs serverDirFlags
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent archive of the server: database, repositories, logs, SSH host key",
		Long: `Write a backup archive (gzipped tar) of a kod server.

While the server runs, the archive is taken through it (GET /admin/backup,
admin token): the database inside one read transaction and each repository
from a snapshot of its refs, so pushes and runs may go on meanwhile. When
no server answers at the configured URL (or with --offline), the archive
is made from the directories directly (--data-dir, --repos-dir and
--ssh-host-key, resolved as "kod serve" resolves them).

Secrets stay encrypted in the archive: a restored server needs the same
KOD_ENCRYPTION_KEY. The archive holds the SSH host key and is written with
mode 0600.`,
		Example: "  kod backup -o /backups/kod-$(date +%F).tar.gz\n  kod backup --offline --data-dir /srv/kod/data --repos-dir /srv/kod/repos",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				out = fmt.Sprintf("kod-backup-%s.tar.gz", a.now().UTC().Format("20060102-150405"))
			}
			u := a.ui(cmd)
			write := func(ctx context.Context, w io.Writer) (string, error) {
				if !offline {
					if mode, err := a.onlineBackup(ctx, u, w); !errors.Is(err, errTryOffline) {
						return mode, err
					}
				}
				cfg, err := dirs.resolve(a, cmd.Flags())
				if err != nil {
					return "", err
				}
				return "offline", offlineBackup(ctx, cfg, w)
			}
			return saveBackup(cmd.Context(), u, out, write)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", `archive file ("-" for stdout; default kod-backup-<time>.tar.gz)`)
	cmd.Flags().BoolVar(&offline, "offline", false, "read the directories directly (the server must be stopped)")
	dirs.register(cmd.Flags())
	return cmd
}

// errTryOffline says no server answered: the backup is taken offline.
var errTryOffline = errors.New("no server answered")

// onlineBackup streams GET /admin/backup into w. It returns errTryOffline
// (before writing anything) when the server cannot be reached.
func (a *app) onlineBackup(ctx context.Context, u *ui, w io.Writer) (string, error) {
	s, err := a.settings()
	if err != nil {
		return "", err
	}
	c, err := client.New(s.Server, s.Token)
	if err != nil {
		return "", err
	}
	var unreachable *client.UnreachableError
	if s.Token == "" {
		if err := c.Health(ctx); errors.As(err, &unreachable) {
			return "", errTryOffline
		}
		return "", fmt.Errorf("a server answers at %s: an online backup needs an admin token (-t/--token), or stop it and use --offline", s.Server)
	}
	rc, err := c.Backup(ctx)
	switch {
	case errors.As(err, &unreachable):
		u.notef("No server answers at %s: backing up the directories offline.\n", s.Server)
		return "", errTryOffline
	case client.StatusOf(err) == http.StatusNotFound:
		return "", fmt.Errorf("the server at %s has no backup endpoint (an older kod): stop it and run `kod backup --offline`", s.Server)
	case err != nil:
		return "", explain(err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return "", fmt.Errorf("receiving the backup (the server stopped sending; see its log): %w", err)
	}
	return "online from " + s.Server, nil
}

// offlineBackup archives the directories of cfg; the database is opened
// read-only and refused while a server holds it.
func offlineBackup(ctx context.Context, cfg config.Config, w io.Writer) error {
	dbPath := filepath.Join(cfg.DataDir, "kod.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no kod database at %s (set --data-dir, KOD_DATA_DIR or the config file): %w", dbPath, err)
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%s is in use by a running server: back up through it (an admin token and -s/--server URL), or stop it", dbPath)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", dbPath, err)
	}
	defer db.Close()
	_, err = backup.Write(ctx, w, backup.Source{
		DB: db, ReposDir: cfg.ReposDir, LogsDir: filepath.Join(cfg.DataDir, "logs"), HostKeyPath: cfg.SSHHostKeyPath, Mode: "offline",
		ArtifactsDir: filepath.Join(cfg.DataDir, "artifacts"),
	})
	return err
}

// saveBackup runs write into out (via out.partial, renamed once the
// archive checks out), showing progress on a terminal. An existing out is
// never replaced.
func saveBackup(ctx context.Context, u *ui, out string, write func(context.Context, io.Writer) (string, error)) error {
	if out == "-" {
		_, err := write(ctx, u.out)
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s exists: choose another name (-o) or remove it first", out)
	}
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists (left by a backup that did not finish, or one running now): remove it first", tmp)
	}
	if err != nil {
		return fmt.Errorf("creating the archive: %w", err)
	}
	defer os.Remove(tmp)
	p := newProgress(u.errOut, "backup:", 0, isTerminal(u.errOut))
	mode, err := write(ctx, p.writer(f))
	p.finish()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	sum, err := verifyFile(tmp)
	if err != nil {
		return fmt.Errorf("the archive does not check out: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if u.json {
		return u.emitJSON(map[string]any{"file": out, "mode": mode, "manifest": sum.Manifest, "files": sum.Files, "bytes": sum.Bytes})
	}
	u.printf("Backup written to %s (%s): %d repositories, %d files, %s\n", out, mode, len(sum.Manifest.Repos), sum.Files, bytesText(sum.Bytes))
	return nil
}

func verifyFile(path string) (*backup.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, sum, err := backup.Verify(f)
	return sum, err
}
