package netpolicy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestClassifyAndDefaultPolicy(t *testing.T) {
	t.Parallel()
	external, err := Parse("")
	if err != nil {
		t.Fatal(err)
	}
	loopback, _ := Parse("loopback")
	private, _ := Parse("private")
	all, _ := Parse("*")
	cidr, _ := Parse("169.254.169.0/24, fd00::/8")
	tests := []struct {
		addr  string
		class Class
	}{
		{"127.0.0.1", Loopback},
		{"127.1.2.3", Loopback},
		{"::1", Loopback},
		{"0.0.0.0", Unspecified},
		{"0.1.2.3", Unspecified},
		{"::", Unspecified},
		{"10.0.0.1", Private},
		{"10.255.255.255", Private},
		{"172.16.0.1", Private},
		{"172.31.255.254", Private},
		{"192.168.1.1", Private},
		{"100.64.0.1", Private},
		{"100.127.255.255", Private},
		{"fc00::1", Private},
		{"fd12:3456::1", Private},
		{"169.254.169.254", LinkLocal},
		{"fe80::1", LinkLocal},
		{"fe80::1%eth0", LinkLocal},
		{"::ffff:127.0.0.1", Loopback}, // IPv4-mapped
		{"::ffff:10.0.0.1", Private},   // IPv4-mapped
		{"::ffff:169.254.169.254", LinkLocal},
		{"64:ff9b::7f00:1", Loopback},     // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", Private},       // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", LinkLocal}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", Public},      // NAT64 of 8.8.8.8
		{"64:ff9b:1::1", Private},         // local-use NAT64
		{"2002:7f00:1::1", Loopback},      // 6to4 of 127.0.0.1
		{"::127.0.0.1", Special},          // IPv4-compatible (deprecated)
		{"224.0.0.1", Special},
		{"255.255.255.255", Special},
		{"ff02::1", Special},
		{"8.8.8.8", Public},
		{"172.32.0.1", Public},
		{"100.128.0.1", Public},
		{"2606:4700::1111", Public},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			if got := Classify(ip); got != tt.class {
				t.Fatalf("Classify(%s) = %s, want %s", tt.addr, got, tt.class)
			}
			err := external.AllowAddr(ip)
			if (err == nil) != (tt.class == Public) {
				t.Errorf("external policy on %s (%s): %v", tt.addr, tt.class, err)
			}
			var re *RefusedError
			if err != nil && (!errors.As(err, &re) || !strings.Contains(err.Error(), string(tt.class)) || !strings.Contains(err.Error(), Setting)) {
				t.Errorf("refusal of %s is unclear: %v", tt.addr, err)
			}
			wantLoop := tt.class == Public || tt.class == Loopback || tt.class == Unspecified
			if got := loopback.AllowAddr(ip) == nil; got != wantLoop {
				t.Errorf("loopback policy on %s: allowed=%v, want %v", tt.addr, got, wantLoop)
			}
			wantPriv := tt.class == Public || tt.class == Private
			if got := private.AllowAddr(ip) == nil; got != wantPriv {
				t.Errorf("private policy on %s: allowed=%v, want %v", tt.addr, got, wantPriv)
			}
			if err := all.AllowAddr(ip); err != nil {
				t.Errorf("* refuses %s: %v", tt.addr, err)
			}
		})
	}
	for addr, want := range map[string]bool{"169.254.169.254": true, "169.254.170.1": false, "fd00::5": true, "fc00::5": false, "::ffff:169.254.169.1": true} {
		if got := cidr.AllowAddr(netip.MustParseAddr(addr)) == nil; got != want {
			t.Errorf("CIDR policy on %s: allowed=%v, want %v", addr, got, want)
		}
	}
}

func TestParseRefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "ex ample", "http://x", "-bad.example", "a..b"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), Setting) {
			t.Errorf("Parse(%q) = %v, want an error naming %s", bad, err, Setting)
		}
	}
	if _, err := Parse(" external , loopback,10.0.0.0/8,::1,Hooks.Example.COM,*.corp.example "); err != nil {
		t.Errorf("valid list refused: %v", err)
	}
}

// fakeResolver answers from a table.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func TestNamesAreCheckedByWhatTheyResolveTo(t *testing.T) {
	t.Parallel()
	res := fakeResolver{
		"intranet.example":   {"10.1.2.3"},
		"rebind.example":     {"93.184.215.14", "127.0.0.1"},
		"metadata.example":   {"169.254.169.254"},
		"hooks.corp.example": {"10.9.9.9"},
		"public.example":     {"93.184.215.14"},
	}
	p, _ := Parse("*.corp.example")
	p = p.WithResolver(res)
	ctx := context.Background()
	err := p.Check(ctx, "intranet.example")
	var re *RefusedError
	if !errors.As(err, &re) || re.Host != "intranet.example" || re.Class != Private {
		t.Fatalf("a name resolving to a private address: %v", err)
	}
	if !strings.Contains(err.Error(), "intranet.example (10.1.2.3)") {
		t.Errorf("message does not name host and address: %v", err)
	}
	if err := p.Check(ctx, "metadata.example"); !errors.As(err, &re) || re.Class != LinkLocal {
		t.Errorf("metadata: %v", err)
	}
	if err := p.Check(ctx, "hooks.corp.example"); err != nil {
		t.Errorf("an allow-listed name is refused: %v", err)
	}
	// A name with one public and one loopback answer: only the public one
	// may be dialed.
	addrs, err := p.Resolve(ctx, "rebind.example")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "93.184.215.14" {
		t.Errorf("mixed answers: %v %v", addrs, err)
	}
	if err := p.Check(ctx, "[::1]"); !errors.As(err, &re) {
		t.Errorf("bracketed literal: %v", err)
	}
}

func TestDialRefusesLoopbackAndRedirectsToIt(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer inner.Close()
	u, _ := url.Parse(inner.URL)
	_, port, _ := net.SplitHostPort(u.Host)

	// A "public" name whose server answers with a redirect to loopback: the
	// redirect target is dialed through the policy too and refused.
	res := fakeResolver{"public.example": {"93.184.215.14"}, "localhost.attacker.example": {"127.0.0.1"}}
	p, _ := Parse("")
	p = p.WithResolver(res)
	client := &http.Client{Transport: p.Transport()}
	for _, target := range []string{
		inner.URL,
		"http://localhost.attacker.example:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://0.0.0.0:" + port + "/",
	} {
		_, err := client.Get(target)
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Errorf("GET %s: %v, want a refusal", target, err)
		}
	}

	// The redirector (127.0.0.1) is allowed by an exact CIDR; the redirect
	// points at another loopback address, which is not.
	target := strings.Replace(inner.URL, "127.0.0.1", "127.0.0.2", 1)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/internal", http.StatusFound)
	}))
	defer redirector.Close()
	ru, _ := url.Parse(redirector.URL)
	allowRedirector, _ := Parse(ru.Hostname() + "/32")
	client = &http.Client{Transport: allowRedirector.Transport()}
	_, err := client.Get(redirector.URL)
	var re *RefusedError
	if !errors.As(err, &re) || re.Addr.String() != "127.0.0.2" {
		t.Errorf("redirect to loopback: %v, want a refusal of 127.0.0.2", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the refused server was reached %d times", hits.Load())
	}

	// With loopback allowed the same server is reachable.
	open, _ := Parse("loopback")
	res2, err := (&http.Client{Transport: open.Transport()}).Get(inner.URL)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if hits.Load() != 1 {
		t.Errorf("allowed server hits = %d", hits.Load())
	}
}
