package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
)

// touchEvery throttles lastUsedAt writes: a busy token is written at most
// once per interval (deliberate: Kod wrote on every request).
const touchEvery = time.Minute

// authenticated resolves the request's token (Bearer, or HTTP Basic with
// the token as password and any username) and calls next with its
// principal. Missing, unknown and expired tokens get 401
// {"error":"Unauthorized"} with WWW-Authenticate: Basic realm="Kod".
// A request handed over in-process with forge.ContextWithPrincipal (the
// web UI, after checking its session) acts as that principal instead.
func (s *Server) authenticated(next func(http.ResponseWriter, *http.Request, *forge.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := forge.PrincipalFromContext(r.Context()); p != nil {
			next(w, r, p)
			return
		}
		tok, err := s.tokenOf(r)
		if err != nil {
			if !errors.Is(err, forge.ErrUnauthorized) {
				s.writeError(w, r, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="Kod"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{"Unauthorized"})
			return
		}
		next(w, r, forge.PrincipalFromToken(tok))
	})
}

func (s *Server) tokenOf(r *http.Request) (*forge.Token, error) {
	secret, ok := credential(r)
	if !ok {
		return nil, forge.ErrUnauthorized
	}
	ctx := r.Context()
	tok, err := s.Store.TokenByHash(ctx, forge.HashToken(secret))
	if errors.Is(err, forge.ErrNotFound) {
		return nil, forge.ErrUnauthorized
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if tok.Expired(now.UnixMilli()) {
		if err := s.Store.DeleteToken(ctx, tok.ID); err != nil && !errors.Is(err, forge.ErrNotFound) {
			s.log.Error("removing an expired token", "token", tok.ID, "err", err)
		}
		return nil, forge.ErrUnauthorized
	}
	s.touch(ctx, tok, now)
	return tok, nil
}

// touch records lastUsedAt, at most once per touchEvery per token.
func (s *Server) touch(ctx context.Context, tok *forge.Token, now time.Time) {
	s.touchMu.Lock()
	last, seen := s.touched[tok.ID]
	due := !seen || now.Sub(last) >= touchEvery
	if due {
		s.touched[tok.ID] = now
	}
	s.touchMu.Unlock()
	if !due {
		return
	}
	if err := s.Store.TouchToken(ctx, tok.ID, now.UnixMilli()); err != nil {
		s.log.Warn("recording token use", "token", tok.ID, "err", err)
	}
	tok.LastUsedAt = now.UnixMilli()
}

// credential extracts the token from "Authorization: Bearer <tok>" or
// "Authorization: Basic base64(<any>:<tok>)".
func credential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok := strings.TrimSpace(rest)
		return tok, tok != ""
	}
	if _, pass, ok := r.BasicAuth(); ok && pass != "" {
		return pass, true
	}
	return "", false
}

// Bootstrap creates the token "admin" with ["admin"] holding secret when
// the token store is empty (Kod: KOD_ADMIN_TOKEN). It reports whether it
// created the token; with tokens present it does nothing.
func Bootstrap(ctx context.Context, store forge.TokenStore, secret string) (bool, error) {
	if secret == "" {
		return false, nil
	}
	n, err := store.CountTokens(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	err = store.CreateToken(ctx, &forge.Token{
		ID:          forge.NewID(),
		Name:        "admin",
		Hash:        forge.HashToken(secret),
		CreatedAt:   forge.NowMillis(),
		Permissions: []forge.Permission{forge.PermAdmin},
	})
	return err == nil, err
}
