package cli

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/backup"
)

func newRestoreCmd(a *app) *cobra.Command {
	var force, resumeWebhooks bool
	var dirs serverDirFlags
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup archive into the server's directories (server stopped)",
		Long: `Restore an archive written by "kod backup" into the data dir, repos dir
and SSH host key path of the server (--data-dir, --repos-dir, --ssh-host-key,
resolved as "kod serve" resolves them). FILE "-" reads stdin.

Restore refuses while a server uses the data dir, and refuses directories
with content unless --force, which replaces it. The archive is unpacked and
checked beside the targets first: a damaged or truncated archive changes
nothing. Start the restored server with the same KOD_ENCRYPTION_KEY to use
its secrets.

The restored server starts with webhook deliveries paused (nothing is
recorded or sent), so a copy beside the original never delivers to the
original's receivers: resume them with --resume-webhooks here, or later
with POST /admin/webhooks/resume (admin).`,
		Example: "  kod restore kod-backup-20250101-030000.tar.gz\n  kod restore backup.tar.gz --force --data-dir /srv/kod/data --repos-dir /srv/kod/repos",
		Args:    exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := a.ui(cmd)
			cfg, err := dirs.resolve(a, cmd.Flags())
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			var size int64
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
				in = f
			}
			p := newProgress(u.errOut, "restore:", size, isTerminal(u.errOut))
			m, err := backup.Restore(cmd.Context(), p.reader(in), backup.Target{
				DataDir: cfg.DataDir, ReposDir: cfg.ReposDir, HostKeyPath: cfg.SSHHostKeyPath, Force: force,
				ResumeWebhooks: resumeWebhooks,
			})
			p.finish()
			if err != nil {
				return err
			}
			if u.json {
				return u.emitJSON(map[string]any{"manifest": m, "dataDir": cfg.DataDir, "reposDir": cfg.ReposDir, "hostKeyPath": cfg.SSHHostKeyPath,
					"webhooksPaused": !resumeWebhooks})
			}
			u.printf("Restored the backup of %s (kod %s, %s, %d repositories: %s)\n", time.UnixMilli(m.CreatedAt).UTC().Format(time.RFC3339),
				m.KodVersion, m.Mode, len(m.Repos), orDash(strings.Join(m.Repos, ", ")))
			u.printf("into data %s, repositories %s. Start the server with the KOD_ENCRYPTION_KEY of the original.\n", cfg.DataDir, cfg.ReposDir)
			if !resumeWebhooks {
				u.printf("Webhook deliveries are paused: the restored webhooks point at the original's receivers. Resume them with\n" +
					"`kod restore FILE --resume-webhooks`, or on the running server with POST /admin/webhooks/resume (admin).\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace the content of non-empty directories")
	cmd.Flags().BoolVar(&resumeWebhooks, "resume-webhooks", false, "keep the restored webhooks delivering (default: paused until resumed)")
	dirs.register(cmd.Flags())
	return cmd
}
