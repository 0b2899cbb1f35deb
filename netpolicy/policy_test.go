package netpolicy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := map[string]Class{
		"8.8.8.8":                  ClassPublic,
		"2606:4700::1111":          ClassPublic,
		"127.0.0.1":                ClassLoopback,
		"127.255.1.2":              ClassLoopback,
		"::1":                      ClassLoopback,
		"0.0.0.0":                  ClassLoopback,
		"0.1.2.3":                  ClassLoopback,
		"::":                       ClassLoopback,
		"10.1.2.3":                 ClassPrivate,
		"172.16.0.1":               ClassPrivate,
		"172.31.255.255":           ClassPrivate,
		"172.32.0.1":               ClassPublic,
		"192.168.1.1":              ClassPrivate,
		"100.64.0.1":               ClassPrivate,
		"100.127.255.255":          ClassPrivate,
		"fc00::1":                  ClassPrivate,
		"fd12:3456::1":             ClassPrivate,
		"169.254.169.254":          ClassLinkLocal,
		"fe80::1":                  ClassLinkLocal,
		"fe80::1%eth0":             ClassLinkLocal,
		"::ffff:127.0.0.1":         ClassLoopback,
		"::ffff:10.0.0.1":          ClassPrivate,
		"::ffff:169.254.169.254":   ClassLinkLocal,
		"::ffff:8.8.8.8":           ClassPublic,
		"64:ff9b::127.0.0.1":       ClassLoopback,
		"64:ff9b::a00:1":           ClassPrivate,
		"64:ff9b::8.8.8.8":         ClassPublic,
		"64:ff9b:1::1":             ClassPrivate,
		"2002:7f00:1::1":           ClassLoopback,
		"2002:c0a8:101::1":         ClassPrivate,
		"224.0.0.1":                ClassReserved,
		"255.255.255.255":          ClassReserved,
		"240.0.0.1":                ClassReserved,
		"ff02::1":                  ClassReserved,
		"2001:db8::1":              ClassReserved,
		"192.0.2.1":                ClassReserved,
		"198.18.0.1":               ClassReserved,
		"::127.0.0.1":              ClassReserved,
		"::ffff:0.0.0.0":           ClassLoopback,
		"::ffff:255.255.255.255":   ClassReserved,
		"64:ff9b::169.254.169.254": ClassLinkLocal,
	}
	for s, want := range cases {
		if got := Classify(netip.MustParseAddr(s)); got != want {
			t.Errorf("Classify(%s) = %s, want %s", s, got, want)
		}
	}
}

func TestPolicyTable(t *testing.T) {
	addrs := []string{"8.8.8.8", "127.0.0.1", "::1", "0.0.0.0", "10.0.0.1", "172.16.5.5", "192.168.0.1", "169.254.169.254",
		"100.64.1.1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "::ffff:192.168.0.1", "224.0.0.1"}
	cases := []struct {
		policy string
		allow  []string
	}{
		{"", []string{"8.8.8.8"}},
		{"external", []string{"8.8.8.8"}},
		{"loopback", []string{"127.0.0.1", "::1", "0.0.0.0", "::ffff:127.0.0.1", "64:ff9b::7f00:1"}},
		{"external, private", []string{"8.8.8.8", "10.0.0.1", "172.16.5.5", "192.168.0.1", "100.64.1.1", "fc00::1", "::ffff:192.168.0.1"}},
		{"*", addrs},
		{"169.254.169.254/32", []string{"169.254.169.254"}},
		{"192.168.0.0/24,::1", []string{"192.168.0.1", "::ffff:192.168.0.1", "::1"}},
	}
	for _, c := range cases {
		p, err := Parse(c.policy)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.policy, err)
		}
		for _, a := range addrs {
			want := false
			for _, ok := range c.allow {
				want = want || ok == a
			}
			if got := p.AllowsAddr(netip.MustParseAddr(a)); got != want {
				t.Errorf("policy %q, %s: allowed=%v, want %v", c.policy, a, got, want)
			}
		}
	}
}

func TestParseRefusesNonsense(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "exter nal", "-bad.example", "a..b", "http://x"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), Setting) {
			t.Errorf("Parse(%q) = %v, want an error naming %s", bad, err, Setting)
		}
	}
	p, err := Parse("external,ci.internal,*.corp.example,[::1]")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "public,::1/128,ci.internal,*.corp.example" {
		t.Errorf("String() = %q", got)
	}
}

