package runner_test

import (
	"context"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// loudStep prints 100 MB of log-like lines (no secret among them).
const loudStep = `
[[steps]]
name = "loud"
run = "yes 'compiling src/main.go ok PASS --- warning: linking github.com/x/y 0.12s' | head -c 100000000"
`

// dockerRunner is a runner on the real engine whose repositories have
// secrets (nil: none).
func dockerRunner(b *testing.B, secrets runner.Secrets) (*runner.Runner, <-chan *forge.Run) {
	r, _, _, done := engineRunner(b, runner.Config{Secrets: secrets}, staticSource{loudStep})
	return r, done
}

// BenchmarkMaskedCapture100MB runs a step printing 100 MB through Docker
// with 10 repository secrets (every byte goes through the masker) and the
// same step without secrets, alternately in one run, and reports the time
// of each and their ratio (step start to final state stored).
func BenchmarkMaskedCapture100MB(b *testing.B) {
	values := make(secretList, 0, 10)
	for i, v := range []string{"ghp_9f8e7d6c5b4a3928172635", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"s3cr3t-passw0rd!", "xoxb-1234-5678-abcdefghij", "db-password-prod-42", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
		"npm_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "hooks-signing-key-1", "-----BEGIN OPENSSH PRIVATE KEY-----"} {
		values = append(values, forge.SecretValue{Name: "S" + string(rune('A'+i)), Value: v})
	}
	masked, maskedDone := dockerRunner(b, values)
	plain, plainDone := dockerRunner(b, nil)
	var withMask, without time.Duration
	run := func(r *runner.Runner, done <-chan *forge.Run) time.Duration {
		start := time.Now()
		if _, err := r.Enqueue(context.Background(), runner.Request{Repo: "repo", Branch: "main", Commit: "0123456789abcdef0123456789abcdef01234567", Trigger: forge.TriggerManual}); err != nil {
			b.Fatal(err)
		}
		res := <-done
		if res.Status != forge.RunCompleted {
			b.Fatalf("run %s: %q", res.Status, res.Error)
		}
		return time.Since(start)
	}
	for b.Loop() {
		withMask += run(masked, maskedDone)
		without += run(plain, plainDone)
	}
	n := float64(b.N)
	b.ReportMetric(withMask.Seconds()/n, "s/masked-run")
	b.ReportMetric(without.Seconds()/n, "s/plain-run")
	b.ReportMetric(withMask.Seconds()/without.Seconds(), "ratio")
}
