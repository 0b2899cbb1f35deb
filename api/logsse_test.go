package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kod-forge/kod/runner"
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
	if err := e.lineOf(e.stepOf(&runner.LogEvent{}))([]byte("bad \xff\xfe bytes\x00 <tag>"), 12, false, false); err != nil {
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

// An unfinished last line sent as a partial piece (the follower caught up
// twice before the step ended) is still ended at the end of the step, by an
// empty line event: a client joining pieces must not be left holding it.
func TestLineSplitterEndsAPartialLastLine(t *testing.T) {
	t.Parallel()
	var out []piece
	emit := func(line []byte, end int64, partial, cr bool) error {
		out = append(out, piece{string(line), end, partial, cr})
		return nil
	}
	var s lineSplitter
	for _, step := range []func() error{
		func() error { return s.feed([]byte("one\nend"), emit) },
		func() error { return s.flush(true, emit) }, // quiet: "end" goes out as a piece
		func() error { return s.flush(true, emit) }, // nothing held: nothing sent
		func() error { return s.flush(false, emit) },
		func() error { return s.flush(false, emit) }, // already ended: nothing more
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []piece{{"one", 4, false, false}, {"end", 7, true, false}, {"", 7, false, false}}
	if len(out) != len(want) {
		t.Fatalf("got %+v, want %+v", out, want)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, out[i], want[i])
		}
	}

	// The same for a long line whose last piece was cut by size: the
	// newline-less end of the step ends it.
	out = nil
	s = lineSplitter{}
	if err := s.feed(bytes.Repeat([]byte("x"), maxEventLine), emit); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(false, emit); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out[0].Partial || out[1] != (piece{"", maxEventLine, false, false}) {
		t.Errorf("a line of exactly %d bytes at the end: %.80v", maxEventLine, out)
	}
}

// The follower's events for a step whose last line has no newline and ends
// after two quiet periods give an SSE client that joins pieces that line.
func TestSSEFinalUnterminatedLineAfterQuietPeriods(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	e := &sseLog{w: &b}
	for _, ev := range []runner.LogEvent{
		{Kind: runner.LogStepStarted, Name: "odd"},
		{Kind: runner.LogOutput, Name: "odd", Data: []byte("first\nend"), Offset: 9},
		{Kind: runner.LogCaughtUp, Offset: 9}, // output since the last one: hold "end"
		{Kind: runner.LogCaughtUp, Offset: 9}, // quiet: send "end" as a piece
		{Kind: runner.LogCaughtUp, Offset: 9},
		{Kind: runner.LogStepEnded, Name: "odd", Offset: 9},
	} {
		if err := e.emit(&ev); err != nil {
			t.Fatal(err)
		}
	}
	var lines, ids []string
	held := ""
	for _, block := range strings.Split(strings.TrimSpace(b.String()), "\n\n") {
		f := strings.Split(block, "\n")
		if len(f) != 3 || f[1] != "event: line" {
			continue
		}
		var d sseLine
		if err := json.Unmarshal([]byte(strings.TrimPrefix(f[2], "data: ")), &d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimPrefix(f[0], "id: "))
		held += d.Line
		if !d.Partial {
			lines = append(lines, held)
			held = ""
		}
	}
	if strings.Join(lines, "|") != "first|end" || held != "" {
		t.Errorf("lines %q, still held %q; stream:\n%s", lines, held, b.String())
	}
	if strings.Join(ids, " ") != "0:6 0:9+ 0:9" {
		t.Errorf("ids %q, want a partial piece's id to end with +", ids)
	}
}

// TestPlainLogNamesSharedSteps: in a followed plain log, a step whose name
// another step of the run has is headed with its workflow and its lines
// prefixed with its id, also when the step sharing the name is not running
// at the same time; other steps keep "==> name" and "[name] ".
func TestPlainLogNamesSharedSteps(t *testing.T) {
	var out bytes.Buffer
	p := &plainLog{w: &out, headers: true, lastNL: true, open: map[int]*openStep{}, interleave: true}
	evs := []runner.LogEvent{
		{Kind: runner.LogStepStarted, Step: 0, ID: "pipe-os-a.left", Name: "left", Workflow: "pipe.toml (OS=a)", Shared: true},
		{Kind: runner.LogStepStarted, Step: 1, ID: "other.right", Name: "right", Workflow: "other.toml"},
		{Kind: runner.LogOutput, Step: 0, Data: []byte("l1\n")},
		{Kind: runner.LogOutput, Step: 1, Data: []byte("r1\n")},
		{Kind: runner.LogStepEnded, Step: 0},
		{Kind: runner.LogStepEnded, Step: 1},
	}
	for i := range evs {
		if err := p.emit(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := "==> left (pipe.toml (OS=a))\n==> right\n[pipe-os-a.left] l1\n[right] r1\n"
	if out.String() != want {
		t.Errorf("plain log:\n%q\nwant\n%q", out.String(), want)
	}
}
