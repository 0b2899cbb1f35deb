package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/runner/artifact"
)

// newWorkflowArtifactsCmd is `kod workflow artifacts REPO ID`.
func newWorkflowArtifactsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "artifacts REPO ID",
		Short: "List the artifacts a run kept",
		Args:  exactArgs("REPO", "ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			list, err := c.ListArtifacts(ctx, args[0], args[1])
			if err != nil || u.json {
				return jsonOr(u, list, err)
			}
			if len(list) == 0 {
				u.printf("Run %s has no artifacts\n", args[1])
				return nil
			}
			rows := make([][]cell, 0, len(list))
			for _, x := range list {
				rows = append(rows, []cell{{text: x.Name}, {text: artifact.FormatBytes(x.Size)}, {text: x.Step}, {text: x.SHA256[:min(12, len(x.SHA256))]}})
			}
			u.table([]string{"NAME", "SIZE", "STEP", "SHA256"}, rows)
			return nil
		}),
	}
}

// newWorkflowDownloadCmd is `kod workflow download REPO ID NAME [-o FILE]`.
func newWorkflowDownloadCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download REPO ID NAME",
		Short: "Download an artifact of a run (to its base name, or -o FILE; -o - for stdout)",
		Args:  exactArgs("REPO", "ID", "NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			rc, size, err := c.DownloadArtifact(ctx, args[0], args[1], args[2])
			if err != nil {
				return err
			}
			defer rc.Close()
			if out == "-" {
				_, err := io.Copy(u.out, rc)
				return err
			}
			if out == "" {
				out = path.Base(args[2])
			}
			n, err := writeFileAtomic(out, rc)
			if err != nil {
				return err
			}
			if size >= 0 && n != size {
				os.Remove(out)
				return fmt.Errorf("download of %s cut short: %d of %d bytes", args[2], n, size)
			}
			return done(u, nil, "Wrote %s (%s)\n", out, artifact.FormatBytes(n))
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: the artifact's base name; - for stdout)")
	return cmd
}

// writeFileAtomic writes r to a temporary file beside name, then renames
// it, so an interrupted download leaves no partial file under name.
func writeFileAtomic(name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".kod-download-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return n, err
	}
	return n, nil
}

// newWorkflowRerunCmd is `kod workflow rerun REPO ID [--failed]`.
func newWorkflowRerunCmd(a *app) *cobra.Command {
	var failed, follow bool
	cmd := &cobra.Command{
		Use:   "rerun REPO ID",
		Short: "Queue a new run of the same commit, branch and files (--failed: only the workflows that failed)",
		Args:  exactArgs("REPO", "ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			res, err := c.Rerun(ctx, args[0], args[1], failed)
			if err != nil {
				return err
			}
			if follow {
				return followAndReport(ctx, c, u, args[0], res.ID, "")
			}
			if u.json {
				return u.emitJSON(res)
			}
			u.printf("Run %s queued (re-run of %s)\n", res.ID, res.RerunOf)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "run again only the workflows that failed or were cancelled; reuse the others")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the new run; exit with its result")
	return cmd
}

// newWorkflowCachesCmd is `kod workflow caches REPO [--delete KEY [--branch B]]`.
func newWorkflowCachesCmd(a *app) *cobra.Command {
	var del, branch string
	cmd := &cobra.Command{
		Use:   "caches REPO",
		Short: "List a repository's caches, or delete one (--delete KEY [--branch B])",
		Args:  exactArgs("REPO"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			if del != "" {
				where := "every branch"
				if branch != "" {
					where = "branch " + branch
				}
				return done(u, c.DeleteCache(ctx, args[0], del, branch), "Deleted cache %s on %s\n", del, where)
			}
			if branch != "" {
				return errors.New("--branch goes with --delete")
			}
			list, err := c.ListCaches(ctx, args[0])
			if err != nil || u.json {
				return jsonOr(u, list, err)
			}
			if len(list) == 0 {
				u.printf("Repository %s has no caches\n", args[0])
				return nil
			}
			now := a.now()
			rows := make([][]cell, 0, len(list))
			for _, x := range list {
				rows = append(rows, []cell{{text: x.Key}, {text: x.Branch}, {text: artifact.FormatBytes(x.Size)}, {text: ago(now, x.LastUsedAt)}})
			}
			u.table([]string{"KEY", "BRANCH", "SIZE", "LAST USED"}, rows)
			u.notef("%s cache(s), least recently used first\n", strconv.Itoa(len(list)))
			return nil
		}),
	}
	cmd.Flags().StringVar(&del, "delete", "", "delete the cache with this key")
	cmd.Flags().StringVar(&branch, "branch", "", "with --delete: only this branch's cache")
	return cmd
}
