package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// logReadAttempts bounds the reads of a step's log after it ended.
const logReadAttempts = 5

// followLog copies the log of the step container of pod to out, from the
// start, until the step has ended (ended is closed) and its log is fully
// read. A stream that breaks is reopened where it broke, without loss or
// duplicates (see logCursor); after the end one last read catches what a
// stream that ended early missed. If out fails, the log is still read (so
// a broken sink never blocks the step) and out's first error is returned.
func (k *Kubernetes) followLog(ctx context.Context, pod string, out io.Writer, ended <-chan struct{}) error {
	c := &logCursor{out: out, lineStart: true}
	failures := 0
	for {
		final := closed(ended)
		err := k.readLog(ctx, pod, c, !final)
		switch {
		case ctx.Err() != nil:
			return c.outErr
		case final && err == nil:
			return c.outErr
		case err != nil:
			failures++
			k.log.Debug("step log stream broke", "pod", pod, "bytes", c.pos, "err", err)
			if final && failures >= logReadAttempts {
				return errors.Join(fmt.Errorf("kubernetes: reading the log of pod %s: %w", pod, err), c.outErr)
			}
		}
		// A stream ends when the container does; wait for the watcher to
		// say so (then read once more) or reconnect if it does not.
		delay := min(time.Duration(failures)*200*time.Millisecond, 2*time.Second) + 500*time.Millisecond
		t := time.NewTimer(delay)
		select {
		case <-ended:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// readLog reads one log stream of pod into c: following it, or up to its
// current end. A cursor that has read lines already resumes from the second
// of its anchor (the API's sinceTime has whole seconds) and skips what it
// has.
func (k *Kubernetes) readLog(ctx context.Context, pod string, c *logCursor, follow bool) error {
	opts := &corev1.PodLogOptions{Container: stepContainer, Follow: follow, Timestamps: true}
	if c.anchored {
		opts.SinceTime = &metav1.Time{Time: c.anchorTS.Truncate(time.Second)}
	}
	rc, err := k.openLog(ctx, pod, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	return c.session(c.anchored).consume(rc)
}

// logCursor is how far a step's log has been copied to out. The log API
// has no byte offsets: with timestamps=true it prefixes every line with the
// time (RFC 3339, nanoseconds) its first part was logged, and a resumed
// stream starts at a whole second. So the cursor remembers the last line
// start it saw (its anchor: time, position among lines of the same time,
// and output offset); a resumed stream is aligned on that line and the
// bytes before pos are skipped.
type logCursor struct {
	out    io.Writer
	outErr error // out's first error; later output is discarded

	pos       int64 // bytes of log content copied
	lineStart bool  // the content so far ends a line (or is empty)

	anchored  bool
	anchorTS  time.Time
	anchorOrd int   // lines before the anchor with the same time, in a row
	anchorOff int64 // offset of the anchor line's first byte
}

func (c *logCursor) write(p []byte) {
	if c.outErr == nil {
		if _, err := c.out.Write(p); err != nil {
			c.outErr = fmt.Errorf("write step output: %w", err)
		}
	}
	c.pos += int64(len(p))
	c.lineStart = p[len(p)-1] == '\n'
}

// logSession parses one stream.
type logSession struct {
	c       *logCursor
	seeking bool  // resumed: looking for the anchor line
	skip    bool  // seeking: the current line is before the anchor
	sp      int64 // stream position in the cursor's offsets, once aligned

	prevTS time.Time
	ord    int // lines with prevTS in a row, before the current one
	first  bool
}

func (c *logCursor) session(resume bool) *logSession {
	return &logSession{c: c, seeking: resume, sp: c.pos, first: true}
}

// consume parses r: "<timestamp> <content>" where content runs to the next
// newline, after which the next timestamp follows; parts of a long line
// logged separately carry no timestamp of their own.
func (s *logSession) consume(r io.Reader) error {
	br := bufio.NewReaderSize(r, 32<<10)
	atPrefix := true
	for {
		if atPrefix {
			t, rest, err := readTimestamp(br)
			if err != nil {
				if errors.Is(err, io.EOF) && len(rest) == 0 {
					return nil
				}
				if errors.Is(err, io.EOF) {
					return io.ErrUnexpectedEOF // cut inside a timestamp
				}
				return err
			}
			if rest != nil {
				// No timestamp: the rest of a line that began before the
				// stream did (the API does not prefix it). A resumed stream
				// starts before the anchor, so it is old.
				s.headless()
				s.content(rest)
				atPrefix = rest[len(rest)-1] == '\n'
				continue
			}
			s.prefix(t)
			atPrefix = false
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			s.content(chunk)
			atPrefix = chunk[len(chunk)-1] == '\n'
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// maxTimestamp is the length of the longest RFC 3339 timestamp with
// nanoseconds and a zone offset.
const maxTimestamp = len("2006-01-02T15:04:05.999999999-07:00")

// readTimestamp reads "<RFC 3339 time> " from br. If what follows is not
// one, it returns the bytes it read (up to a newline) as rest instead. It
// reads byte by byte so that it never waits for more than the timestamp.
func readTimestamp(br *bufio.Reader) (time.Time, []byte, error) {
	var buf []byte
	for len(buf) <= maxTimestamp {
		b, err := br.ReadByte()
		if err != nil {
			return time.Time{}, buf, err
		}
		buf = append(buf, b)
		switch b {
		case ' ':
			t, err := time.Parse(time.RFC3339Nano, string(buf[:len(buf)-1]))
			if err != nil {
				return time.Time{}, buf, nil
			}
			return t, nil, nil
		case '\n':
			return time.Time{}, buf, nil
		}
	}
	return time.Time{}, buf, nil
}

// headless handles content that did not start with a timestamp.
func (s *logSession) headless() {
	if s.seeking {
		s.skip = true
	}
}

// prefix handles the timestamp of a line.
func (s *logSession) prefix(t time.Time) {
	if !s.first && t.Equal(s.prevTS) {
		s.ord++
	} else {
		s.ord = 0
	}
	s.first = false
	s.prevTS = t
	c := s.c
	if s.seeking {
		switch {
		case t.Before(c.anchorTS), t.Equal(c.anchorTS) && s.ord < c.anchorOrd:
			s.skip = true
			return
		case t.Equal(c.anchorTS) && s.ord == c.anchorOrd:
			s.sp = c.anchorOff
		default:
			// The anchor line is gone (the log was rotated away): go on
			// from the first newer line.
			s.sp = c.pos
		}
		s.seeking, s.skip = false, false
	}
	c.anchored, c.anchorTS, c.anchorOrd, c.anchorOff = true, t, s.ord, s.sp
}

// content handles bytes of a line.
func (s *logSession) content(p []byte) {
	if s.seeking && s.skip {
		return
	}
	c := s.c
	if s.sp < c.pos { // read before
		n := min(int64(len(p)), c.pos-s.sp)
		s.sp += n
		p = p[n:]
	}
	if len(p) == 0 {
		return
	}
	c.write(p)
	s.sp += int64(len(p))
}
