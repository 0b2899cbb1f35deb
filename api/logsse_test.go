package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

type piece struct {
	Line    string
	End     int64
	Partial bool
	CR      bool
}

// split feeds data to a lineSplitter in chunks of size n and ends the step.
func split(t *testing.T, data []byte, n int) []piece {
	t.Helper()
	var out []piece
	emit := func(line []byte, end int64, partial, cr bool) error {
		out = append(out, piece{string(line), end, partial, cr})
		return nil
	}
	var s lineSplitter
	for i := 0; i < len(data); i += n {
		if err := s.feed(data[i:min(i+n, len(data))], emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flush(false, emit); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLineSplitterTerminators(t *testing.T) {
	t.Parallel()
	data := []byte("one\ntwo\r\n10%\r20%\r\rthree\n\nno newline")
	want := []piece{
		{"one", 4, false, false},
		{"two", 9, false, false},
		{"10%", 13, false, true},
		{"20%", 17, false, true},
		{"", 18, false, true},
		{"three", 24, false, false},
		{"", 25, false, false},
		{"no newline", 35, false, false},
	}
	for n := 1; n <= len(data); n++ { // every chunk boundary, "\r|\n" included
		got := split(t, data, n)
		if len(got) != len(want) {
			t.Fatalf("chunks of %d: %+v", n, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("chunks of %d: line %d = %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
}

func TestLineSplitterLongLineAndUTF8(t *testing.T) {
	t.Parallel()
	// A 10 MB line of 3-byte runes, so piece boundaries fall inside runes.
	long := bytes.Repeat([]byte("€"), 10_000_000/3)
	data := append(append([]byte{}, long...), "\nafter\n"...)
	got := split(t, data, 32<<10+1)
	var joined strings.Builder
	i := 0
	for ; i < len(got) && got[i].Partial; i++ {
		if len(got[i].Line) > maxEventLine || !utf8.ValidString(got[i].Line) {
			t.Fatalf("piece %d: %d bytes, valid %v", i, len(got[i].Line), utf8.ValidString(got[i].Line))
		}
		joined.WriteString(got[i].Line)
	}
	if i < 300 {
		t.Fatalf("a 10 MB line came in %d pieces, want ~320 of at most 32 KiB", i)
	}
	joined.WriteString(got[i].Line)
	if joined.String() != string(long) || got[i].End != int64(len(long)+1) {
		t.Errorf("joined pieces differ from the line (len %d vs %d)", joined.Len(), len(long))
	}
	if len(got) != i+2 || got[i+1].Line != "after" {
		t.Errorf("after the long line: %+v", got[i+1:])
	}
}

func TestSSEDataIsValidUTF8(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	e := &sseLog{w: &b}
	if err := e.line([]byte("bad \xff\xfe bytes\x00 <tag>"), 12, false, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !utf8.ValidString(out) || !strings.HasSuffix(out, "\n\n") {
		t.Fatalf("event %q", out)
	}
	data, ok := strings.CutPrefix(strings.Split(out, "\n")[2], "data: ")
	var ev sseLine
	if !ok || json.Unmarshal([]byte(data), &ev) != nil {
		t.Fatalf("data line of %q", out)
	}
	if ev.Line != "bad \ufffd\ufffd bytes\x00 <tag>" {
		t.Errorf("line %q", ev.Line)
	}
}

// A partial flush between "\r" and "\n" (the follower caught up there) must
// neither send the line as a "\r" line nor turn the "\n" into an empty line.
func TestLineSplitterCRLFAcrossAFlush(t *testing.T) {
	t.Parallel()
	var out []piece
	emit := func(line []byte, end int64, partial, cr bool) error {
		out = append(out, piece{string(line), end, partial, cr})
		return nil
	}
	var s lineSplitter
	for _, step := range []func() error{
		func() error { return s.feed([]byte("two\r"), emit) },
		func() error { return s.flush(true, emit) },
		func() error { return s.feed([]byte("\nthree\n"), emit) },
		func() error { return s.flush(false, emit) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []piece{{"two", 5, false, false}, {"three", 11, false, false}}
	if len(out) != len(want) || out[0] != want[0] || out[1] != want[1] {
		t.Errorf("got %+v, want %+v", out, want)
	}
}
