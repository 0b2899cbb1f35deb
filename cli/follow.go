package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// pollEvery is how often a run is polled when the server does not stream.
var pollEvery = time.Second

// maxSeen caps the log text kept to continue by polling, bytes; past it the
// fallback continues by length only.
const maxSeen = 32 << 20

// followRun prints the run's log to w as it is written, until the run ends,
// and returns the final run. It uses the live stream (?follow=true) and,
// when the server does not stream (it refuses follow with 400/404, or ends
// the answer while the run is still going, as servers without live logs
// do), polls the log, printing only what is new.
func followRun(ctx context.Context, c *client.Client, u *ui, w io.Writer, repo, id, step string) (*client.Run, error) {
	lw := newLogWriter(u, w)
	rc, err := c.Logs(ctx, repo, id, client.LogOptions{Follow: true, Step: step})
	switch {
	case err == nil:
		_, err = io.Copy(lw, rc)
		rc.Close()
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A stream that ends before the run does is continued by polling.
	case followRefused(err):
	default:
		return nil, err
	}
	for {
		run, err := c.GetRun(ctx, repo, id)
		if err != nil {
			return nil, err
		}
		text, err := fetchLog(ctx, c, repo, id, step)
		if err != nil {
			return nil, err
		}
		// After a stream that lasted to the end this prints nothing new,
		// unless the stream was a snapshot of a server without live logs.
		lw.continueWith(text, run.Status.Done())
		if run.Status.Done() {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// followRefused reports whether err is a server refusing ?follow (a server
// without live logs), as opposed to an unknown repository or run.
func followRefused(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusBadRequest || e.Status == http.StatusNotAcceptable ||
		(e.Status == http.StatusNotFound && e.Message == "Not found")
}

func fetchLog(ctx context.Context, c *client.Client, repo, id, step string) (string, error) {
	rc, err := c.Logs(ctx, repo, id, client.LogOptions{Step: step})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return string(data), err
}

// logWriter prints log text, painting "==> STEP" header lines, and keeps
// what it received so that a polled copy of the whole log continues it.
// The section of a step still running on a server without live logs is
// headed "==> (running)" until the step ends and gets its name: such a
// section is held back until then, so every header printed is a name.
type logWriter struct {
	u         *ui
	w         io.Writer
	text      []byte // the log received so far (up to maxSeen)
	printed   int    // bytes of text printed
	total     int    // bytes received, also past maxSeen
	overflow  bool   // text grew past maxSeen: passed through from there
	lineStart bool
}

const runningHeader = "==> (running)\n"

func newLogWriter(u *ui, w io.Writer) *logWriter { return &logWriter{u: u, w: w, lineStart: true} }

// Write takes the next bytes of a stream.
func (l *logWriter) Write(p []byte) (int, error) {
	l.total += len(p)
	if l.overflow {
		return len(p), l.print(p)
	}
	l.text = append(l.text, p...)
	if len(l.text) > maxSeen {
		rest := l.text[l.printed:]
		l.overflow, l.text = true, nil
		return len(p), l.print(rest)
	}
	return len(p), l.flush(false)
}

// flush prints what was received and not printed, holding back a trailing
// "(running)" section unless all is final.
func (l *logWriter) flush(final bool) error {
	end := len(l.text)
	if !final {
		if i := lastRunningHeader(l.text); i >= l.printed {
			end = i
		}
	}
	if end <= l.printed {
		return nil
	}
	err := l.print(l.text[l.printed:end])
	l.printed = end
	return err
}

// lastRunningHeader is the offset of the last "==> (running)" line, or -1.
func lastRunningHeader(text []byte) int {
	for i := len(text); i > 0; {
		i = bytes.LastIndex(text[:i], []byte(runningHeader))
		if i <= 0 || text[i-1] == '\n' {
			return i
		}
	}
	return -1
}

// continueWith takes a polled copy of the whole log and prints what it has
// beyond what was printed; final says the run has ended. A copy that does
// not continue the printed text (another format) adds nothing.
func (l *logWriter) continueWith(text string, final bool) {
	if l.overflow {
		if len(text) > l.total {
			_ = l.print([]byte(text[l.total:]))
			l.total = len(text)
		}
		return
	}
	if !strings.HasPrefix(text, string(l.text[:l.printed])) {
		return
	}
	l.text, l.total = []byte(text), len(text)
	_ = l.flush(final)
}

// print writes p, painting header lines when colour is on.
func (l *logWriter) print(p []byte) error {
	if !l.u.color {
		if len(p) > 0 {
			l.lineStart = p[len(p)-1] == '\n'
		}
		_, err := l.w.Write(p)
		return err
	}
	var b bytes.Buffer
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
		}
		if l.lineStart && bytes.HasPrefix(line, []byte("==> ")) {
			b.WriteString(l.u.paint(colBold+";"+colBlue, strings.TrimSuffix(string(line), "\n")))
			if bytes.HasSuffix(line, []byte("\n")) {
				b.WriteByte('\n')
			}
		} else if name, ok := stepPrefix(line); ok && l.lineStart {
			// A line of a step running beside others ("[name] text"):
			// each step keeps its colour, so interleaved steps read apart.
			b.WriteString(l.u.paint(prefixColor(name), "["+name+"]"))
			b.Write(line[len(name)+2:])
		} else {
			b.Write(line)
		}
		l.lineStart = bytes.HasSuffix(line, []byte("\n"))
		p = p[len(line):]
	}
	_, err := l.w.Write(b.Bytes())
	return err
}

// stepPrefix returns the step name of a line the server prefixed with
// "[name] " (steps running at once in a followed log).
func stepPrefix(line []byte) (string, bool) {
	if len(line) < 4 || line[0] != '[' {
		return "", false
	}
	end := bytes.Index(line, []byte("] "))
	if end < 2 || bytes.ContainsAny(line[1:end], "[]\n") {
		return "", false
	}
	return string(line[1:end]), true
}

// prefixColor is the colour of a step's prefix: the same for a name
// throughout a log.
func prefixColor(name string) string {
	palette := []string{"36", "35", "33", "32", "34", "96", "95", "93"}
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return palette[h%uint32(len(palette))]
}

// stepCounts returns how many steps passed, failed, were skipped, and
// did not run (pending, running, or cancelled before they started).
func stepCounts(res *forge.Result) (passed, failed, skipped, notRun int) {
	if res == nil {
		return
	}
	for _, s := range res.Steps {
		switch stepWord(s) {
		case "skipped":
			skipped++
		case "passed":
			passed++
		case "failed", "cancelled":
			failed++
		default:
			notRun++
		}
	}
	return
}

// stepWord is the status a step table shows: passed, failed, skipped,
// running, pending, cancelled (it ran and was stopped) or "not run"
// (cancelled before it started). Records without statuses (older
// servers) are read from success and skipped.
func stepWord(s forge.StepResult) string {
	switch s.Status {
	case forge.StepRunning, forge.StepPending:
		return string(s.Status)
	case forge.StepCancelled:
		if s.StartedAt == 0 {
			return "not run"
		}
		return "cancelled"
	case forge.StepCompleted:
		return "passed"
	case forge.StepFailed:
		return "failed"
	}
	switch {
	case s.Skipped:
		return "skipped"
	case s.Success:
		return "passed"
	}
	return "failed"
}

// printRunSummary prints the step table and one line with the outcome.
// The run's result lists every step of its plan, those that never ran
// included (pending, or cancelled before they started: "not run").
func printRunSummary(u *ui, run *client.Run) {
	u.printf("\n")
	stepTable(u, run.Result)
	passed, failed, skipped, unrun := stepCounts(run.Result)
	dur := ""
	if run.Result != nil && run.StartedAt != 0 {
		dur = " in " + duration(run.Result.Duration)
	}
	notRunText := ""
	if unrun > 0 {
		notRunText = fmt.Sprintf(", %d not run", unrun)
	}
	u.printf("%s %s%s: %d passed, %d failed, %d skipped%s\n", u.paint(colBold, "Run "+run.ID),
		u.paint(statusColor(string(run.Status)), string(run.Status)), dur, passed, failed, skipped, notRunText)
	if run.Error != "" {
		u.printf("%s\n", u.paint(colRed, run.Error))
	}
}

// stepTable prints one row per step: name, workflow, status, duration,
// error.
func stepTable(u *ui, res *forge.Result) {
	if res == nil || len(res.Steps) == 0 {
		return
	}
	var rows [][]cell
	for _, s := range res.Steps {
		status := stepWord(s)
		dur := "-"
		switch {
		case status == "running" && s.StartedAt != 0:
			dur = duration(int64(forge.NowMillis()-s.StartedAt)) + "…"
		case s.StartedAt != 0 || (!s.Skipped && s.Status == ""):
			dur = duration(s.Duration)
		}
		rows = append(rows, []cell{{text: s.Name}, {text: orDash(s.Workflow)}, {text: status, color: statusColor(status)},
			{text: dur}, {text: orDash(s.Error)}})
	}
	u.table([]string{"STEP", "WORKFLOW", "STATUS", "DURATION", "ERROR"}, rows)
}

// printRun prints a run record: its fields, then its steps.
func printRun(u *ui, run *client.Run) {
	status := string(run.Status)
	if run.Status == forge.RunQueued && run.QueuePosition > 0 {
		status += fmt.Sprintf(" (position %d in the queue)", run.QueuePosition)
	}
	dur := "-"
	if run.Result != nil && run.StartedAt != 0 && run.Status.Done() {
		dur = duration(run.Result.Duration)
	}
	fields := [][2]string{
		{"Run", run.ID},
		{"Repository", run.RepoName},
		{"Status", u.paint(statusColor(string(run.Status)), status)},
		{"Branch", run.Branch},
		{"Commit", orDash(run.Commit)},
		{"Trigger", orDash(string(run.Trigger))},
		{"Created", ago(u.now, int64(run.CreatedAt))},
		{"Duration", dur},
	}
	if run.Error != "" {
		fields = append(fields, [2]string{"Error", run.Error})
	}
	for _, f := range fields {
		u.printf("%-12s%s\n", f[0]+":", f[1])
	}
	if run.Result != nil && len(run.Result.Steps) > 0 {
		u.printf("\n")
		stepTable(u, run.Result)
		printFailedOutput(u, run.Result)
	}
}

// failedOutputLines is how many last lines of a failed step's output
// `kod workflow show` prints.
const failedOutputLines = 20

// printFailedOutput prints, for each failed step, the last lines of its
// output as recorded (the tail the run record keeps, masked) under a
// "==> name (workflow)" header.
func printFailedOutput(u *ui, res *forge.Result) {
	for _, s := range res.Steps {
		if stepWord(s) != "failed" || s.Output == "" {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(s.Output, "\n"), "\n")
		head := "==> " + s.Name
		if s.Workflow != "" {
			head += " (" + s.Workflow + ")"
		}
		if len(lines) > failedOutputLines {
			head += fmt.Sprintf(", last %d lines", failedOutputLines)
			lines = lines[len(lines)-failedOutputLines:]
		}
		u.printf("\n%s\n%s\n", u.paint(colBold, head), strings.Join(lines, "\n"))
	}
}
