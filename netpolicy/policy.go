package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Setting names the configuration the policy comes from, for messages.
const Setting = "KOD_WEBHOOK_ALLOWED_HOSTS"

// Resolver looks up the addresses of a host name (net.Resolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy is a parsed allow-list. The zero value is not usable; use Parse.
// It is safe for concurrent use.
type Policy struct {
	all      bool // "*"
	loopback bool // "loopback": loopback and unspecified addresses
	private  bool // "private": the Private class
	nets     []netip.Prefix
	hosts    []string // lower case; "*.example.com" matches subdomains
	resolver Resolver
	dialer   *net.Dialer
}

// Parse reads a comma-separated allow-list (KOD_WEBHOOK_ALLOWED_HOSTS):
//   - "external" (also the meaning of ""): public addresses only;
//   - "loopback": also 127/8, ::1 and 0.0.0.0/::;
//   - "private": also 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7;
//   - "*": every address, link-local and special ones included;
//   - a CIDR ("10.1.0.0/16") or an address: also those addresses;
//   - a host name ("hooks.internal", "*.corp.example"): that name may
//     resolve to any address.
//
// Link-local addresses (169.254/16, where cloud metadata services listen,
// and fe80::/10) are only reachable through "*" or an explicit CIDR.
// Errors name the entry at fault.
func Parse(spec string) (*Policy, error) {
	p := &Policy{resolver: net.DefaultResolver, dialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	for _, raw := range strings.Split(spec, ",") {
		e := strings.ToLower(strings.TrimSpace(raw))
		switch {
		case e == "" || e == "external":
		case e == "loopback":
			p.loopback = true
		case e == "private":
			p.private = true
		case e == "*":
			p.all = true
		case strings.Contains(e, "/"):
			pre, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a valid CIDR", Setting, raw)
			}
			p.nets = append(p.nets, pre.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
				p.nets = append(p.nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				continue
			}
			if !validHostPattern(e) {
				return nil, fmt.Errorf("%s: %q is not external, loopback, private, *, a CIDR, an address or a host name", Setting, raw)
			}
			p.hosts = append(p.hosts, strings.TrimSuffix(e, "."))
		}
	}
	return p, nil
}

func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// WithResolver returns a copy of p that resolves names with r (tests).
func (p *Policy) WithResolver(r Resolver) *Policy {
	q := *p
	q.resolver = r
	return &q
}

// hostAllowed reports whether host is named by the allow-list.
func (p *Policy) hostAllowed(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range p.hosts {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// AllowAddr returns nil if ip may be connected to, else a *RefusedError.
func (p *Policy) AllowAddr(ip netip.Addr) error {
	class := Classify(ip)
	switch {
	case p.all, class == Public:
		return nil
	case within(ip.WithZone(""), p.nets) || within(ip.WithZone("").Unmap(), p.nets):
		return nil
	case p.loopback && (class == Loopback || class == Unspecified):
		return nil
	case p.private && class == Private:
		return nil
	}
	return &RefusedError{Addr: ip, Class: class}
}

// RefusedError says that an address is not allowed by the policy.
type RefusedError struct {
	Host  string // the name asked for ("" for an address literal)
	Addr  netip.Addr
	Class Class
}

func (e *RefusedError) Error() string {
	what := e.Addr.String()
	if e.Host != "" && e.Host != what {
		what = fmt.Sprintf("%s (%s)", e.Host, e.Addr)
	}
	return fmt.Sprintf("refused by the outbound host policy: %s is a %s address, which %s does not allow", what, e.Class, Setting)
}

// Resolve returns the addresses of host (a name or an address literal)
// that the policy allows. Names on the allow-list may resolve anywhere. If
// none is allowed the error is a *RefusedError for the first one.
func (p *Policy) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.Trim(host, "[]")
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		found, err := p.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("resolving %s: no addresses", host)
		}
		addrs = found
		if p.hostAllowed(host) {
			return addrs, nil
		}
	}
	var ok []netip.Addr
	var first error
	for _, a := range addrs {
		err := p.AllowAddr(a)
		if err == nil {
			ok = append(ok, a)
			continue
		}
		if first == nil {
			var re *RefusedError
			if errors.As(err, &re) && host != a.String() {
				re.Host = host
			}
			first = err
		}
	}
	if len(ok) == 0 {
		return nil, first
	}
	return ok, nil
}

// Check reports whether host (a URL's host name or address) may be
// connected to now: nil, a *RefusedError, or a resolution error.
func (p *Policy) Check(ctx context.Context, host string) error {
	_, err := p.Resolve(ctx, host)
	return err
}

// DialContext dials addr ("host:port") through the policy: the host is
// resolved once, and only allowed addresses are dialed, in order, so the
// address connected to is always one that was checked. Use it as the
// DialContext of every client that connects to user-given URLs.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := p.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		conn, err := p.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Transport returns an HTTP transport that connects only through
// DialContext and never through a proxy from the environment (a proxy would
// connect on our behalf, out of the policy's sight).
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
