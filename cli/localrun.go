package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
)

// localOptions are the flags of a local run.
type localOptions struct {
	image   string
	branch  string
	repo    string
	verbose bool
}

func newLocalRunCmd(a *app) *cobra.Command {
	var o localOptions
	cmd := &cobra.Command{
		Use:   "run [FILE.toml ...]",
		Short: "Run workflows of the current directory locally, in Docker, with the server's engine",
		Long: `Run workflow files here, with the same parsers (TOML and Kod's line
syntax), compile stage, engine and Docker sandbox the server uses. Without files, every
.kod/workflows/*.toml of the working tree runs. "kod workflow FILE.toml"
is the same as "kod workflow run FILE.toml".

The workspace is the working tree as it is now: tracked files with their
uncommitted changes, plus untracked files that .gitignore does not exclude
(outside a git repository: every file but .git). The branch is $BRANCH,
else git's current branch, else main. Live output is printed under a
"==> STEP" header per step (each line prefixed "[STEP] " when steps may
run at the same time), then a summary; the exit status is 1 if any step
failed.`,
		Example: "  kod workflow .kod/workflows/ci.toml\n  BRANCH=release kod workflow run",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLocal(cmd, a, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "default step image (default: KOD_DEFAULT_IMAGE or "+config.DefaultImage+")")
	f.StringVar(&o.branch, "branch", "", "branch the steps see (default: $BRANCH, then git)")
	f.StringVar(&o.repo, "repo", "", "repository name the steps see (default: the directory's name)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log what the runner does")
	return cmd
}

func runLocal(cmd *cobra.Command, a *app, o localOptions, args []string) error {
	// SIGINT and SIGTERM cancel the command's context (main); a closed
	// terminal (SIGHUP) and a reader that went away (`| head`: SIGPIPE,
	// seen as a failed write to stdout or stderr) cancel the run too, so
	// its containers, volume and network are removed before exiting.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signal.Ignore(syscall.SIGPIPE) // writes fail with EPIPE instead of killing kod
	u := a.ui(cmd)
	u.out = &brokenPipeWatch{w: u.out, broken: cancel}
	u.errOut = &brokenPipeWatch{w: u.errOut, broken: cancel}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, inGit := workTreeRoot(ctx, cwd)
	files, err := localWorkflowFiles(cmd, root, cwd, args)
	if err != nil {
		return err
	}
	req := runner.Request{
		Repo:    firstOf(o.repo, repoNameOf(root)),
		Branch:  firstOf(o.branch, a.getenv("BRANCH"), gitOutput(ctx, root, "rev-parse", "--abbrev-ref", "HEAD"), gitsvc.DefaultBranch),
		Commit:  gitOutput(ctx, root, "rev-parse", "HEAD"),
		Trigger: forge.TriggerManual,
	}
	if req.Branch == "HEAD" { // detached
		req.Branch = gitsvc.DefaultBranch
	}
	src := &localSource{root: root, files: files, inGit: inGit, branch: req.Branch}
	if err := forge.ValidateRepoName(req.Repo); err != nil {
		return fmt.Errorf("repository name %q: %w (use --repo)", req.Repo, err)
	}
	image := firstOf(o.image, a.getenv("KOD_DEFAULT_IMAGE"), config.DefaultImage)
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	u.notef("Running %s locally (repo %s, branch %s, %s)\n", strings.Join(names, ", "), req.Repo, req.Branch, bannerImage(files, image))
	run, err := executeLocal(ctx, u, o, image, src, req)
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

// bannerImage says which image the steps of files run in, resolved as the
// compiler does (step, workflow, then def): "image NAME" when all use one,
// else "images per step". Files that do not parse are left out (their
// error comes with the run).
func bannerImage(files []runner.File, def string) string {
	seen := map[string]bool{}
	for _, f := range files {
		wf, err := f.Parse(workflow.Options{})
		if err != nil {
			continue
		}
		for _, st := range wf.Steps {
			seen[firstOf(st.Image, wf.Image, def)] = true
		}
	}
	if len(seen) > 1 {
		return "images per step"
	}
	for img := range seen {
		if !strings.Contains(img, "{matrix.") {
			return "image " + img
		}
		return "images per step"
	}
	return "image " + def
}

// localInstance is the instance id of this local run's objects:
// local-<host>-<pid>-<random>, so a later local run on the same host can
// tell that the process that made them is gone (sweepDeadLocalRuns).
func localInstance() string {
	return fmt.Sprintf("local-%s-%d-%s", localHost(), os.Getpid(), forge.NewID())
}

// localHost is the host name as it appears in localInstance.
func localHost() string {
	host, _ := os.Hostname()
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, host)
}

var localInstanceRE = regexp.MustCompile(`^local-(.*)-([0-9]+)-[a-z0-9]+$`)

// sweepDeadLocalRuns removes the containers, volumes and networks of
// earlier local runs on this host whose kod process no longer exists (it
// was killed, or died before cleaning up). Objects of other hosts (a shared
// engine), of live processes, and of servers are left alone. Failures are
// reported and do not stop this run.
func sweepDeadLocalRuns(ctx context.Context, u *ui, d *docker.Docker) {
	host := localHost()
	ids, err := d.Instances(ctx)
	if err != nil {
		u.notef("kod: could not look for leftovers of earlier local runs: %v\n", err)
		return
	}
	swept := 0
	for _, id := range ids {
		m := localInstanceRE.FindStringSubmatch(id)
		if m == nil || m[1] != host {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if _, err := d.Sweep(ctx, id, func(string) bool { return false }); err != nil {
			u.notef("kod: removing leftovers of an earlier local run (%s): %v\n", id, err)
			continue
		}
		swept++
	}
	if swept > 0 {
		u.notef("Removed the containers, volumes and networks of %d earlier local run(s) that ended without cleaning up.\n", swept)
	}
}

// processAlive reports whether a process pid exists on this host (one
// of another user counts as alive).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// brokenPipeWatch forwards writes to w and calls broken (once is enough;
// it may be called again) when a write fails because the reader went away
// (EPIPE), e.g. `kod workflow ... | head`.
type brokenPipeWatch struct {
	w      io.Writer
	broken func()
}

func (b *brokenPipeWatch) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		b.broken()
	}
	return n, err
}

