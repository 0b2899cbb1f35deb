package runner

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestMaskString(t *testing.T) {
	t.Parallel()
	m := newMasker([]string{"hunter22", "abc", "s3cr3t-token", "s3cr3t", "line-one\r\nline-two\nxy\n   \n"})
	tests := []struct{ in, want string }{
		{"password is hunter22.", "password is [secret]."},
		{"hunter22hunter22", "[secret][secret]"},
		{"abc is too short to mask", "abc is too short to mask"},
		{"s3cr3t-token and s3cr3t", "[secret] and [secret]"}, // longest match wins
		{"line-one\r\nline-two\nxy\n   \n", "[secret]"},
		{"first line-one then line-two", "first [secret] then [secret]"},
		{"xy stays", "xy stays"},
		{"hunter2 is a prefix only", "hunter2 is a prefix only"},
		{"ends with hunt", "ends with hunt"},
	}
	for _, tt := range tests {
		if got := m.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if newMasker([]string{"abc", "", "\n\n"}) != nil {
		t.Error("a masker for values that are all too short should be nil")
	}
	var nilMasker *masker
	if nilMasker.String("abc") != "abc" {
		t.Error("nil masker changed text")
	}
}

// TestMultiLineJSONSecretLeavesUnrelatedJSONAlone: a pretty-printed JSON
// secret (a cloud service-account key) is masked whole and line by line
// where its lines carry something of it, but its punctuation-only and short
// lines (`  },`, `    ]`, `{`) no longer mask the same lines of unrelated
// JSON in the log.
func TestMultiLineJSONSecretLeavesUnrelatedJSONAlone(t *testing.T) {
	t.Parallel()
	secret := "{\n  \"type\": \"service_account\",\n  \"private_key_id\": \"4f1c9a7e2b\",\n  \"scopes\": [\n    \"all\"\n  ],\n  \"nested\": {\n    \"x\": 1\n  },\n  \"on\": true\n}"
	m := newMasker([]string{secret})
	unrelated := "{\n  \"items\": [\n    1,\n    2\n  ],\n  \"meta\": {\n    \"x\": 1\n  },\n  \"off\": false\n}\n"
	if got := m.String(unrelated); got != unrelated {
		t.Errorf("unrelated JSON was masked:\n%s", got)
	}
	if got := m.String("key:\n" + secret + "\nend"); got != "key:\n[secret]\nend" {
		t.Errorf("the whole value: %q", got)
	}
	if got := m.String(`id "private_key_id": "4f1c9a7e2b", printed alone`); got != "id [secret] printed alone" {
		t.Errorf("a line that carries the secret: %q", got)
	}
	for _, line := range []string{"    ]", "  },", "{", "  ],", "========", `"x": 1`} {
		if secretLine(line) {
			t.Errorf("secretLine(%q) = true, want false", line)
		}
	}
	for _, line := range []string{"-----BEGIN KEY-----", "AAAAB3NzaC1yc2E", `  "type": "service_account",`} {
		if !secretLine(line) {
			t.Errorf("secretLine(%q) = false, want true", line)
		}
	}
}

// TestMaskWriterAcrossWrites writes the same text split at every position
// (and byte by byte) and expects exactly what String gives for the whole.
func TestMaskWriterAcrossWrites(t *testing.T) {
	t.Parallel()
	secrets := []string{"correct-horse-battery", "PEM-LINE-1\nPEM-LINE-2\n"}
	m := newMasker(secrets)
	text := "log: correct-horse-battery\nkey:\nPEM-LINE-1\nPEM-LINE-2\nend corr"
	want := m.String(text)
	if strings.Contains(want, "horse") || strings.Contains(want, "PEM-LINE") {
		t.Fatalf("String leaves a value: %q", want)
	}
	for split := 0; split <= len(text); split++ {
		var out bytes.Buffer
		w := newMaskWriter(m, &out)
		w.Write([]byte(text[:split]))
		w.Write([]byte(text[split:]))
		w.Flush()
		if out.String() != want {
			t.Fatalf("split at %d: %q, want %q", split, out.String(), want)
		}
	}
	var out bytes.Buffer
	w := newMaskWriter(m, &out)
	for i := range len(text) {
		w.Write([]byte{text[i]})
	}
	if strings.Contains(out.String(), "horse") {
		t.Errorf("a value leaked before Flush: %q", out.String())
	}
	w.Close()
	if out.String() != want {
		t.Errorf("byte by byte: %q, want %q", out.String(), want)
	}
}

// TestMaskWriterHoldsOnlyPossibleStarts checks that output not starting a
// secret passes through at once (live logs are not delayed).
func TestMaskWriterHoldsOnlyPossibleStarts(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := newMaskWriter(newMasker([]string{"TOKEN-1234"}), &out)
	w.Write([]byte("progress 10%\r"))
	if out.String() != "progress 10%\r" {
		t.Errorf("unrelated output held back: %q", out.String())
	}
	w.Write([]byte("value TOK"))
	if out.String() != "progress 10%\rvalue " {
		t.Errorf("a possible start was not held: %q", out.String())
	}
	w.Write([]byte("EN-1234!"))
	if out.String() != "progress 10%\rvalue [secret]!" {
		t.Errorf("after the rest: %q", out.String())
	}
}

// TestMaskWriterRandom compares chunked writing with String over random text
// full of values and their prefixes.
func TestMaskWriterRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	secrets := []string{"aaaa", "aaab", "abab-abab", "xyzzy\nplugh", "0123456789"}
	m := newMasker(secrets)
	pieces := append([]string{"a", "b", "ab", "x", "\n", "012345", "plugh", " "}, secrets...)
	for range 300 {
		var sb strings.Builder
		for range 1 + rng.IntN(40) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := sb.String()
		var out bytes.Buffer
		w := newMaskWriter(m, &out)
		for rest := text; rest != ""; {
			n := 1 + rng.IntN(len(rest))
			w.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		w.Flush()
		if want := m.String(text); out.String() != want {
			t.Fatalf("text %q: chunked %q, whole %q", text, out.String(), want)
		}
		for _, s := range []string{"aaaa", "aaab", "abab-abab", "0123456789"} {
			if strings.Contains(out.String(), s) {
				t.Fatalf("text %q: %q left in %q", text, s, out.String())
			}
		}
	}
}

// benchmarkLog is 1 MiB of build-log-like text (the benchmark writes it
// 100 times: 100 MB per iteration) in 32 KiB writes, the size the Docker
// backend copies.
func benchmarkLog() []byte {
	var b bytes.Buffer
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"compiling", "src/main.go", "ok", "PASS", "--- FAIL:", "warning:", "linking", "0.12s", "github.com/x/y", "test_case_", "=", "{", "}", "\t"}
	for b.Len() < 1<<20 {
		for range 12 {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:1<<20]
}

func benchSecrets() []string {
	return []string{"ghp_9f8e7d6c5b4a3928172635", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"s3cr3t-passw0rd!", "xoxb-1234-5678-abcdefghij", "db-password-prod-42", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
		"npm_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "hooks-signing-key-1", "-----BEGIN OPENSSH PRIVATE KEY-----"}
}

func writeLog(b *testing.B, w io.Writer, chunk []byte) {
	for range b.N {
		for range 100 {
			for off := 0; off < len(chunk); off += 32 << 10 {
				w.Write(chunk[off:min(off+32<<10, len(chunk))])
			}
		}
	}
}

// BenchmarkMaskDiscard: 100 MB through a masker of 10 secrets into
// io.Discard, against the baseline of the same writes straight to
// io.Discard (BenchmarkNoMaskDiscard).
func BenchmarkMaskDiscard(b *testing.B) {
	chunk := benchmarkLog()
	w := newMaskWriter(newMasker(benchSecrets()), io.Discard)
	b.SetBytes(100 * int64(len(chunk)))
	b.ResetTimer()
	writeLog(b, w, chunk)
}

func BenchmarkNoMaskDiscard(b *testing.B) {
	chunk := benchmarkLog()
	b.SetBytes(100 * int64(len(chunk)))
	b.ResetTimer()
	writeLog(b, io.Discard, chunk)
}

// BenchmarkMaskStepLog: the path of step output, 100 MB in 32 KiB writes
// into a step log file, with the masker of 10 secrets in front and
// without, alternately in one run; it reports both and their ratio.
func BenchmarkMaskStepLog(b *testing.B) {
	chunk := benchmarkLog()
	m := newMasker(benchSecrets())
	var masked, plain time.Duration
	write := func(w io.Writer) time.Duration {
		start := time.Now()
		for range 100 {
			for off := 0; off < len(chunk); off += 32 << 10 {
				w.Write(chunk[off:min(off+32<<10, len(chunk))])
			}
		}
		return time.Since(start)
	}
	dir := b.TempDir()
	for b.Loop() {
		for _, withMask := range []bool{true, false} {
			log, err := newStepLog(dir+"/0.log", DefaultLogCap, 64<<10, nil)
			if err != nil {
				b.Fatal(err)
			}
			if withMask {
				mw := newMaskWriter(m, log)
				masked += write(mw)
				mw.Flush()
			} else {
				plain += write(log)
			}
			log.Close()
		}
	}
	n := float64(b.N)
	b.ReportMetric(masked.Seconds()/n, "s/masked-100MB")
	b.ReportMetric(plain.Seconds()/n, "s/plain-100MB")
	b.ReportMetric(masked.Seconds()/plain.Seconds(), "ratio")
}

// TestMaskLongValues covers values longer than the skip window (64 bytes)
// and a value as short as MinMaskedLen in the same masker.
func TestMaskLongValues(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789abcdef", 20) // 320 bytes
	m := newMasker([]string{long, "wxyz"})
	text := "a " + long + " b wxyz c " + long[:100] + " d"
	want := "a [secret] b [secret] c " + long[:100] + " d"
	if got := m.String(text); got != want {
		t.Fatalf("String = %q", got)
	}
	for _, size := range []int{1, 7, 63, 64, 65, 200} {
		var out bytes.Buffer
		w := newMaskWriter(m, &out)
		for rest := text; rest != ""; {
			n := min(size, len(rest))
			w.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		w.Flush()
		if out.String() != want {
			t.Errorf("writes of %d bytes: %q", size, out.String())
		}
	}
}

// BenchmarkMaskDiscardShortSecret is the worst case for skipping: one of the
// 10 secrets is only MinMaskedLen bytes long.
func BenchmarkMaskDiscardShortSecret(b *testing.B) {
	chunk := benchmarkLog()
	w := newMaskWriter(newMasker(append(benchSecrets()[1:], "k3y!")), io.Discard)
	b.SetBytes(100 * int64(len(chunk)))
	b.ResetTimer()
	writeLog(b, w, chunk)
}
