package gitsvc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Remote is a parsed clone source (Kod API: POST /repos/import {source}).
// Only the forms git itself understands are accepted, and of those only
// http(s)://, git://, ssh:// (and scp-like user@host:path), file:// and
// absolute local paths; remote helpers such as ext:: (which run commands)
// are refused outright.
type Remote struct {
	Raw    string // as given
	Scheme string // "http", "https", "git", "ssh" or "file"
	Host   string // host name or address, without brackets; "" when Local
	Port   string // "" for the scheme's default
	Path   string // path part, for deriving a name
	Local  bool   // a local path or file:// URL (admin only)
	user   *url.Userinfo
	scp    bool
}

var (
	helperRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*::`)
	schemes  = map[string]string{
		"http": "http", "https": "https", "git": "git", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh", "file": "file",
	}
)

// ParseRemote parses a clone source. Errors have messages meant for users.
func ParseRemote(s string) (*Remote, error) {
	switch {
	case s == "":
		return nil, errors.New("the source is empty")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, errors.New("the source contains control characters")
	case strings.HasPrefix(s, "-"):
		return nil, errors.New("the source may not start with '-'")
	case helperRE.MatchString(s):
		return nil, fmt.Errorf("git remote helpers (%s) are not allowed", s[:strings.Index(s, "::")+2])
	case strings.Contains(s, "://"):
		return parseURLRemote(s)
	}
	if colon := strings.IndexByte(s, ':'); colon > 0 && !strings.Contains(s[:colon], "/") {
		return parseSCPRemote(s, colon)
	}
	if !filepath.IsAbs(s) {
		return nil, errors.New("local sources must be absolute paths")
	}
	return &Remote{Raw: s, Scheme: "file", Path: s, Local: true}, nil
}

func parseURLRemote(s string) (*Remote, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("the source is not a valid URL")
	}
	scheme, ok := schemes[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("unsupported protocol %q (use https, http, git, ssh or file)", u.Scheme)
	}
	r := &Remote{Raw: s, Scheme: scheme, Host: u.Hostname(), Port: u.Port(), Path: u.Path, user: u.User}
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, errors.New("file:// sources must name a local path")
		}
		if !path.IsAbs(u.Path) {
			return nil, errors.New("local sources must be absolute paths")
		}
		r.Host, r.Local = "", true
		return r, nil
	}
	if err := checkHostPart(r.Host, u.User.Username()); err != nil {
		return nil, err
	}
	return r, nil
}

// parseSCPRemote reads git's scp-like form [user@]host:path ([host]:path
// for IPv6), which git fetches over ssh.
func parseSCPRemote(s string, colon int) (*Remote, error) {
	hostPart, p := s[:colon], s[colon+1:]
	if strings.HasPrefix(hostPart, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' {
			return nil, errors.New("the source is not a valid ssh address")
		}
		hostPart, p = s[1:end], s[end+2:]
	}
	user, host, hasUser := strings.Cut(hostPart, "@")
	if !hasUser {
		user, host = "", hostPart
	}
	if err := checkHostPart(host, user); err != nil {
		return nil, err
	}
	if p == "" {
		return nil, errors.New("the source has no repository path")
	}
	r := &Remote{Raw: s, Scheme: "ssh", Host: host, Path: p, scp: true}
	if hasUser {
		r.user = url.User(user)
	}
	return r, nil
}

func checkHostPart(host, user string) error {
	switch {
	case host == "":
		return errors.New("the source has no host")
	case strings.HasPrefix(host, "-") || strings.HasPrefix(user, "-"):
		return errors.New("the source host and user may not start with '-'")
	case strings.ContainsAny(host, " %\\"):
		return errors.New("the source host is not valid")
	}
	return nil
}

// NameHint derives a repository name from the source as Kod did: the last
// path segment without a trailing ".git". "" when there is none.
func (r *Remote) NameHint() string {
	p := strings.TrimRight(strings.ReplaceAll(r.Path, "\\", "/"), "/")
	name := strings.TrimSuffix(path.Base(p), ".git")
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	return name
}

// Redacted returns the source with any password replaced by "xxxxx", for
// messages and logs.
func (r *Remote) Redacted() string {
	if r.user == nil {
		return r.Raw
	}
	if _, has := r.user.Password(); !has || r.scp {
		return r.Raw
	}
	u, err := url.Parse(r.Raw)
	if err != nil {
		return r.Scheme + "://" + r.Host + "/..."
	}
	return u.Redacted()
}

// DefaultPort returns r.Port or the scheme's default port.
func (r *Remote) DefaultPort() string {
	if r.Port != "" {
		return r.Port
	}
	return map[string]string{"http": "80", "https": "443", "git": "9418", "ssh": "22"}[r.Scheme]
}

// hostIsAddr reports whether r.Host is an IP address literal.
func (r *Remote) hostIsAddr() bool { return net.ParseIP(r.Host) != nil }
