package main

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
	streamed := err == nil
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
		// After a stream that lasted to the end, only a strict continuation
		// is printed (the live format may differ from the stored one).
		lw.continueWith(text, streamed && run.Status.Done())
		if run.Status.Done() {
			return run, nil
		}
		streamed = false
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
// what it printed so that a polled copy of the whole log continues it.
type logWriter struct {
	u         *ui
	w         io.Writer
	seen      strings.Builder // the log text printed so far (up to maxSeen)
	seenLen   int
	overflow  bool
	lineStart bool
}

const runningHeader = "==> (running)\n"

func newLogWriter(u *ui, w io.Writer) *logWriter { return &logWriter{u: u, w: w, lineStart: true} }

func (l *logWriter) Write(p []byte) (int, error) {
	l.seenLen += len(p)
	if !l.overflow && l.seen.Len()+len(p) <= maxSeen {
		l.seen.Write(p)
	} else {
		l.overflow = true
	}
	return len(p), l.print(p)
}

// print writes p, painting header lines when colour is on.
func (l *logWriter) print(p []byte) error {
	if !l.u.color {
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
		} else {
			b.Write(line)
		}
		l.lineStart = bytes.HasSuffix(line, []byte("\n"))
		p = p[len(line):]
	}
	_, err := l.w.Write(b.Bytes())
	return err
}

// continueWith prints what the whole log text has beyond what was printed;
// strict prints only an exact continuation.
// The header of a step that was still running ("==> (running)") becomes the
// step's name once it ends; its output then continues after it.
func (l *logWriter) continueWith(text string, strict bool) {
	var fresh string
	seen := l.seen.String()
	switch {
	case strict:
		if !l.overflow && strings.HasPrefix(text, seen) {
			fresh = text[len(seen):]
		}
	case l.overflow:
		if len(text) > l.seenLen {
			fresh = text[l.seenLen:]
		}
	case strings.HasPrefix(text, seen):
		fresh = text[len(seen):]
	default:
		fresh = renamedContinuation(seen, text)
	}
	if fresh == "" {
		return
	}
	// What was seen is now the server's text, even if a header was renamed.
	l.seen.Reset()
	l.seen.WriteString(text)
	l.seenLen = len(text)
	_ = l.print([]byte(fresh))
}

// renamedContinuation handles text whose "(running)" header got its step's
// name: it returns what follows the part already printed, else text beyond
// the printed length.
func renamedContinuation(seen, text string) string {
	if k := strings.LastIndex(seen, runningHeader); k >= 0 && strings.HasPrefix(text, seen[:k]) {
		rest := text[k:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 && strings.HasPrefix(rest, "==> ") {
			body, old := rest[nl+1:], seen[k+len(runningHeader):]
			if strings.HasPrefix(body, old) {
				return body[len(old):]
			}
		}
	}
	if len(text) > len(seen) {
		return text[len(seen):]
	}
	return ""
}

// stepCounts returns how many steps passed, failed and were skipped.
func stepCounts(res *forge.Result) (passed, failed, skipped int) {
	if res == nil {
		return
	}
	for _, s := range res.Steps {
		switch {
		case s.Skipped:
			skipped++
		case s.Success:
			passed++
		default:
			failed++
		}
	}
	return
}

// printRunSummary prints the step table and one line with the outcome.
func printRunSummary(u *ui, run *client.Run) {
	u.printf("\n")
	stepTable(u, run.Result)
	passed, failed, skipped := stepCounts(run.Result)
	dur := ""
	if run.Result != nil && run.StartedAt != 0 {
		dur = " in " + duration(run.Result.Duration)
	}
	u.printf("%s %s%s: %d passed, %d failed, %d skipped\n", u.paint(colBold, "Run "+run.ID),
		u.paint(statusColor(string(run.Status)), string(run.Status)), dur, passed, failed, skipped)
	if run.Error != "" {
		u.printf("%s\n", u.paint(colRed, run.Error))
	}
}

// stepTable prints one row per step: name, workflow, status, duration, error.
func stepTable(u *ui, res *forge.Result) {
	if res == nil || len(res.Steps) == 0 {
		return
	}
	var rows [][]cell
	for _, s := range res.Steps {
		status := "passed"
		switch {
		case s.Skipped:
			status = "skipped"
		case !s.Success:
			status = "failed"
		}
		dur := "-"
		if !s.Skipped {
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
	}
}
