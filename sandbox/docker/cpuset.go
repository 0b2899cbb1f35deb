package docker

import (
	"context"
	"strconv"
	"strings"
	"sync"
)

// cpuSets hands out the CPUs of whole-CPU steps. A step limited to N whole
// CPUs (sandbox.Limits.NanoCPUs a multiple of 1e9, N below the engine's CPU
// count) runs pinned to N CPUs, so nproc, getconf _NPROCESSORS_ONLN and
// os.cpu_count() (which read the affinity mask or the online CPUs of the
// cgroup) report N and `make -j$(nproc)` does not oversubscribe the quota.
// The N CPUs are those the fewest running kod steps are pinned to (ties go
// round the CPUs), counted by this backend only: other processes on the
// host are not seen. A fractional limit keeps the quota alone, as no CPU
// mask can express half a CPU.
type cpuSets struct {
	mu       sync.Mutex
	ncpu     int              // the engine's CPUs; 0 = not known yet
	disabled bool             // the engine refused a cpuset once
	load     []int            // running pinned steps per CPU
	next     int              // where the next tie-break starts
	held     map[string][]int // stepKey -> CPUs
}

// engineCPUs returns the engine's CPU count, asking it once.
func (d *Docker) engineCPUs(ctx context.Context) int {
	d.cpus.mu.Lock()
	n := d.cpus.ncpu
	d.cpus.mu.Unlock()
	if n > 0 {
		return n
	}
	info, err := d.cli.Info(ctx)
	if err != nil || info.NCPU <= 0 {
		return 0
	}
	d.cpus.mu.Lock()
	d.cpus.ncpu = info.NCPU
	d.cpus.mu.Unlock()
	return info.NCPU
}

// take pins the step key to the least loaded whole CPUs its limit asks for
// and returns them as a cpuset ("0,3"), or "" when the step is not pinned.
func (c *cpuSets) take(key string, nanoCPUs int64, ncpu int) string {
	if nanoCPUs <= 0 || nanoCPUs%1e9 != 0 || ncpu <= 0 {
		return ""
	}
	n := int(nanoCPUs / 1e9)
	if n >= ncpu {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled {
		return ""
	}
	if len(c.load) != ncpu {
		c.load = make([]int, ncpu)
		c.held = map[string][]int{}
	}
	if _, ok := c.held[key]; ok {
		c.releaseLocked(key)
	}
	picked := make([]int, 0, n)
	used := make([]bool, ncpu)
	for range n {
		best := -1
		for i := range ncpu {
			cpu := (c.next + i) % ncpu
			if !used[cpu] && (best < 0 || c.load[cpu] < c.load[best]) {
				best = cpu
			}
		}
		used[best] = true
		picked = append(picked, best)
		c.load[best]++
	}
	c.next = (picked[len(picked)-1] + 1) % ncpu
	c.held[key] = picked
	s := make([]string, len(picked))
	for i, cpu := range picked {
		s[i] = strconv.Itoa(cpu)
	}
	return strings.Join(s, ",")
}

// release gives back the CPUs of the step key, if it held any.
func (c *cpuSets) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(key)
}

func (c *cpuSets) releaseLocked(key string) {
	for _, cpu := range c.held[key] {
		if cpu < len(c.load) && c.load[cpu] > 0 {
			c.load[cpu]--
		}
	}
	delete(c.held, key)
}

// disable stops pinning (the engine refused a cpuset, e.g. its cgroup does
// not own every CPU it reports).
func (c *cpuSets) disable() {
	c.mu.Lock()
	c.disabled = true
	c.mu.Unlock()
}
