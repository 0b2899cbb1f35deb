package docker_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// TestRunNetworksAreIsolated: a step listening on its run's network is
// reachable from another step of the same run, not from a step of another
// run running at the same time; a step with NoNetwork in a bridged run has
// only the loopback interface.
func TestRunNetworksAreIsolated(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	ctx := t.Context()
	a := testRun(t, d, sandbox.NetworkBridge)
	b := testRun(t, d, sandbox.NetworkBridge)

	server := shStep(0, `ip -4 -o addr show eth0 | sed 's/.*inet \([0-9.]*\).*/addr=\1/'; exec httpd -f -p 8080 -h /tmp`)
	var out buffer
	if err := d.StartStep(ctx, a, server, &out); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	t.Cleanup(func() { d.DestroyStep(t.Context(), a, server) })
	addrRE := regexp.MustCompile(`addr=([0-9.]+)`)
	waitFor(t, func() bool { return addrRE.MatchString(out.String()) })
	addr := addrRE.FindStringSubmatch(out.String())[1]
	probe := "nc -w 3 " + addr + " 8080 </dev/null 2>/dev/null && echo reached || echo unreachable"
	// httpd may not listen yet when its address is printed: the same run's
	// probe tries for up to a minute; once it got through, the others need
	// to try once only.
	retried := "for i in $(seq 60); do nc -w 3 " + addr + " 8080 </dev/null 2>/dev/null && { echo reached; exit 0; }; sleep 1; done; echo unreachable"
	if got, _ := runStep(t, d, a, shStep(1, retried)); strings.TrimSpace(got) != "reached" {
		t.Fatalf("same run: %q; the probe must reach the server for the test to mean anything", got)
	}
	if got, _ := runStep(t, d, b, shStep(0, probe)); !strings.Contains(got, "unreachable") {
		t.Errorf("another run reached this run's step: %q", got)
	}

	noNet := shStep(2, "sed -n '3,$s/:.*//p' /proc/net/dev | tr -d ' ' | sort | tr '\\n' ' '; "+probe)
	noNet.NoNetwork = true
	if got, _ := runStep(t, d, a, noNet); got != "lo unreachable\n" {
		t.Errorf("NoNetwork step in a bridged run: %q, want only lo and no reach", got)
	}
}
