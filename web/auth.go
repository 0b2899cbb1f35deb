package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/kod-forge/kod/forge"
)

// pageFunc handles a request of a signed-in session.
type pageFunc func(w http.ResponseWriter, r *http.Request, sess *session) error

// page wraps a GET handler: no live session sends a browser to sign in
// (and a script gets 401); the request then carries the session's
// principal for the API calls the handler makes.
func (s *Server) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, r, ok := s.signedIn(w, r)
		if !ok {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") && !strings.Contains(r.URL.Path, "/steps/") && !strings.HasSuffix(r.URL.Path, "/events") {
				http.Redirect(w, r, "/ui/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "Signed out", http.StatusUnauthorized)
			return
		}
		if err := fn(w, r, sess); err != nil {
			s.fail(w, r, sess, err)
		}
	})
}

// action wraps a state-changing POST: a live session and its CSRF token
// in the form (field "csrf") are required, and a browser's cross-site
// request (Sec-Fetch-Site, Origin) is refused before that.
func (s *Server) action(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crossSite(r) {
			http.Error(w, "Cross-site request refused", http.StatusForbidden)
			return
		}
		sess, r, ok := s.signedIn(w, r)
		if !ok {
			http.Error(w, "Signed out", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !sameSecret(r.PostFormValue("csrf"), sess.csrf) {
			http.Error(w, "Invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		if err := fn(w, r, sess); err != nil {
			s.fail(w, r, sess, err)
		}
	})
}

// crossSite reports whether a browser says the request comes from another
// site. Requests without these headers (old browsers, non-browsers) are
// decided by the CSRF token alone.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err != nil || u.Host != r.Host
	}
	return r.Header.Get("Origin") == "null"
}

// signedIn resolves the session cookie: the session must be live and its
// token must still exist and not have expired (else the session ends).
// It returns the request with the token's principal in its context.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) (*session, *http.Request, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, r, false
	}
	sess := s.sessions.get(c.Value)
	if sess == nil {
		s.clearCookie(w, r, sessionCookie)
		return nil, r, false
	}
	tok, err := s.Tokens.GetToken(r.Context(), sess.tokenID)
	if err != nil || tok.Expired(forge.Millis(s.now().UnixMilli())) {
		if err != nil && !errors.Is(err, forge.ErrNotFound) {
			s.log.Error("checking a session's token", "err", err)
			return nil, r, false
		}
		s.sessions.end(sess.id)
		s.clearCookie(w, r, sessionCookie)
		return nil, r, false
	}
	if s.sessions.touchDue(sess) {
		if err := s.Tokens.TouchToken(r.Context(), tok.ID, s.now().UnixMilli()); err != nil {
			s.log.Warn("recording token use", "token", tok.ID, "err", err)
		}
	}
	ctx := forge.ContextWithPrincipal(r.Context(), forge.PrincipalFromToken(tok))
	ctx = context.WithValue(ctx, tokenKey{}, tok)
	return sess, r.WithContext(ctx), true
}

type tokenKey struct{}

// tokenOf returns the session's token of a request that passed signedIn.
func tokenOf(r *http.Request) *forge.Token {
	t, _ := r.Context().Value(tokenKey{}).(*forge.Token)
	return t
}

// secure reports whether cookies must be Secure: the request came over TLS
// or the public URL is https.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.PublicURL), "https://")
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure(r),
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	s.setCookie(w, r, name, "", -1)
}

// signInPage shows the token form with a fresh CSRF token (cookie + hidden
// field: the form is posted before any session exists).
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, "")
}

func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := randomID()
	s.setCookie(w, r, csrfCookie, csrf, 3600)
	s.render(w, r, status, "signin", &view{Title: "Sign in", CSRF: csrf, Error: msg, Next: safeNext(r.FormValue("next"))})
}

// signIn checks the posted token (it must exist and not have expired),
// starts a session and sends the browser on. The token is never echoed
// into the page or a cookie.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if crossSite(r) {
		http.Error(w, "Cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(csrfCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), c.Value) {
		s.renderSignIn(w, r, http.StatusForbidden, "The form expired. Please try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	tok, err := s.Tokens.TokenByHash(r.Context(), forge.HashToken(secret))
	if err != nil && !errors.Is(err, forge.ErrNotFound) {
		s.log.Error("signing in", "err", err)
		s.renderSignIn(w, r, http.StatusInternalServerError, "Signing in failed; please try again.")
		return
	}
	if secret == "" || err != nil || tok.Expired(forge.Millis(s.now().UnixMilli())) {
		s.renderSignIn(w, r, http.StatusUnauthorized, "That token is unknown or has expired.")
		return
	}
	sess := s.sessions.create(tok.ID)
	s.clearCookie(w, r, csrfCookie)
	s.setCookie(w, r, sessionCookie, sess.id, 0)
	s.log.Info("signed in", "token", tok.ID)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// signOut ends the session (live streams of it stop) and clears the cookie.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, sess *session) error {
	s.sessions.end(sess.id)
	s.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-sign-in destination inside the UI ("/ui/..."),
// never another host ("//evil", "/ui/\\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return Prefix
	}
	return next
}
