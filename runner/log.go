package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// stepLog receives a step's output: every byte goes to the step's log file
// (<logs>/<run>/<index>.log) and the last cap bytes are kept for the run
// record's output.
type stepLog struct {
	f       *os.File
	ring    []byte // circular buffer of the last len(ring) bytes
	pos     int    // next write position in ring
	written int64
	err     error
}

// StepLogPath returns the log file of step index of run under logsDir.
func StepLogPath(logsDir, runID string, index int) string {
	return filepath.Join(logsDir, runID, strconv.Itoa(index)+".log")
}

func newStepLog(path string, cap int) (*stepLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &stepLog{f: f, ring: make([]byte, cap)}, nil
}

// Write never fails towards the container stream: a full disk must not
// kill the step; the first error is kept and reported on Close.
func (l *stepLog) Write(p []byte) (int, error) {
	l.written += int64(len(p))
	if l.err == nil {
		if _, err := l.f.Write(p); err != nil {
			l.err = err
		}
	}
	n := len(p)
	if len(p) > len(l.ring) {
		p = p[len(p)-len(l.ring):]
	}
	c := copy(l.ring[l.pos:], p)
	copy(l.ring, p[c:])
	l.pos = (l.pos + len(p)) % len(l.ring)
	return n, nil
}

// Tail returns the kept output, with a marker when the start was cut.
func (l *stepLog) Tail() string {
	if l.written <= int64(len(l.ring)) {
		return string(l.ring[:l.written])
	}
	tail := string(l.ring[l.pos:]) + string(l.ring[:l.pos])
	dropped := l.written - int64(len(l.ring))
	return fmt.Sprintf("[... %d bytes of earlier output omitted; the full log is at /logs ...]\n%s", dropped, tail)
}

// Close closes the file and returns the first write error, if any.
func (l *stepLog) Close() error {
	err := l.f.Close()
	if l.err != nil {
		return l.err
	}
	return err
}