// localStepLimits caps each step container of a local run, as the server
// does by default.
var localStepLimits = sandbox.Limits{MemoryBytes: 2 << 30, NanoCPUs: 2e9, PIDs: 1024}

// localLogOut is where live step output goes: stdout, or stderr with --json.
func localLogOut(u *ui) io.Writer {
	if u.json {
		return u.errOut
	}
	return u.out
}

// workTreeRoot returns the top of the git work tree holding dir, or dir
// itself (and false) outside git.
func workTreeRoot(ctx context.Context, dir string) (string, bool) {
	if top := gitOutput(ctx, dir, "rev-parse", "--show-toplevel"); top != "" {
		return top, true
	}
	return dir, false
}

// gitOutput runs git in dir and returns its trimmed output, "" on failure.
func gitOutput(ctx context.Context, dir string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// localWorkflowFiles reads the workflow files named by args (relative to
// cwd), or every .kod/workflows/*.toml under root. Paths are made relative
// to root when inside it, as the server names them.
func localWorkflowFiles(cmd *cobra.Command, root, cwd string, args []string) ([]runner.File, error) {
	if len(args) == 0 {
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(workflow.Dir), "*.toml"))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if !strings.HasPrefix(filepath.Base(m), ".") {
				args = append(args, m)
			}
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("no workflow files in %s: give FILE.toml, or see `kod workflow --help`", filepath.Join(root, workflow.Dir))
		}
	}
	var files []runner.File
	for _, arg := range args {
		p := arg
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && !strings.HasSuffix(arg, ".toml") {
				return nil, unknownWorkflowArg(cmd, arg)
			}
			return nil, fmt.Errorf("workflow file: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Size() > gitsvc.MaxWorkflowFileSize {
			return nil, fmt.Errorf("%s is not a workflow file (a regular file of at most %d bytes)", arg, gitsvc.MaxWorkflowFileSize)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, runner.File{Path: displayPath(root, p), Data: data})
	}
	return files, nil
}

// unknownWorkflowArg explains an argument that is neither a subcommand nor
// a file.
func unknownWorkflowArg(cmd *cobra.Command, arg string) error {
	var subs []string
	for _, c := range cmd.Root().Commands() {
		if c.Name() == "workflow" {
			for _, s := range c.Commands() {
				subs = append(subs, s.Name())
			}
		}
	}
	slices.Sort(subs)
	return fmt.Errorf("%q is neither a workflow file nor a command of `kod workflow` (%s)", arg, strings.Join(subs, ", "))
}

func displayPath(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return path.Base(filepath.ToSlash(p))
}

var repoNameCleaner = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// repoNameOf derives a repository name from a directory name.
func repoNameOf(dir string) string {
	name := strings.Trim(repoNameCleaner.ReplaceAllString(filepath.Base(dir), "-"), "-")
	if name == "" {
		return "local"
	}
	return name
}

// firstOf returns the first non-empty value.
func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
