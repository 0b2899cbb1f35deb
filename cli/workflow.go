package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

const workflowLong = `Run workflows locally, or list, trigger, follow and cancel runs on the server.

  kod workflow [FILE.toml ...]   run workflows of the current directory here,
                                 in Docker, with the server's runner (see
                                 "kod workflow run --help")
  kod workflow status [REPO]     run counts and recent runs (of REPO)
  kod workflow trigger REPO      queue a run (--branch, --follow)
  kod workflow show REPO ID      a run and its steps (--follow)
  kod workflow logs REPO ID      the full log (--follow, --step)
  kod workflow cancel REPO ID    stop a queued or running run
  kod workflow rerun REPO ID     run the same commit again (--failed: only
                                 the workflows that failed)
  kod workflow artifacts REPO ID the files a run kept
  kod workflow download REPO ID NAME  download one (-o FILE)
  kod workflow caches REPO       a repository's caches (--delete KEY)

With --follow, live output is printed with a "==> STEP" header per step and
the command exits 0 only if the run succeeded.`

// newWorkflowCmd is `kod workflow`: remote subcommands, and local runs when
// the arguments are workflow files (Kod's `kod workflow FILE.toml`).
func newWorkflowCmd(a *app) *cobra.Command {
	local := newLocalRunCmd(a)
	cmd := &cobra.Command{
		Use:     "workflow [FILE.toml ...]",
		Aliases: []string{"workflows", "wf"},
		Short:   "Run workflows locally, or manage runs on the server",
		Long:    workflowLong,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return local.RunE(cmd, args)
		},
	}
	cmd.Flags().AddFlagSet(local.Flags())
	cmd.AddCommand(local, newWorkflowStatusCmd(a), newWorkflowTriggerCmd(a), newWorkflowShowCmd(a),
		newWorkflowLogsCmd(a), newWorkflowCancelCmd(a), newWorkflowRerunCmd(a), newWorkflowArtifactsCmd(a),
		newWorkflowDownloadCmd(a), newWorkflowCachesCmd(a))
	return cmd
}

func newWorkflowStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "status [REPO]",
		Aliases: []string{"list", "runs", "ls"},
		Short:   "Show run counts and recent runs, or the runs of REPO",
		Args:    cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			if len(args) == 1 {
				runs, err := c.ListRuns(ctx, args[0])
				if err != nil || u.json {
					return jsonOr(u, runs, err)
				}
				if len(runs) == 0 {
					u.notef("%s has no runs yet.\n", args[0])
					return nil
				}
				runTable(u, runs, false)
				return nil
			}
			st, err := c.Status(ctx)
			if err != nil || u.json {
				return jsonOr(u, st, err)
			}
			var parts []string
			for _, s := range []string{"queued", "running", "completed", "failed", "cancelled"} {
				if n, ok := st.Summary[s]; ok {
					parts = append(parts, u.paint(statusColor(s), fmt.Sprintf("%s %d", s, n)))
				}
			}
			u.printf("%s\n", strings.Join(parts, "  "))
			if len(st.Recent) > 0 {
				u.printf("\nRecent runs:\n")
				runTable(u, st.Recent, true)
			}
			return nil
		}),
	}
}

// runTable prints runs, with their repository when withRepo.
func runTable(u *ui, runs []client.Run, withRepo bool) {
	headers := []string{"ID", "STATUS", "BRANCH", "COMMIT", "TRIGGER", "CREATED", "DURATION"}
	if withRepo {
		headers = append([]string{"REPO"}, headers...)
	}
	var rows [][]cell
	for _, r := range runs {
		status := string(r.Status)
		if r.Status == forge.RunQueued && r.QueuePosition > 0 {
			status += " #" + strconv.Itoa(r.QueuePosition)
		}
		dur := "-"
		if r.Result != nil && r.Status.Done() && r.StartedAt != 0 {
			dur = duration(r.Result.Duration)
		}
		row := []cell{{text: r.ID}, {text: status, color: statusColor(string(r.Status))}, {text: r.Branch},
			{text: shortID(r.Commit)}, {text: orDash(string(r.Trigger))}, {text: ago(u.now, int64(r.CreatedAt))}, {text: dur}}
		if withRepo {
			row = append([]cell{{text: r.RepoName}}, row...)
		}
		rows = append(rows, row)
	}
	u.table(headers, rows)
}

