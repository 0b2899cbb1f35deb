package boltstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// BenchmarkRenameRepo renames a repository back and forth with 0 and with
// 2000 runs, 20 secrets and 20 webhooks (200 deliveries) attached: records
// refer to the repository's id, so a rename is one small transaction
// whatever hangs off the repository (the ratio of the two is the figure in
// docs/benchmarks.md).
func BenchmarkRenameRepo(b *testing.B) {
	for _, n := range []int{0, 2000} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "kod.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			if err := s.CreateRepo(ctx, &forge.Repo{Name: "a"}); err != nil {
				b.Fatal(err)
			}
			for range n {
				if err := s.CreateRun(ctx, &forge.Run{ID: forge.NewID(), RepoName: "a", Status: forge.RunCompleted}); err != nil {
					b.Fatal(err)
				}
			}
			for i := range n / 100 {
				if _, err := s.PutSecret(ctx, &forge.Secret{Name: fmt.Sprintf("S%d", i), RepoName: "a", Sealed: "v1:x"}); err != nil {
					b.Fatal(err)
				}
				hook, _ := forge.NewWebhook("a", "https://example.com/h", nil, "", 1)
				if err := s.CreateWebhook(ctx, hook); err != nil {
					b.Fatal(err)
				}
				var ds []*forge.Delivery
				for range 10 {
					ds = append(ds, &forge.Delivery{ID: forge.NewID(), WebhookID: hook.ID, RepoName: "a", Status: forge.DeliveryPending, URL: hook.URL})
				}
				if err := s.CreateDeliveries(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			names := [2]string{"a", "b"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.RenameRepo(ctx, names[i%2], names[(i+1)%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
