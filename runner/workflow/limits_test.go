package workflow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// manySteps writes a workflow of n steps in the given format; the header of
// step i (0-based) is on line headerLine(i).
func manySteps(format Format, n int) string {
	var b strings.Builder
	for i := range n {
		if format == FormatLegacy {
			fmt.Fprintf(&b, "[step:s%d]\nrun: echo %d\n", i, i)
		} else {
			fmt.Fprintf(&b, "[[steps]]\nname = \"s%d\"\nrun = \"echo %d\"\n", i, i)
		}
	}
	return b.String()
}

func TestStepsPerFileCap(t *testing.T) {
	for _, tt := range []struct {
		format     Format
		headerLine func(i int) int
	}{
		{FormatTOML, func(i int) int { return 3*i + 1 }},
		{FormatLegacy, func(i int) int { return 2*i + 1 }},
	} {
		t.Run(string(tt.format), func(t *testing.T) {
			wf, err := Parse("ci.toml", []byte(manySteps(tt.format, MaxSteps)))
			if err != nil || len(wf.Steps) != MaxSteps || wf.Format != tt.format {
				t.Fatalf("%d steps: %v", MaxSteps, err)
			}
			_, err = Parse("ci.toml", []byte(manySteps(tt.format, 200)))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != tt.headerLine(MaxSteps) || !strings.Contains(pe.Msg, "too many steps: a workflow file may have at most 100") {
				t.Fatalf("200 steps: %v, want a parse error at line %d", err, tt.headerLine(MaxSteps))
			}
		})
	}
}

func TestFileNameWithControlCharacters(t *testing.T) {
	name := Dir + "/\x1b[2Jci.toml"
	_, err := Parse(name, []byte("[[steps]]\nname = \"a\"\nrun = \"x\"\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), `"`+Dir+`/\x1b[2Jci.toml": the file name contains control or invisible format characters`) {
		t.Fatalf("got %v", err)
	}
	// Non-ASCII names are fine.
	if _, err := Parse(Dir+"/déploiement.toml", []byte("[[steps]]\nname = \"é ✓\"\nrun = \"x\"\n")); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrorMessagesAreShort(t *testing.T) {
	long := strings.Repeat("é", 300<<10) // 600 KB in one value
	for _, src := range []string{
		"timeout = \"" + long + "\"\n[[steps]]\nname = \"a\"\nrun = \"x\"\n",
		"[[steps]]\nname = \"a\"\nrun = \"x\"\nworking_dir = \"../" + long + "\"\n",
		"[on]\nschedule = [\"" + long + "\"]\n[[steps]]\nname = \"a\"\nrun = \"x\"\n",
		"[step:a]\nrun: x\nif: " + long + "\n",
	} {
		_, err := Parse("ci.toml", []byte(src))
		var pe *ParseError
		if !errors.As(err, &pe) || len(pe.Msg) > maxMsgLen || !strings.Contains(pe.Msg, "...") || pe.Line == 0 {
			t.Errorf("message of %d bytes: %.200v", len(pe.Msg), err)
		}
	}
}

func TestCronPace(t *testing.T) {
	from := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	for expr, want := range map[string]string{
		"* * * * *":             "",
		"*/5 * * * *":           "",
		"@every 1m":             "",
		"@every 90s":            "",
		"@hourly":               "",
		"0 0 29 2 *":            "", // leap days fire
		"@every 59s":            `cron expression "@every 59s" fires every 59s; firings must be at least 1m apart (e.g. @every 1m)`,
		"@every 1s":             `cron expression "@every 1s" fires every 1s`,
		"@every 100ms":          `cron expression "@every 100ms" fires every 1s`, // robfig rounds up to 1 s
		"0 0 31 4 *":            `cron expression "0 0 31 4 *" never fires`,
		"CRON_TZ=UTC @every 2s": `fires every 2s`,
	} {
		sched, err := cron.ParseStandard(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		err = checkCronPace(expr, sched, from, time.Minute)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", expr, err, want)
		}
	}
}
