package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// sessionCookie names the cookie holding a session id; csrfCookie the
// cookie of the sign-in form's CSRF token (before any session exists).
const (
	sessionCookie = "kod_session"
	csrfCookie    = "kod_signin"
)

// session is one signed-in browser. The cookie holds only id; the token
// secret is never kept: the session refers to the token by its id, so
// deleting or expiring the token ends the session at its next request.
type session struct {
	id       string
	tokenID  string
	csrf     string // sent back in every form of this session
	created  time.Time
	lastSeen time.Time
	touched  time.Time     // when the token's lastUsedAt was last written for this session
	ended    chan struct{} // closed when the session ends (live streams stop)
}

// sessions is the server-side session table, in memory: a restart signs
// everybody out (deliberate: nothing to store or migrate, and a token is
// at hand to sign in again).
type sessions struct {
	now       func() time.Time
	idle, max time.Duration

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{now: now, idle: idle, max: max, byID: map[string]*session{}}
}

// create starts a session for tokenID.
func (t *sessions) create(tokenID string) *session {
	now := t.now()
	s := &session{id: randomID(), tokenID: tokenID, csrf: randomID(), created: now, lastSeen: now, ended: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	t.byID[s.id] = s
	return s
}

// get returns the live session id, or nil (unknown, idle too long, too
// old); it records the use.
func (t *sessions) get(id string) *session {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byID[id]
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > t.idle || now.Sub(s.created) > t.max {
		t.endLocked(s)
		return nil
	}
	s.lastSeen = now
	return s
}

// end removes the session id (sign-out, token gone).
func (t *sessions) end(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.byID[id]; s != nil {
		t.endLocked(s)
	}
}

func (t *sessions) endLocked(s *session) {
	delete(t.byID, s.id)
	close(s.ended)
}

// sweepLocked drops expired sessions so the table stays bounded by the
// sessions in use.
func (t *sessions) sweepLocked(now time.Time) {
	for _, s := range t.byID {
		if now.Sub(s.lastSeen) > t.idle || now.Sub(s.created) > t.max {
			t.endLocked(s)
		}
	}
}

// randomID is 32 bytes from crypto/rand, base64url.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sameSecret compares two secrets in constant time; "" never matches.
func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// touchDue reports whether the session's token use should be recorded
// now: at most once a minute per session, like the API's own throttle.
func (t *sessions) touchDue(s *session) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(s.touched) < time.Minute {
		return false
	}
	s.touched = now
	return true
}
