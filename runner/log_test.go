package runner

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectedLog is what a step log of cap logCap holds after out was
// written: everything if it fits, else the head, the drop note and the
// tail.
func expectedLog(out []byte, logCap int64) string {
	head, tail := logCap/2, logCap-logCap/2
	if int64(len(out)) <= head+tail {
		return string(out)
	}
	h, t := out[:head], out[int64(len(out))-tail:]
	dropped := int64(len(out)) - head - tail
	note := DropNote(dropped)
	if h[len(h)-1] != '\n' {
		note = "\n" + note
	}
	return string(h) + note + string(t)
}

// readAll reads a step log through readAt from offset 0 as a follower
// does, writing the drop note where bytes are gone.
func readAll(t *testing.T, l *stepLog) string {
	t.Helper()
	var b bytes.Buffer
	buf := make([]byte, 7) // small reads cross every boundary
	off := int64(0)
	for {
		n, gap, end, err := l.readAt(buf, off)
		if err != nil {
			t.Fatalf("readAt(%d): %v", off, err)
		}
		switch {
		case n > 0:
			b.Write(buf[:n])
			off += int64(n)
		case gap > 0:
			if b.Len() > 0 && b.Bytes()[b.Len()-1] != '\n' {
				b.WriteByte('\n')
			}
			b.WriteString(DropNote(gap))
			off += gap
		case end:
			return b.String()
		default:
			return b.String()
		}
	}
}

func TestStepLogCapKeepsHeadAndTail(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&out, "line %02d\n", i) // 8 bytes a line
	}
	out.WriteString("no newline at the end")
	for _, logCap := range []int64{1 << 20, 64, 65, 100} {
		for _, chunk := range []int{1, 3, 8, 50, 1000} {
			t.Run(fmt.Sprintf("cap%d/chunk%d", logCap, chunk), func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "0.log")
				notified := 0
				l, err := newStepLog(path, logCap, 16, func() { notified++ })
				if err != nil {
					t.Fatal(err)
				}
				data := out.Bytes()
				var live string
				for i := 0; i < len(data); i += chunk {
					n, err := l.Write(data[i:min(i+chunk, len(data))])
					if err != nil || n != min(chunk, len(data)-i) {
						t.Fatalf("Write = %d, %v", n, err)
					}
					if i == len(data)/2 {
						live = readAll(t, l) // while the step runs
					}
				}
				want := expectedLog(data, logCap)
				if got := readAll(t, l); got != want {
					t.Errorf("read while running:\n%q\nwant\n%q", got, want)
				}
				if !strings.HasPrefix(live, want[:min(len(live), int(logCap/2))]) {
					t.Errorf("read mid-way %q does not start with the head", live)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				file, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(file) != want {
					t.Errorf("log file:\n%q\nwant\n%q", file, want)
				}
				if got := readAll(t, l); got != want {
					t.Errorf("read after close:\n%q\nwant\n%q", got, want)
				}
				if _, err := os.Stat(ringPath(path)); !os.IsNotExist(err) {
					t.Errorf("ring file left: %v", err)
				}
				if tail := l.Tail(); !strings.HasSuffix(tail, "at the end") || !strings.HasPrefix(tail, "[... ") {
					t.Errorf("record tail %q", tail)
				}
				if again := l.Tail(); again != "" {
					t.Errorf("Tail after Close keeps its buffer: %q", again)
				}
				if n, err := l.Write(nil); n != 0 || err != nil {
					t.Errorf("empty write: %d %v", n, err)
				}
				if n, err := l.Write([]byte("late")); n != 4 || err != nil || readAll(t, l) != want {
					t.Errorf("write after Close: %d %v", n, err)
				}
				if notified == 0 {
					t.Error("writes did not notify followers")
				}
			})
		}
	}
}

func TestStepLogBigWriteAndCrashRecovery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "3.log")
	l, err := newStepLog(path, 1000, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // one write far over the cap
	l.Write(big)
	l.Write([]byte("last words"))
	all := append(append([]byte{}, big...), "last words"...)
	want := expectedLog(all, 1000)
	// The server dies here: no Close. A restart folds the ring.
	if err := foldLeftoverRings(dir); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != want {
		t.Errorf("recovered log:\n%q\nwant\n%q", file, want)
	}
	if _, err := os.Stat(ringPath(path)); !os.IsNotExist(err) {
		t.Errorf("ring file left: %v", err)
	}
	l.ring.Close()
	l.f.Close()
}

// A full disk (here: a log whose ring cannot be created) never fails the
// step's writes; Close reports it.
func TestStepLogStorageErrorDoesNotFailWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	l, err := newStepLog(path, 10, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ringPath(path), 0o700); err != nil { // a directory in the ring's way
		t.Fatal(err)
	}
	for range 3 {
		if n, err := l.Write([]byte("0123456789")); n != 10 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := l.Close(); err == nil {
		t.Error("Close should report the storage error")
	}
	if got := l.Tail(); got != strings.Repeat("0123456789", 3) {
		t.Errorf("record output %q", got)
	}
}
