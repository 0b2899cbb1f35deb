package boltstore

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// SummarizeRuns implements forge.RunSummaryStore. It walks the per-repository
// index (keys end with the run's sequence number, which orders runs across
// repositories) and decodes only each record's status for the counts; a
// min-heap of sequence numbers keeps the recent newest, and only those are
// decoded in full at the end.
func (s *Store) SummarizeRuns(ctx context.Context, repos []string, recent int) (map[forge.RunStatus]int, []*forge.Run, error) {
	counts := map[forge.RunStatus]int{}
	var out []*forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		newest := &seqHeap{}
		c := tx.Bucket(bucketRunsByRepo).Cursor()
		for _, repo := range repos {
			id, err := repoIDOf(tx, repo)
			if err != nil {
				continue // no runs
			}
			prefix := repoPrefix(id)
			for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
				var st struct {
					Status forge.RunStatus `json:"status"`
				}
				data := runs.Get(id)
				if data == nil {
					continue
				}
				if err := json.Unmarshal(data, &st); err != nil {
					return fmt.Errorf("decoding record %q: %w", id, err)
				}
				counts[st.Status]++
				newest.offer(seqID{binary.BigEndian.Uint64(k[len(prefix):]), string(id)}, recent)
			}
		}
		picked := slices.SortedFunc(slices.Values(*newest), func(a, b seqID) int { return cmp.Compare(b.seq, a.seq) })
		names := namesIn(tx)
		for _, p := range picked {
			r, ok, err := getRun(tx, names, []byte(p.id))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return counts, out, nil
}

// seqID is a run's sequence number and id.
type seqID struct {
	seq uint64
	id  string
}

// seqHeap is a min-heap of seqIDs: its root is the oldest of those kept.
type seqHeap []seqID

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(seqID)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// offer keeps v if it is among the n newest seen so far.
func (h *seqHeap) offer(v seqID, n int) {
	switch {
	case n <= 0:
	case h.Len() < n:
		heap.Push(h, v)
	case v.seq > (*h)[0].seq:
		(*h)[0] = v
		heap.Fix(h, 0)
	}
}
