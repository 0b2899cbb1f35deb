package workflow

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kod-forge/kod/forge"
)

// Rules both formats share. Each returns a message for the user (no file or
// line: the caller knows where the value was written).

// validEnvName reports whether name is a valid environment variable name,
// `^[A-Za-z_][A-Za-z0-9_]*$` (the same rule Kod applies to secret names).
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkSeconds turns a timeout written as whole seconds into a duration:
// 1 s up to MaxTimeout. The formats write timeouts in seconds (Kod).
func checkSeconds(n int64) (time.Duration, error) {
	if n <= 0 {
		return 0, fmt.Errorf("must be a positive number of seconds, got %d", n)
	}
	if max := int64(MaxTimeout / time.Second); n > max {
		return 0, fmt.Errorf("must be at most %d seconds (24 h), got %d", max, n)
	}
	return time.Duration(n) * time.Second, nil
}

// cleanWorkingDir checks a step's working_dir and returns it cleaned with
// forward slashes, "" for the workspace root. It must be relative and stay
// inside the checkout once cleaned ("a/../b" is fine, "../x" is not). Whether
// a symlink inside the checkout points outside it can only be checked by the
// runner, on the real tree.
func cleanWorkingDir(dir string) (string, error) {
	switch {
	case strings.TrimSpace(dir) == "":
		return "", fmt.Errorf("must not be empty (leave it out for the workspace root)")
	case strings.ContainsRune(dir, 0):
		return "", fmt.Errorf("must not contain a NUL byte")
	case strings.ContainsRune(dir, '\\'):
		return "", fmt.Errorf("%q: use forward slashes", dir)
	case path.IsAbs(dir):
		return "", fmt.Errorf("%q must be relative to the workspace, not absolute", dir)
	}
	clean := path.Clean(dir)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q leaves the workspace", dir)
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// checkNetwork maps the `network` setting to Workflow.Network: "none" stays,
// "bridge" and "" mean the default dedicated network ("").
func checkNetwork(v string) (string, error) {
	switch v {
	case "none":
		return "none", nil
	case "", "bridge":
		return "", nil
	}
	return "", fmt.Errorf("%q is not supported; use \"none\" (no network) or leave it out", v)
}

// checkCron checks a schedule entry the way the scheduler reads it
// (robfig/cron's standard parser): five fields (minute hour day-of-month
// month day-of-week), or a descriptor (@daily, @every 1h), optionally after
// CRON_TZ=<zone>.
func checkCron(expr string, min time.Duration) error {
	f := strings.Fields(expr)
	if len(f) == 0 {
		return fmt.Errorf("empty cron expression")
	}
	rest := f
	if strings.HasPrefix(f[0], "CRON_TZ=") || strings.HasPrefix(f[0], "TZ=") {
		rest = f[1:]
	}
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "@") && len(rest) != 5 {
		return fmt.Errorf("cron expression %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", expr, len(rest))
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return fmt.Errorf("cron expression %q: %v", expr, err)
	}
	return checkCronPace(expr, sched, time.Now(), min)
}

// MinScheduleInterval is the default shortest time allowed between two
// firings of a schedule, one minute: five-field cron cannot go below it,
// `@every 1s` could and would flood the queue with runs. Only tests lower
// it (Options.MinScheduleInterval, the server's KOD_SCHEDULE_MIN_INTERVAL).
const MinScheduleInterval = time.Minute

// checkCronPace refuses a schedule that fires more often than min, or never
// (robfig/cron gives up after five years: "0 0 30 2 *"). Two consecutive
// firings after from tell the pace: five fields fire on whole minutes at
// the most, and `@every d` every d.
func checkCronPace(expr string, sched cron.Schedule, from time.Time, min time.Duration) error {
	first := sched.Next(from)
	if first.IsZero() {
		return fmt.Errorf("cron expression %q never fires", expr)
	}
	second := sched.Next(first)
	if gap := second.Sub(first); !second.IsZero() && gap < min {
		return fmt.Errorf("cron expression %q fires every %s; firings must be at least %s apart (e.g. @every %s)", expr, gap, shortDuration(min), shortDuration(min))
	}
	return nil
}

// shortDuration prints 1m0s as 1m and 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MaxSteps is the largest number of steps a workflow file may have. Every
// step is a container and an entry of the run record.
const MaxSteps = 100

// checkStepName refuses what a terminal would interpret, and characters
// that print nothing, in a step name: names are printed in `==> name` log
// headers and CLI tables.
func checkStepName(name string) error {
	if forge.HasHidden(name) {
		return fmt.Errorf("step name %q contains control or invisible format characters (such as tab, newline, ESC, a zero-width space or a bidirectional override); use plain text", clip(name))
	}
	return nil
}

// checkUniqueNames rejects two steps with the same name: names identify steps
// in run results and logs.
func checkUniqueNames(steps []Step, nameLine func(i int) int) *ParseError {
	first := make(map[string]int, len(steps))
	for i, s := range steps {
		if j, ok := first[s.Name]; ok {
			return errAt(nameLine(i), "duplicate step name %q (first used at line %d)", s.Name, nameLine(j))
		}
		first[s.Name] = i
	}
	return nil
}
