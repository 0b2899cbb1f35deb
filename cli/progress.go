package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressThreshold is the size from which transfers show progress, bytes.
const progressThreshold = 4 << 20

// progress counts bytes passing through and, when shown, redraws one line
// on a terminal at most every 200 ms: done, total (when known), rate.
type progress struct {
	out   io.Writer
	label string
	total int64 // 0 = unknown
	show  bool

	mu    sync.Mutex
	n     int64
	start time.Time
	drawn time.Time
}

func newProgress(out io.Writer, label string, total int64, terminal bool) *progress {
	return &progress{out: out, label: label, total: total, show: terminal, start: time.Now()}
}

func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	if !p.show || p.n < progressThreshold && p.total < progressThreshold {
		return
	}
	if now := time.Now(); now.Sub(p.drawn) >= 200*time.Millisecond {
		p.drawn = now
		p.draw()
	}
}

func (p *progress) draw() {
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 0.001)
	if p.total > 0 {
		fmt.Fprintf(p.out, "\r%s %s / %s (%d%%, %s/s)   ", p.label, bytesText(p.n), bytesText(p.total), p.n*100/p.total, bytesText(int64(rate)))
		return
	}
	fmt.Fprintf(p.out, "\r%s %s (%s/s)   ", p.label, bytesText(p.n), bytesText(int64(rate)))
}

// finish ends the progress line, if one was drawn.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.drawn.IsZero() {
		p.draw()
		fmt.Fprintln(p.out)
	}
}

// reader counts what r reads.
func (p *progress) reader(r io.Reader) io.Reader { return progressReader{r, p} }

// writer counts what is written to w.
func (p *progress) writer(w io.Writer) io.Writer { return progressWriter{w, p} }

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

type progressWriter struct {
	w io.Writer
	p *progress
}

func (w progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.add(n)
	return n, err
}

// bytesText formats n bytes as "512 B", "3.4 MiB".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
