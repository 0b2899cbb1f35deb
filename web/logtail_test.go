package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// lines asks the UI for a window of step 0 of run r1 whose output is
// given (in chunks; ended says whether the step is over).
func lines(t *testing.T, logs *fakeLogs, query string) *lineWindow {
	t.Helper()
	api := &fakeAPI{answers: map[string]any{"GET /repos/app/workflows/r1": forge.Run{ID: "r1", RepoName: "app", Status: forge.RunRunning}}}
	s, tok := newTestUI(t, api, logs)
	rec := get(t, s, s.sessions.create(tok.ID), "/ui/repos/app/runs/r1/steps/0/lines"+query)
	if rec.Code != http.StatusOK {
		t.Fatalf("lines%s: %d %s", query, rec.Code, rec.Body)
	}
	var w lineWindow
	if err := json.Unmarshal(rec.Body.Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	return &w
}

// numbered returns n lines "line 1\n"... and each line's start offset.
func numbered(n int) (string, []int64) {
	var b strings.Builder
	starts := make([]int64, n+1)
	for i := 1; i <= n; i++ {
		starts[i] = int64(b.Len())
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String(), starts
}

// chunked cuts s into pieces of size bytes, so lines straddle reads.
func chunked(s string, size int) [][]byte {
	var out [][]byte
	for len(s) > 0 {
		k := min(size, len(s))
		out = append(out, []byte(s[:k]))
		s = s[k:]
	}
	return out
}

func texts(w *lineWindow) []string {
	var out []string
	for _, s := range w.Segments {
		out = append(out, s.T)
	}
	return out
}

func TestStepLinesWindows(t *testing.T) {
	out, starts := numbered(2500)
	logs := &fakeLogs{chunks: chunked(out, 777), ended: true}

	tail := lines(t, logs, "")
	if tail.First != 1501 || len(tail.Segments) != 1000 || tail.Segments[999].T != "line 2500" || !tail.Complete || tail.End != int64(len(out)) {
		t.Fatalf("tail: first %d, %d lines, complete %v, end %d", tail.First, len(tail.Segments), tail.Complete, tail.End)
	}
	if tail.Start != starts[1501] || tail.Starts[0] != starts[1501] || tail.Starts[999] != starts[2500] {
		t.Errorf("tail offsets: start %d, starts %d..%d", tail.Start, tail.Starts[0], tail.Starts[999])
	}
	earlier := lines(t, logs, fmt.Sprintf("?before=%d", tail.Start))
	if earlier.First != 501 || len(earlier.Segments) != 1000 || earlier.End != tail.Start || earlier.Segments[999].T != "line 1500" {
		t.Errorf("earlier: first %d, %d lines, end %d (want %d)", earlier.First, len(earlier.Segments), earlier.End, tail.Start)
	}
	first := lines(t, logs, fmt.Sprintf("?before=%d", earlier.Start))
	if first.First != 1 || len(first.Segments) != 500 || first.Start != 0 {
		t.Errorf("first window: first %d, %d lines, start %d", first.First, len(first.Segments), first.Start)
	}

	deep := lines(t, logs, "?line=10")
	if deep.First != 1 || len(deep.Segments) != 1000 || !deep.More || deep.End != starts[1001] || deep.Complete {
		t.Errorf("line 10: first %d, %d lines, more %v, end %d (want %d)", deep.First, len(deep.Segments), deep.More, deep.End, starts[1001])
	}
	deep = lines(t, logs, "?line=2000&n=100")
	if deep.First != 1975 || deep.Segments[25].T != "line 2000" {
		t.Errorf("line 2000: first %d, %v", deep.First, deep.Segments[25])
	}
	later := lines(t, logs, fmt.Sprintf("?after=%d", starts[2400]))
	if later.First != 2400 || len(later.Segments) != 101 || later.More {
		t.Errorf("after line 2400: first %d, %d lines, more %v", later.First, len(later.Segments), later.More)
	}
}

func TestStepLinesTerminalSemantics(t *testing.T) {
	out := "a\r\nprogress 1\rprogress 2\rdone\n\x1b[31mred\x1b[0m\n<img src=x>\nlast"
	for _, size := range []int{1, 3, len(out)} {
		w := lines(t, &fakeLogs{chunks: chunked(out, size), ended: true}, "")
		got := fmt.Sprint(w.Segments)
		want := "[{a false} {progress 1 true} {progress 2 true} {done false} {\x1b[31mred\x1b[0m false} {<img src=x> false} {last false}]"
		if got != want || w.First != 1 || w.Total != 5 || w.End != int64(len(out)) {
			t.Errorf("chunks of %d: %q total %d end %d, want %q", size, got, w.Total, w.End, want)
		}
	}

	// A running step: its unfinished last line (even one ended by a "\r"
	// that may be half of "\r\n") is left to the live stream.
	for _, out := range []string{"x\nhalf", "x\nhalf\r", "x\nprogress\rhalf"} {
		w := lines(t, &fakeLogs{chunks: chunked(out, 2)}, "")
		if fmt.Sprint(texts(w)) != "[x]" || w.End != 2 || w.Complete {
			t.Errorf("running %q: %q end %d complete %v", out, texts(w), w.End, w.Complete)
		}
	}

	// Bytes the log cap dropped are one note line.
	w := lines(t, &fakeLogs{chunks: [][]byte{[]byte("head\n"), []byte("tail\n")}, dropped: map[int]int64{1: 1000}, ended: true}, "")
	if len(w.Segments) != 3 || w.Segments[0].T != "head" || !strings.Contains(w.Segments[1].T, "1000") || w.Segments[2].T != "tail" || w.Starts[2] != 1005 {
		t.Errorf("dropped bytes: %q starts %v", texts(w), w.Starts)
	}

	// A window that starts at the gap reads it again as the note line.
	w = lines(t, &fakeLogs{chunks: [][]byte{[]byte("head\n"), []byte("tail\n")}, dropped: map[int]int64{1: 1000}, ended: true}, "?after=5")
	if len(w.Segments) != 2 || w.First != 2 || !strings.Contains(w.Segments[0].T, "1000") || w.Segments[1].T != "tail" {
		t.Errorf("a window from the gap: first %d, %q", w.First, texts(w))
	}

	// An empty or not yet started step.
	w = lines(t, &fakeLogs{}, "")
	if w.First != 0 || len(w.Segments) != 0 || w.End != 0 {
		t.Errorf("empty step: %+v", w)
	}
}

func TestStepLinesBoundsLongLines(t *testing.T) {
	long := strings.Repeat("x", 3*maxLineKept) + "\nnext\n"
	w := lines(t, &fakeLogs{chunks: chunked(long, 4096), ended: true}, "")
	if len(w.Segments) != 2 || len(w.Segments[0].T) != maxLineKept || w.Segments[1].T != "next" || w.Starts[1] != int64(3*maxLineKept+1) {
		t.Errorf("a long line: %d segments, first %d bytes", len(w.Segments), len(w.Segments[0].T))
	}
}

// BenchmarkStepLinesTail is the server's part of opening a 100,000-line
// step: reading its log once and answering its last 1,000 lines as JSON.
func BenchmarkStepLinesTail(b *testing.B) {
	out, _ := numbered(100000)
	logs := &fakeLogs{chunks: chunked(out, 32<<10), ended: true}
	api := &fakeAPI{answers: map[string]any{"GET /repos/app/workflows/r1": forge.Run{ID: "r1", RepoName: "app", Status: forge.RunCompleted}}}
	s, tok := newTestUI(&testing.T{}, api, logs)
	sess := s.sessions.create(tok.ID)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		api.seen = nil
		rec := get(&testing.T{}, s, sess, "/ui/repos/app/runs/r1/steps/0/lines")
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
