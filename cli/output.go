package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// ui writes a command's output: tables or JSON to out, notes and progress
// to errOut, colour only when out is a terminal and NO_COLOR is unset.
type ui struct {
	out, errOut io.Writer
	json        bool
	color       bool
	now         time.Time
}

func (a *app) ui(cmd *cobra.Command) *ui {
	out := cmd.OutOrStdout()
	return &ui{
		out: out, errOut: cmd.ErrOrStderr(), json: a.jsonOut, now: a.now(),
		color: isTerminal(out) && a.getenv("NO_COLOR") == "" && a.getenv("TERM") != "dumb",
	}
}

// isTerminal reports whether w is an *os.File on a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// emitJSON prints v as indented JSON (the --json output).
func (u *ui) emitJSON(v any) error {
	enc := json.NewEncoder(u.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes to the output.
func (u *ui) printf(format string, args ...any) { fmt.Fprintf(u.out, format, args...) }

// notef writes a note to stderr (never mixed into --json output).
func (u *ui) notef(format string, args ...any) { fmt.Fprintf(u.errOut, format, args...) }

// ANSI colours used for statuses.
const (
	colRed    = "31"
	colGreen  = "32"
	colYellow = "33"
	colBlue   = "34"
	colGray   = "90"
	colBold   = "1"
)

// paint wraps s in an ANSI colour when colour is on.
func (u *ui) paint(code, s string) string {
	if !u.color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// statusColor is the colour of a run, step or delivery status word.
func statusColor(status string) string {
	switch status {
	case "completed", "success", "passed", "OK":
		return colGreen
	case "failed", "FAIL":
		return colRed
	case "running", "pending":
		return colYellow
	case "queued":
		return colBlue
	}
	return colGray
}

// cell is one table cell: its text and an optional colour.
type cell struct {
	text  string
	color string
}

// table prints rows under headers with columns aligned on the visible width
// (colour codes do not count), two spaces apart.
func (u *ui) table(headers []string, rows [][]cell) {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		for i, c := range cells {
			text := c.text
			if c.color != "" {
				text = u.paint(c.color, text)
			}
			b.WriteString(text)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(u.out, strings.TrimRight(b.String(), " "))
	}
	hs := make([]cell, len(headers))
	for i, h := range headers {
		hs[i] = cell{text: h, color: colBold}
	}
	line(hs)
	for _, r := range rows {
		line(r)
	}
}

// plain turns strings into uncoloured cells.
func plain(texts ...string) []cell {
	out := make([]cell, len(texts))
	for i, t := range texts {
		out[i] = cell{text: t}
	}
	return out
}

// ago formats the time ms (since the epoch) relative to now: "just now",
// "5 minutes ago", "in 3 days"; "-" for 0; a date beyond 60 days.
func ago(now time.Time, ms int64) string {
	if ms == 0 {
		return "-"
	}
	t := time.UnixMilli(ms)
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var size time.Duration
	var unit string
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		size, unit = time.Second, "second"
	case d < time.Hour-30*time.Second:
		size, unit = time.Minute, "minute"
	case d < 24*time.Hour-30*time.Minute:
		size, unit = time.Hour, "hour"
	case d < 61*24*time.Hour:
		size, unit = 24*time.Hour, "day"
	default:
		return t.UTC().Format("2006-01-02")
	}
	n := int((d + size/2) / size) // nearest: a token made to expire in 30 days says so
	if n != 1 {
		unit += "s"
	}
	if future {
		return fmt.Sprintf("in %d %s", n, unit)
	}
	return fmt.Sprintf("%d %s ago", n, unit)
}

// duration formats ms as "850ms", "4.2s", "3m05s" or "1h02m".
func duration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortID shortens a commit id to 10 characters.
func shortID(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
