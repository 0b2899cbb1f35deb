package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/engine"
)

// TestLocalArchive: the workspace of a local run is the working tree as it
// is: tracked files with uncommitted changes, untracked files not ignored,
// no deleted or ignored files, modes and symlinks kept, parents first, and
// a .git of HEAD in which git works (describe, status).
func TestLocalArchive(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	run("init", "-q", "-b", "main")
	write(".gitignore", "build/\n", 0o644)
	write("src/main.sh", "echo committed\n", 0o755)
	write("gone.txt", "deleted later\n", 0o644)
	run("add", "-A")
	run("commit", "-q", "-m", "c")
	run("tag", "-a", "-m", "v1", "v1.0.0")
	write("src/main.sh", "echo changed\n", 0o755)
	write("new/untracked.txt", "new\n", 0o644)
	write("build/out.bin", "ignored\n", 0o644)
	os.Remove(filepath.Join(dir, "gone.txt"))
	os.Symlink("src/main.sh", filepath.Join(dir, "link"))

	src := &localSource{root: dir, inGit: true, branch: "main"}
	var buf bytes.Buffer
	if err := src.Archive(context.Background(), "", "", &buf); err != nil {
		t.Fatal(err)
	}
	checkWorkspaceGit(t, bytes.NewReader(buf.Bytes()))
	got := map[string]string{}
	var order []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[hdr.Name] = string(data)
		order = append(order, hdr.Name)
		switch hdr.Name {
		case "src/main.sh":
			if hdr.Mode != 0o755 {
				t.Errorf("mode of main.sh: %o", hdr.Mode)
			}
		case "link":
			if hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "src/main.sh" {
				t.Errorf("link: %+v", hdr)
			}
		}
	}
	if got["src/main.sh"] != "echo changed\n" || got["new/untracked.txt"] != "new\n" {
		t.Errorf("content: %v", got)
	}
	for _, absent := range []string{"gone.txt", "build/out.bin"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s is in the workspace", absent)
		}
	}
	if i, j := slices.Index(order, "src/"), slices.Index(order, "src/main.sh"); i < 0 || i > j {
		t.Errorf("parent directory not first: %v", order)
	}
	// A linked work tree (git worktree add) gets the same .git.
	linked := filepath.Join(t.TempDir(), "linked")
	run("worktree", "add", "-q", "-b", "side", linked, "main")
	if err := os.WriteFile(filepath.Join(linked, "src/main.sh"), []byte("echo changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(linked, "new"), 0o755)
	os.WriteFile(filepath.Join(linked, "new/untracked.txt"), []byte("new\n"), 0o644)
	buf.Reset()
	if err := (&localSource{root: linked, inGit: true, branch: "main"}).Archive(context.Background(), "", "", &buf); err != nil {
		t.Fatal(err)
	}
	checkWorkspaceGit(t, &buf)
}

// checkWorkspaceGit unpacks a workspace tar and checks that git works in
// it as in a server's checkout: describe finds the tag, HEAD is on main,
// and status shows the working tree's uncommitted changes.
func checkWorkspaceGit(t *testing.T, r io.Reader) {
	t.Helper()
	ws := t.TempDir()
	tar := exec.Command("tar", "-x", "-C", ws)
	tar.Stdin = r
	if out, err := tar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", ws}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v in the workspace: %v %s", args, err, out)
		}
		return string(out)
	}
	if got := git("describe"); got != "v1.0.0-dirty\n" && got != "v1.0.0\n" {
		t.Errorf("git describe: %q", got)
	}
	if got := git("rev-parse", "--abbrev-ref", "HEAD"); got != "main\n" {
		t.Errorf("HEAD: %q", got)
	}
	if got := git("status", "--porcelain"); !strings.Contains(got, " M src/main.sh") || !strings.Contains(got, "?? new/") {
		t.Errorf("git status: %q", got)
	}
}

func TestSplitRepoArgs(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		name, rest string
		help       bool
	}{
		{[]string{"app", "protect", "main"}, "app", "protect main", false},
		{[]string{"-s", "http://x", "--json", "app", "webhook", "add", "u", "--events", "push"}, "app", "-s http://x --json webhook add u --events push", false},
		{[]string{"--token", "tok", "app", "-t", "other", "protected"}, "app", "--token tok -t other protected", false},
		{[]string{"--server=http://x", "app"}, "app", "--server=http://x", false},
		{[]string{"--help"}, "", "", true},
		{[]string{"--json"}, "", "--json", false},
	} {
		name, rest, help := splitRepoArgs(tc.args)
		if name != tc.name || strings.Join(rest, " ") != tc.rest || help != tc.help {
			t.Errorf("%v: %q %q %v", tc.args, name, rest, help)
		}
	}
}

