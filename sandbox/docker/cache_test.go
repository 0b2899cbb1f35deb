package docker_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

const cachePath = "/root/.cache/kod-test"

// cacheRun restores a cache from `from` in a fresh run of instance, runs
// script with it mounted, then saves it (exit 0) or discards it, and
// returns the step's output and the saved state.
func cacheRun(t *testing.T, d *docker.Docker, instance string, from []string, script string) (string, sandbox.CacheSaved, bool) {
	t.Helper()
	ctx := t.Context()
	run := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: instance, Network: sandbox.NetworkNone, Workspace: "ci"}
	t.Cleanup(func() { _ = d.DestroyRun(context.Background(), run) })
	if err := d.SetupRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	c := &sandbox.CacheSpec{Index: 0, Path: cachePath, From: from, Image: dockertest.Image}
	if err := d.RestoreCache(ctx, run, c); err != nil {
		t.Fatalf("RestoreCache: %v", err)
	}
	step := shStep(0, script)
	step.Caches = []sandbox.CacheMount{{Index: 0, Path: cachePath}}
	out, state := runStep(t, d, run, step)
	if state.ExitCode != 0 {
		if err := d.DiscardCache(ctx, run, c); err != nil {
			t.Fatalf("DiscardCache: %v", err)
		}
		return out, sandbox.CacheSaved{}, false
	}
	saved, err := d.SaveCache(ctx, run, c)
	if err != nil {
		t.Fatalf("SaveCache: %v", err)
	}
	if err := d.DestroyRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if left := dockertest.RunLeftovers(t, instance, run.ID); len(left) > 0 {
		t.Errorf("run objects left after save and DestroyRun: %v", left)
	}
	return out, saved, true
}

// TestCacheLayers: a cache starts empty, keeps what a successful run
// wrote, forgets what a failed run wrote, is shared read-only with a run
// starting from it (another branch) whose writes do not reach it, keeps
// its state when a run writes nothing, and is squashed into one layer
// past the layer limit; deletions and removals hide nothing.
func TestCacheLayers(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	instance := dockertest.NewID(t)
	var all []string
	t.Cleanup(func() {
		removed, err := d.PruneCaches(context.Background(), instance, func(string) bool { return false })
		if err != nil {
			t.Errorf("PruneCaches: %v", err)
		}
		_ = removed
		dockertest.Clean(t, d, instance)
	})

	out, s1, _ := cacheRun(t, d, instance, nil, "ls "+cachePath+"; echo one > "+cachePath+"/a; mkdir "+cachePath+"/d; echo x > "+cachePath+"/d/f")
	if out != "" || !s1.Changed || len(s1.Layers) != 1 || s1.Size <= 0 {
		t.Fatalf("first run: output %q, saved %+v", out, s1)
	}
	all = append(all, s1.Layers...)

	// A failed run's writes are dropped.
	if _, _, ok := cacheRun(t, d, instance, s1.Layers, "echo failed > "+cachePath+"/a; exit 1"); ok {
		t.Fatal("the failing step succeeded")
	}
	// Another branch starts from s1: it sees it, and deletes and adds.
	out, other, _ := cacheRun(t, d, instance, s1.Layers, "cat "+cachePath+"/a; rm -r "+cachePath+"/d; echo b > "+cachePath+"/b")
	if out != "one\n" || !other.Changed || len(other.Layers) != 2 || other.Layers[0] != s1.Layers[0] {
		t.Fatalf("other branch: output %q, saved %+v", out, other)
	}
	// s1 itself is unchanged by both.
	out, same, _ := cacheRun(t, d, instance, s1.Layers, "cd "+cachePath+" && find . | sort | tr '\\n' ' '; cat a")
	if out != ". ./a ./d ./d/f one\n" || same.Changed || !slices.Equal(same.Layers, s1.Layers) {
		t.Fatalf("s1 after a failed run and another branch: output %q, saved %+v", out, same)
	}
	// The other branch's state shows its deletion through the layers.
	out, _, _ = cacheRun(t, d, instance, other.Layers, "cd "+cachePath+" && find . | sort | tr '\\n' ' '")
	if out != ". ./a ./b " {
		t.Fatalf("other branch's state: %q", out)
	}
	// Grow the chain past the limit: it is squashed into one fresh layer.
	state := other.Layers
	for i := range 3 {
		_, s, _ := cacheRun(t, d, instance, state, "echo "+string(rune('0'+i))+" > "+cachePath+"/n"+string(rune('0'+i)))
		if !s.Changed {
			t.Fatalf("write %d: not changed", i)
		}
		all = append(all, s.Layers...)
		if len(s.Layers) > 4 {
			t.Fatalf("chain of %d layers", len(s.Layers))
		}
		if len(s.Layers) == 1 && !slices.Equal(s.Unused, state) {
			t.Errorf("squash: unused %v, want %v", s.Unused, state)
		}
		state = s.Layers
	}
	if len(state) != 1 {
		t.Fatalf("after 5 writes the state has %d layers, want 1 (squashed)", len(state))
	}
	out, _, _ = cacheRun(t, d, instance, state, "cd "+cachePath+" && find . | sort | tr '\\n' ' '")
	if out != ". ./a ./b ./n0 ./n1 ./n2 " {
		t.Fatalf("squashed state: %q", out)
	}
	// Deleting the squashed layer keeps the other branch's older layers;
	// PruneCaches removes the unkept rest.
	if err := d.DeleteCacheLayers(t.Context(), state); err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{s1.Layers[0]: true}
	removed, err := d.PruneCaches(t.Context(), instance, func(l string) bool { return keep[l] })
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(removed, s1.Layers[0]) || !slices.Contains(removed, other.Layers[1]) {
		t.Errorf("PruneCaches removed %v", removed)
	}
	out, _, _ = cacheRun(t, d, instance, s1.Layers, "cat "+cachePath+"/a")
	if out != "one\n" {
		t.Errorf("kept layer after pruning: %q", out)
	}
	if err := d.RestoreCache(t.Context(), &sandbox.RunSpec{ID: "x", Instance: instance}, &sandbox.CacheSpec{Path: cachePath, From: []string{"/etc"}}); err == nil || !strings.Contains(err.Error(), "not a cache layer") {
		t.Errorf("foreign layer: %v", err)
	}
}
