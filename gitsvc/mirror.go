package gitsvc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// MirrorOptions tune CloneMirror.
type MirrorOptions struct {
	// AllowLocal permits file:// and local paths (admins only, decided by
	// the caller); otherwise git refuses the file protocol too.
	AllowLocal bool
	// Addrs are the addresses of the remote's host that the caller checked
	// against its host policy. git connects to these and nothing else over
	// http(s) (curl's resolve list) and git:// (the URL names the address);
	// ssh resolves the name again (see CloneMirror). Empty: git resolves.
	Addrs []netip.Addr
}

// CloneMirror runs `git clone --mirror --quiet -- <remote> <dir>` bounded
// by ctx (the caller sets the time limit): no credential prompts
// (GIT_TERMINAL_PROMPT=0, ssh in batch mode), only the protocols http,
// https, git and ssh (plus file with AllowLocal) via GIT_ALLOW_PROTOCOL,
// and no HTTP redirects (http.followRedirects=false: a redirect could lead
// to an address the host policy refuses, and it is an error instead). The
// remote's host is pinned to opt.Addrs for http(s) and git://, so a DNS
// answer that changes between the caller's check and git's connection
// (rebinding) is not used. ssh is the one residual: it resolves the name
// itself, and can only speak SSH to what it reaches.
//
// dir must not exist. On failure the caller removes dir. Errors are *Error
// with git's stderr.
func (g *Git) CloneMirror(ctx context.Context, r *Remote, dir string, opt MirrorOptions) error {
	protocols := "http:https:git:ssh"
	if opt.AllowLocal {
		protocols += ":file"
	} else if r.Local {
		return errors.New("local sources are not allowed")
	}
	args := []string{"-c", "http.followRedirects=false"}
	source := r.Raw
	if pin := pinnedAddrs(r, opt.Addrs); len(pin) > 0 {
		switch r.Scheme {
		case "http", "https":
			args = append(args, "-c", "http.curloptResolve="+r.Host+":"+r.DefaultPort()+":"+strings.Join(pin, ","))
		case "git":
			source = withHost(r.Raw, pin[0], r.Port)
		}
	}
	args = append(args, "clone", "--mirror", "--quiet")
	if r.Local {
		args = append(args, "--no-local") // through upload-pack, never hard links or symlinked objects
	}
	args = append(args, "--", source, dir)
	env := []string{
		"GIT_ALLOW_PROTOCOL=" + protocols,
		"GIT_PROTOCOL_FROM_USER=0",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes -o ConnectTimeout=30",
	}
	return g.Run(ctx, &Cmd{Args: args, Env: env, Timeout: -1})
}

// pinnedAddrs returns the addresses to pin r's host to, formatted for
// curl ("[v6]"), or nil when the host is an address already.
func pinnedAddrs(r *Remote, addrs []netip.Addr) []string {
	if r.Local || r.hostIsAddr() || len(addrs) == 0 {
		return nil
	}
	var out []string
	for _, a := range addrs {
		s := a.WithZone("").String()
		if a.Is6() && !a.Is4In6() {
			s = "[" + s + "]"
		} else {
			s = a.Unmap().String()
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// withHost returns the URL raw with its host replaced by addr.
func withHost(raw, addr, port string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	host := strings.Trim(addr, "[]")
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	} else {
		u.Host = host
	}
	return u.String()
}

// FinishMirror turns a fresh mirror clone into a served repository: it
// forgets the source (the remote's URL may carry credentials) and makes
// sure HEAD names an existing branch (the source's default if it came
// along; else main, master or the first branch), so clones check out.
func (g *Git) FinishMirror(ctx context.Context, dir string) error {
	if err := g.Run(ctx, &Cmd{Dir: dir, Args: []string{"config", "--remove-section", "remote.origin"}}); err != nil {
		var ge *Error
		if !errors.As(err, &ge) || !strings.Contains(ge.Stderr, "no such section") {
			return err
		}
	}
	branches, err := g.Branches(ctx, dir)
	if err != nil {
		return err
	}
	head, _ := g.HeadBranch(ctx, dir)
	if len(branches) == 0 || slices.Contains(branches, head) {
		return nil
	}
	pick := branches[0]
	for _, b := range []string{DefaultBranch, "master"} {
		if slices.Contains(branches, b) {
			pick = b
			break
		}
	}
	return g.SetHead(ctx, dir, pick)
}
