package docker

import "testing"

func TestCPUSetsTakeTheLeastLoaded(t *testing.T) {
	var c cpuSets
	steps := []struct {
		key  string
		nano int64
		want string
	}{
		{"r/0", 1e9, "0"},
		{"r/1", 1e9, "1"},
		{"r/2", 2e9, "2,3"},
		{"r/3", 1e9, "0"},     // every CPU has one: round the CPUs
		{"r/4", 1.5e9, ""},    // fractional: quota only
		{"r/5", 4e9, ""},      // all CPUs: nothing to pin
		{"r/6", 0, ""},        // no limit
		{"r/7", 3e9, "1,2,3"}, // the least loaded three
	}
	for _, s := range steps {
		if got := c.take(s.key, s.nano, 4); got != s.want {
			t.Errorf("take(%s, %d) = %q, want %q", s.key, s.nano, got, s.want)
		}
	}
	c.release("r/0")
	c.release("r/3")
	c.release("r/3") // twice is harmless
	if got := c.take("r/8", 1e9, 4); got != "0" {
		t.Errorf("after releases: take = %q, want the free CPU 0", got)
	}
	c.disable()
	if got := c.take("r/9", 1e9, 4); got != "" {
		t.Errorf("disabled: take = %q, want none", got)
	}
}