func newWorkflowTriggerCmd(a *app) *cobra.Command {
	var req client.TriggerRequest
	var follow bool
	cmd := &cobra.Command{
		Use:   "trigger REPO",
		Short: "Queue a run of REPO's workflows at the head of a branch (or a commit)",
		Example: `  kod workflow trigger app --branch main --follow
  kod workflow trigger app --file .kod/workflows/deploy.toml`,
		Args: exactArgs("REPO"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			t, err := c.Trigger(ctx, args[0], req)
			if err != nil {
				return err
			}
			if !follow {
				if u.json {
					return u.emitJSON(t)
				}
				u.printf("Queued run %s of %s\n", t.ID, args[0])
				return nil
			}
			u.notef("Queued run %s of %s\n", t.ID, args[0])
			return followAndReport(ctx, c, u, args[0], t.ID, "")
		}),
	}
	cmd.Flags().StringVarP(&req.Branch, "branch", "b", "main", "branch to run")
	cmd.Flags().StringVar(&req.Commit, "commit", "", "commit to run (default: the branch head)")
	cmd.Flags().StringSliceVar(&req.Files, "file", nil, "workflow file to run (repeatable; default every file of .kod/workflows)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the live output and exit with the run's result")
	return cmd
}

// followAndReport follows the run's output to stdout (stderr with --json),
// prints its summary (or its record with --json) and returns an *ExitError
// unless it completed.
func followAndReport(ctx context.Context, c *client.Client, u *ui, repo, id, step string) error {
	logs := u.out
	if u.json {
		logs = u.errOut
	}
	run, err := followRun(ctx, c, u, logs, repo, id, step)
	if err != nil {
		return err
	}
	if u.json {
		if err := u.emitJSON(run); err != nil {
			return err
		}
	} else {
		printRunSummary(u, run)
	}
	return runExit(run)
}

// runExit is nil for a completed run and exit status 1 otherwise.
func runExit(run *client.Run) error {
	if run.Status == forge.RunCompleted {
		return nil
	}
	return &ExitError{Code: 1}
}

func newWorkflowShowCmd(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "show REPO ID",
		Short: "Show a run and its steps",
		Args:  exactArgs("REPO", "ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			if follow {
				return followAndReport(ctx, c, u, args[0], args[1], "")
			}
			run, err := c.GetRun(ctx, args[0], args[1])
			if err != nil || u.json {
				return jsonOr(u, run, err)
			}
			printRun(u, run)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the live output first, then exit with the run's result")
	return cmd
}

func newWorkflowLogsCmd(a *app) *cobra.Command {
	var follow bool
	var step string
	cmd := &cobra.Command{
		Use:   "logs REPO ID",
		Short: "Print the full log of a run",
		Args:  exactArgs("REPO", "ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			if follow {
				logs := u.out
				run, err := followRun(ctx, c, u, logs, args[0], args[1], step)
				if err != nil {
					return err
				}
				return runExit(run)
			}
			rc, err := c.Logs(ctx, args[0], args[1], client.LogOptions{Step: step})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(u.out, rc)
			return err
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the run ends; exit with its result")
	cmd.Flags().StringVar(&step, "step", "", "only the step of this name")
	return cmd
}

func newWorkflowCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel REPO ID",
		Short: "Cancel a queued or running run (its containers are stopped and removed)",
		Args:  exactArgs("REPO", "ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.Cancel(ctx, args[0], args[1]), "Cancellation of run %s requested\n", args[1])
		}),
	}
}
