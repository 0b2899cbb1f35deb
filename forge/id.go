package forge

import (
	"crypto/rand"
	"time"
)

const (
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	mixedAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// NewID returns a 12-character id of [a-z0-9] (Kod's id format for tokens,
// runs, webhooks and deliveries), from crypto/rand.
func NewID() string { return randomString(12, lowerAlnum) }

func randomString(n int, alphabet string) string {
	// rand.Text-style rejection sampling keeps the distribution uniform.
	out := make([]byte, n)
	buf := make([]byte, 1)
	limit := byte(256 - 256%len(alphabet))
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic("forge: crypto/rand failed: " + err.Error())
		}
		if buf[0] >= limit {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}

// Millis is a time as milliseconds since the Unix epoch, the unit of every
// timestamp in the Kod API (createdAt, startedAt, ...).
type Millis = int64

// NowMillis returns the current time in milliseconds since the Unix epoch.
func NowMillis() Millis { return time.Now().UnixMilli() }