func TestAgoAndSizes(t *testing.T) {
	now := fakeNow
	for ms, want := range map[int64]string{
		0:                                       "-",
		now.Add(-3 * 1e9).UnixMilli():           "just now",
		now.Add(-45 * 1e9).UnixMilli():          "45 seconds ago",
		now.Add(-61 * 60 * 1e9).UnixMilli():     "1 hour ago",
		now.Add(30*24*3600*1e9 - 5).UnixMilli(): "in 30 days",
		now.Add(-100 * 24 * 3600 * 1e9).UnixMilli(): "2024-09-23",
	} {
		if got := ago(now, ms); got != want {
			t.Errorf("ago(%d) = %q, want %q", ms, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 3 << 20: "3.0 MiB", 1536: "1.5 KiB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
	for ms, want := range map[int64]string{850: "850ms", 4200: "4.2s", 185000: "3m05s", 3720000: "1h02m"} {
		if got := duration(ms); got != want {
			t.Errorf("duration(%d) = %q, want %q", ms, got, want)
		}
	}
}

// TestTableColour: colour codes do not break the alignment.
func TestTableColour(t *testing.T) {
	var out strings.Builder
	u := &ui{out: &out, color: true}
	u.table([]string{"A", "B"}, [][]cell{{{text: "failed", color: colRed}, {text: "x"}}, {{text: "ok"}, {text: "y"}}})
	plain := strings.NewReplacer("\x1b[31m", "", "\x1b[1m", "", "\x1b[0m", "").Replace(out.String())
	if plain != "A       B\nfailed  x\nok      y\n" {
		t.Errorf("table:\n%q", plain)
	}
	if !strings.Contains(out.String(), "\x1b[31mfailed\x1b[0m") {
		t.Errorf("no colour: %q", out.String())
	}
}

// TestSummaryListsThePlansSteps: the summary of a local run lists exactly
// the compiled plan's steps (matrix placeholders replaced, one row per
// instance), those cancelled before they started as "not run".
func TestSummaryListsThePlansSteps(t *testing.T) {
	files := []runner.File{{Path: "pipe.toml", Data: []byte("[matrix]\nOS = [\"a\", \"b\"]\n\n[[steps]]\nname = \"build {matrix.OS}\"\nrun = \"true\"\n\n[[steps]]\nname = \"test {matrix.OS}\"\nrun = \"true\"\n")}}
	run := &forge.Run{ID: "r1"}
	p, err := compileLocal(run, "img", files)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	u := &ui{out: &out, errOut: &out}
	sink := newLocalSink(u, p)
	now := time.Now()
	for _, wf := range p.Workflows {
		for _, st := range wf.Steps {
			if st.Name == "test b" {
				sink.StepEnded(st, engine.StepEnd{Status: engine.StepCancelled})
				continue
			}
			sink.StepStarted(st, now)
			sink.StepEnded(st, engine.StepEnd{Status: engine.StepCompleted, Started: now, Ended: now})
		}
	}
	run.Result = &forge.Result{Steps: sink.results()}
	out.Reset()
	printRunSummary(u, &client.Run{ID: "r1", Status: forge.RunCancelled, Result: run.Result})
	if strings.Contains(out.String(), "{matrix") || strings.Count(out.String(), "pipe.toml (OS=") != 4 {
		t.Errorf("summary does not list the plan's 4 steps:\n%s", out.String())
	}
	for _, want := range []string{"test b", "not run", "3 passed, 0 failed, 0 skipped, 1 not run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBannerImage: the local-run banner names the image the steps run in:
// the file's own when it sets one, else the default; several are "images
// per step".
func TestBannerImage(t *testing.T) {
	file := func(src string) []runner.File { return []runner.File{{Path: "a.toml", Data: []byte(src)}} }
	cases := []struct{ name, src, want string }{
		{"default", "[[steps]]\nname = \"a\"\nrun = \"true\"\n", "image def:1"},
		{"the file's", "image = \"mine:2\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n", "image mine:2"},
		{"per step", "image = \"mine:2\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"b\"\nimage = \"other:3\"\nrun = \"true\"\n", "images per step"},
		{"matrix", "image = \"img:{matrix.V}\"\n[matrix]\nV = [\"1\", \"2\"]\n[[steps]]\nname = \"a\"\nrun = \"true\"\n", "images per step"},
	}
	for _, c := range cases {
		if got := bannerImage(file(c.src), "def:1"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
