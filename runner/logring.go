package runner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A tail ring file holds the newest bytes of a step's output past the head
// of its log file, while the step runs:
//
//	[0:8]   magic "kodtail1"
//	[8:16]  logical length of the output so far (big endian)
//	[16:24] head size (bytes kept at the start of the log file)
//	[24:32] ring size
//	[32:]   ring: logical byte b >= head lives at 32 + (b-head) % ring size
//
// The header makes a ring left by a crash foldable after a restart.
const ringHeader = 32

var ringMagic = []byte("kodtail1")

func createRing(path string, headCap, tailCap int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, ringHeader)
	copy(hdr, ringMagic)
	binary.BigEndian.PutUint64(hdr[8:], uint64(headCap))
	binary.BigEndian.PutUint64(hdr[16:], uint64(headCap))
	binary.BigEndian.PutUint64(hdr[24:], uint64(tailCap))
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func writeRingLength(f *os.File, written int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(written))
	_, err := f.WriteAt(b[:], 8)
	return err
}

// foldRing appends the ring's bytes, oldest first, to log (whose write
// offset is at the end of the head), after a marker when bytes were
// dropped between head and ring. headLast is the head's last byte. It
// returns the marker's length in bytes.
func foldRing(log, ring *os.File, headLast byte) (int64, error) {
	hdr := make([]byte, ringHeader)
	if _, err := ring.ReadAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("reading the ring header: %w", err)
	}
	if string(hdr[:8]) != string(ringMagic) {
		return 0, errors.New("not a step log ring")
	}
	written := int64(binary.BigEndian.Uint64(hdr[8:]))
	head := int64(binary.BigEndian.Uint64(hdr[16:]))
	size := int64(binary.BigEndian.Uint64(hdr[24:]))
	st, err := ring.Stat()
	if err != nil {
		return 0, err
	}
	if size <= 0 || written < head {
		return 0, fmt.Errorf("corrupt ring header (length %d, head %d, size %d)", written, head, size)
	}
	after := written - head
	kept := min(after, size, max(st.Size()-ringHeader, 0))
	var marker int64
	if dropped := after - kept; dropped > 0 {
		note := DropNote(dropped)
		if headLast != '\n' {
			note = "\n" + note
		}
		if _, err := io.WriteString(log, note); err != nil {
			return 0, err
		}
		marker = int64(len(note))
	}
	start := (after - kept) % size
	first := min(kept, size-start)
	if _, err := io.Copy(log, io.NewSectionReader(ring, ringHeader+start, first)); err != nil {
		return marker, err
	}
	if _, err := io.Copy(log, io.NewSectionReader(ring, ringHeader, kept-first)); err != nil {
		return marker, err
	}
	return marker, nil
}

// DropNote is the line put where a step's output was dropped to keep its
// log within the limit: in the log file between head and tail, and in a
// followed stream whose reader fell that far behind.
func DropNote(n int64) string {
	return fmt.Sprintf("[... %d bytes (%.1f MiB) of output dropped here: a step log keeps only the start and the end of what the step printed ...]\n", n, float64(n)/(1<<20))
}

// foldLeftoverRings finishes the logs of a run interrupted by a crash: each
// ring file in the run's log directory is folded into its log file and
// removed. A run without log directory is not an error.
func foldLeftoverRings(dir string) error {
	rings, err := filepath.Glob(filepath.Join(dir, "*.log.tail"))
	if err != nil {
		return err
	}
	var errs []error
	for _, rp := range rings {
		errs = append(errs, foldLeftover(rp[:len(rp)-len(".tail")], rp))
	}
	return errors.Join(errs...)
}

func foldLeftover(logPath, rp string) error {
	ring, err := os.Open(rp)
	if err != nil {
		return err
	}
	defer ring.Close()
	log, err := os.OpenFile(logPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	last := byte('\n')
	if end, err := log.Seek(0, io.SeekEnd); err == nil && end > 0 {
		var b [1]byte
		if _, err := log.ReadAt(b[:], end-1); err == nil {
			last = b[0]
		}
	}
	_, err = foldRing(log, ring, last)
	err = errors.Join(err, log.Close())
	if err != nil {
		return fmt.Errorf("folding %s: %w", rp, err)
	}
	return os.Remove(rp)
}
