// Package netpolicy decides which hosts kod may connect to on behalf of
// users: repository imports (git clone of a user-given URL), webhook
// deliveries and the registries step images are pulled from. It is the one
// host policy of the server (setting KOD_WEBHOOK_ALLOWED_HOSTS), so an
// address refused for webhooks is refused for imports and image pulls too;
// only image pulls can be given a policy of their own (RegistrySetting).
//
// Use it in two places: CheckHost (or Resolve) before handing a URL to a
// program that connects by itself, and DialContext as the dialer of an
// http.Transport, which checks the address actually connected to, so DNS
// rebinding and redirects cannot reach a refused address:
//
//	tr := &http.Transport{Proxy: nil, DialContext: policy.DialContext}
//	client := &http.Client{Transport: tr, CheckRedirect: ...}
package netpolicy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Setting names the environment variable of the policy (config file key
// "webhookAllowedHosts", flag --webhook-allowed-hosts).
const Setting = "KOD_WEBHOOK_ALLOWED_HOSTS"

// RegistrySetting names the optional policy of image pulls (config file
// key "registryAllowedHosts"); when it is empty, pulls follow Setting.
const RegistrySetting = "KOD_REGISTRY_ALLOWED_HOSTS"

// Default is the policy when the setting is empty: public addresses only.
const Default = "external"

// ErrRefused is wrapped by every refusal of the policy.
var ErrRefused = errors.New("refused by the host policy")

// RefusedError says which host and address the policy refused.
type RefusedError struct {
	Host    string     // as given (a name or an address)
	Addr    netip.Addr // the refused address
	Class   Class
	Setting string // the setting of the policy; "" means Setting
}

func (e *RefusedError) Error() string {
	setting := cmp.Or(e.Setting, Setting)
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("host %q resolves to %s, a %s address that %s does not allow", e.Host, e.Addr, e.Class, setting)
	}
	return fmt.Sprintf("%s is a %s address that %s does not allow", e.Addr, e.Class, setting)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Policy is a parsed host allow-list. The zero value refuses everything;
// use Parse. A Policy is safe for concurrent use.
type Policy struct {
	all      bool
	classes  []Class
	nets     []netip.Prefix
	names    []string // lower-case exact names
	suffixes []string // ".example.com" for "*.example.com"
	setting  string   // named in errors

	// Lookup resolves host names; nil means the system resolver. Tests
	// replace it.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Parse reads a comma-separated allow-list (Gitea-style): "external"
// (public addresses), "loopback", "private" (RFC 1918, 100.64/10, unique
// local IPv6), "*" (everything), CIDRs ("10.1.0.0/16"), single addresses,
// host names ("ci.internal", allowed whatever they resolve to) and
// wildcards ("*.corp.example"). The list is exact: "loopback" alone allows
// only loopback, so write "external,loopback" to add to the default.
// Link-local addresses (cloud metadata at 169.254.169.254) are allowed only
// by "*" or an explicit CIDR. "" means Default. Errors and refusals name
// Setting.
func Parse(s string) (*Policy, error) { return ParseFor(Setting, s) }

// ParseFor is Parse for the policy of another setting (e.g.
// RegistrySetting), which its errors and refusals name.
func ParseFor(setting, s string) (*Policy, error) {
	if strings.TrimSpace(s) == "" {
		s = Default
	}
	p := &Policy{setting: setting}
	for _, raw := range strings.Split(s, ",") {
		e := strings.ToLower(strings.TrimSpace(raw))
		switch {
		case e == "":
			continue
		case e == "*":
			p.all = true
		case e == "external":
			p.classes = append(p.classes, ClassPublic)
		case e == "loopback":
			p.classes = append(p.classes, ClassLoopback)
		case e == "private":
			p.classes = append(p.classes, ClassPrivate)
		case strings.Contains(e, "/"):
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a valid CIDR", setting, raw)
			}
			p.nets = append(p.nets, pfx.Masked())
		case strings.HasPrefix(e, "*."):
			p.suffixes = append(p.suffixes, e[1:])
		default:
			if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
				p.nets = append(p.nets, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			if !validHostName(e) {
				return nil, fmt.Errorf("%s: %q is not external, loopback, private, *, a CIDR, an address or a host name", setting, raw)
			}
			p.names = append(p.names, strings.TrimSuffix(e, "."))
		}
	}
	return p, nil
}

func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
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

// String returns a canonical form of the policy for logs.
func (p *Policy) String() string {
	var parts []string
	if p.all {
		parts = append(parts, "*")
	}
	for _, c := range p.classes {
		parts = append(parts, string(c))
	}
	for _, n := range p.nets {
		parts = append(parts, n.String())
	}
	parts = append(parts, p.names...)
	for _, s := range p.suffixes {
		parts = append(parts, "*"+s)
	}
	return strings.Join(parts, ",")
}

// AllowsAddr reports whether connecting to ip is allowed.
func (p *Policy) AllowsAddr(ip netip.Addr) bool {
	if p.all {
		return true
	}
	ip = ip.WithZone("")
	if slices.Contains(p.classes, Classify(ip)) {
		return true
	}
	for _, n := range p.nets {
		if n.Contains(ip) || n.Contains(ip.Unmap()) || n.Contains(embedded(ip)) {
			return true
		}
	}
	return false
}

// AllowsName reports whether host is allowed by name (an exact entry or a
// wildcard), whatever it resolves to.
func (p *Policy) AllowsName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if slices.Contains(p.names, h) {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// Resolve returns the addresses of host (a name, an address, or a
// bracketed IPv6 address) after checking them: a host allowed by name is
// returned as resolved; otherwise every address must be allowed, or the
// error is a *RefusedError (wrapping ErrRefused) naming the first refused
// one. Resolution failures are returned as they are.
func (p *Policy) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return nil, errors.New("empty host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.AllowsAddr(ip) {
			return nil, p.refused(host, ip)
		}
		return []netip.Addr{ip.WithZone("")}, nil
	}
	lookup := p.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("host %q has no addresses", host)
	}
	if p.AllowsName(host) {
		return addrs, nil
	}
	for _, ip := range addrs {
		if !p.AllowsAddr(ip) {
			return nil, p.refused(host, ip)
		}
	}
	return addrs, nil
}

