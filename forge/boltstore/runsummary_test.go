package boltstore

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// TestSummarizeRuns: counts over the given repositories only (a repository
// whose name extends another's is not mixed in), and the newest runs across
// them, newest first, in full.
func TestSummarizeRuns(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustRepos(t, s, "a", "b", "a-b")
	statuses := []forge.RunStatus{forge.RunCompleted, forge.RunFailed, forge.RunQueued, forge.RunCancelled, forge.RunCompleted}
	var ids []string // creation order, over a and b
	for i := range 30 {
		repo := []string{"a", "b", "a-b"}[i%3]
		run := &forge.Run{ID: forge.NewID(), RepoName: repo, Status: statuses[i%len(statuses)],
			Result: &forge.Result{Steps: []forge.StepResult{{Name: "s", Output: "out"}}}}
		if err := s.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		if repo != "a-b" {
			ids = append(ids, run.ID)
		}
	}
	counts, recent, err := s.SummarizeRuns(ctx, []string{"b", "a"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[forge.RunStatus]int{}
	for i := range 30 {
		if i%3 != 2 {
			want[statuses[i%len(statuses)]]++
		}
	}
	if len(counts) != len(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	for st, n := range want {
		if counts[st] != n {
			t.Errorf("counts %v, want %v", counts, want)
		}
	}
	if len(recent) != 10 {
		t.Fatalf("%d recent runs", len(recent))
	}
	for i, run := range recent {
		if run.ID != ids[len(ids)-1-i] || run.Result == nil || run.Result.Steps[0].Output != "out" {
			t.Errorf("recent[%d] = %s %+v, want %s in full", i, run.ID, run.Result, ids[len(ids)-1-i])
		}
	}
	if counts, recent, err := s.SummarizeRuns(ctx, nil, 10); err != nil || len(counts) != 0 || len(recent) != 0 {
		t.Errorf("no repositories: %v %v %v", counts, recent, err)
	}
	if _, recent, _ := s.SummarizeRuns(ctx, []string{"a"}, 100); len(recent) != 10 {
		t.Errorf("all runs of a: %d", len(recent))
	}
}

// TestSummarizeRunsMemory: summarising 60 runs of 512 KiB output each
// (30 MiB of records) allocates about the ten records it returns, where
// decoding every run (ListRuns) allocates them all.
func TestSummarizeRunsMemory(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustRepos(t, s, "a", "b")
	out := strings.Repeat("x", 512<<10)
	for i := range 60 {
		repo := []string{"a", "b"}[i%2]
		run := &forge.Run{ID: forge.NewID(), RepoName: repo, Status: forge.RunCompleted, Result: &forge.Result{Steps: []forge.StepResult{{Name: "s", Output: out}}}}
		if err := s.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	summary := allocated(func() {
		if counts, recent, err := s.SummarizeRuns(ctx, []string{"a", "b"}, 10); err != nil || counts[forge.RunCompleted] != 60 || len(recent) != 10 {
			t.Errorf("%v %d %v", counts, len(recent), err)
		}
	})
	all := allocated(func() {
		for _, repo := range []string{"a", "b"} {
			if _, err := s.ListRuns(ctx, repo, 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("SummarizeRuns allocated %d KiB, ListRuns of everything %d KiB", summary>>10, all>>10)
	if summary > 10*(512<<10)*3/2 || summary*3 > all {
		t.Errorf("SummarizeRuns allocated %d bytes; decoding everything allocates %d", summary, all)
	}
}