// fakeDNS resolves names from a table.
func fakeDNS(table map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ss, ok := table[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func TestResolve(t *testing.T) {
	p, _ := Parse("external,ci.internal")
	p.Lookup = fakeDNS(map[string][]string{
		"public.example":  {"93.184.216.34"},
		"sneaky.example":  {"93.184.216.34", "10.0.0.5"}, // one bad address refuses the host
		"private.example": {"192.168.1.10"},
		"meta.example":    {"169.254.169.254"},
		"ci.internal":     {"10.9.9.9"}, // allowed by name
	})
	ctx := context.Background()
	for host, wantErr := range map[string]bool{
		"public.example": false, "ci.internal": false, "CI.Internal.": false, "93.184.216.34": false,
		"sneaky.example": true, "private.example": true, "meta.example": true,
		"127.0.0.1": true, "[::1]": true, "[::ffff:127.0.0.1]": true, "0.0.0.0": true,
	} {
		_, err := p.Resolve(ctx, host)
		if (err != nil) != wantErr {
			t.Errorf("Resolve(%s) = %v, want error %v", host, err, wantErr)
		}
		if wantErr && !errors.Is(err, ErrRefused) {
			t.Errorf("Resolve(%s): %v does not wrap ErrRefused", host, err)
		}
	}
	if _, err := p.Resolve(ctx, "missing.example"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("unknown host: %v", err)
	}
	err := p.CheckHost(ctx, "private.example")
	if err == nil || !strings.Contains(err.Error(), `host "private.example" resolves to 192.168.1.10, a private address`) {
		t.Errorf("message: %v", err)
	}
}

// TestDialChecksTheConnectedAddress proves that the dialer refuses a
// loopback receiver reached by IP, by a name that resolves to it, and
// through a redirect, while a name allowed explicitly connects.
func TestDialChecksTheConnectedAddress(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inner")) }))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer redirector.Close()
	_, redirPort, _ := net.SplitHostPort(strings.TrimPrefix(redirector.URL, "http://"))

	p, _ := Parse("external,localhost")
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: p.DialContext}}

	// Direct to 127.0.0.1: refused at connect time.
	if _, err := client.Get(target.URL); !errors.Is(err, ErrRefused) {
		t.Errorf("direct loopback: %v", err)
	}
	// By an allowed name, then redirected to 127.0.0.1: the redirect is refused.
	_, err := client.Get("http://localhost:" + redirPort + "/")
	if !errors.Is(err, ErrRefused) {
		t.Errorf("redirect to loopback: %v", err)
	}
	// The allowed name itself connects.
	noRedirect := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get("http://localhost:" + redirPort + "/")
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("allowed name: %v", err)
	}
	res.Body.Close()
	// With loopback allowed, the direct request works.
	open, _ := Parse("loopback")
	res, err = (&http.Client{Transport: &http.Transport{DialContext: open.DialContext}}).Get(target.URL)
	if err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	res.Body.Close()
}

// TestParseForNamesItsSetting: a policy of another setting (image pulls)
// names that setting in its errors and refusals, and a host allowed by
// name passes CheckHost without being resolved (a registry mirror's
// engine may resolve names the server cannot).
func TestParseForNamesItsSetting(t *testing.T) {
	if _, err := ParseFor(RegistrySetting, "10.0.0.0/99"); err == nil || !strings.Contains(err.Error(), RegistrySetting) {
		t.Errorf("parse error: %v", err)
	}
	p, err := ParseFor(RegistrySetting, "docker.io,ghcr.io")
	if err != nil {
		t.Fatal(err)
	}
	lookups := 0
	p.Lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		lookups++
		return fakeDNS(map[string][]string{"evil.example": {"93.184.216.34"}})(ctx, host)
	}
	ctx := context.Background()
	if err := p.CheckHost(ctx, "docker.io"); err != nil || lookups != 0 {
		t.Errorf("allowed name: %v after %d lookups", err, lookups)
	}
	// The list is exact: a public registry not on it is refused.
	err = p.CheckHost(ctx, "evil.example")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `host "evil.example" resolves to 93.184.216.34, a public address that `+RegistrySetting+` does not allow`) {
		t.Errorf("refusal: %v", err)
	}
	if err := p.Control("tcp", "127.0.0.1:80", nil); err == nil || !strings.Contains(err.Error(), RegistrySetting) {
		t.Errorf("dial refusal: %v", err)
	}
	// Parse keeps naming the shared setting.
	q, _ := Parse("external")
	if err := q.CheckHost(ctx, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), Setting) {
		t.Errorf("shared policy refusal: %v", err)
	}
}