func (p *Policy) refused(host string, ip netip.Addr) *RefusedError {
	ip = ip.WithZone("")
	return &RefusedError{Host: host, Addr: ip, Class: Classify(ip), Setting: p.setting}
}

// CheckHost returns nil when connecting to host is allowed: at once for a
// host allowed by name (AllowsName), without resolving it; otherwise as
// Resolve decides (every address allowed, or a *RefusedError; resolution
// failures as they are).
func (p *Policy) CheckHost(ctx context.Context, host string) error {
	if p.AllowsName(strings.Trim(host, "[]")) {
		return nil
	}
	_, err := p.Resolve(ctx, host)
	return err
}

// Control is a net.Dialer Control function that refuses connections to
// addresses the policy does not allow. It sees the address actually being
// connected to, after any resolution.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netpolicy: unexpected dial address %q: %w", address, err)
	}
	if !p.AllowsAddr(ap.Addr()) {
		return p.refused("", ap.Addr())
	}
	return nil
}

// Dialer returns a dialer with Control set, based on base (nil: a dialer
// with a 10 s timeout). It checks addresses only; use DialContext to also
// honour host names in the allow-list.
func (p *Policy) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{Timeout: defaultDialTimeout}
	if base != nil {
		cp := *base
		d = &cp
	}
	d.Control = p.Control
	d.ControlContext = nil
	return d
}

// DialContext dials address ("host:port") like net.Dialer.DialContext,
// for http.Transport.DialContext: a host allowed by name is dialed as is;
// any other connection is checked at connect time (Control), so a name
// that resolves to a refused address, also after a DNS change or a
// redirect, fails with a *RefusedError.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if p.AllowsName(host) {
		d := net.Dialer{Timeout: defaultDialTimeout}
		return d.DialContext(ctx, network, address)
	}
	conn, err := p.Dialer(nil).DialContext(ctx, network, address)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) && refused.Host == "" {
			refused.Host = host
		}
		return nil, err
	}
	return conn, nil
}

const defaultDialTimeout = 10 * time.Second
