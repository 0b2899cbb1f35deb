// Package netpolicy decides which network addresses kod may connect to on
// behalf of users (webhook deliveries, repository imports), and enforces it
// when dialing: names are resolved once, every resolved address is checked,
// and only a checked address is dialed, so DNS rebinding and redirects
// cannot reach a refused address. One policy is shared by every outbound
// client (KOD_WEBHOOK_ALLOWED_HOSTS).
package netpolicy

import (
	"net/netip"
)

// Class is the kind of network an address belongs to.
type Class string

const (
	Public      Class = "public"
	Loopback    Class = "loopback"    // 127/8, ::1
	Unspecified Class = "unspecified" // 0.0.0.0/8, :: (reaches the local host)
	Private     Class = "private"     // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10, 64:ff9b:1::/48
	LinkLocal   Class = "link-local"  // 169.254/16 (cloud metadata), fe80::/10
	Special     Class = "special-purpose"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	v4Private = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
	// Not reachable or not meant to be: IETF assignments, documentation,
	// benchmarking, multicast, reserved and broadcast.
	v4Special = prefixes("192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
		"198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4")
	v6Private = prefixes("fc00::/7", "fec0::/10", "64:ff9b:1::/48")
	v6Special = prefixes("ff00::/8", "2001:db8::/32", "100::/64", "2001::/32", "2001:10::/28", "2001:20::/28", "::/96")
	v6Global  = netip.MustParsePrefix("2000::/3")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func within(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Classify returns the class of ip. IPv4 addresses embedded in IPv6
// (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// classified by the IPv4 address they reach.
func Classify(ip netip.Addr) Class {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is4() {
		return classify4(ip)
	}
	b := ip.As16()
	switch {
	case ip == netip.IPv6Loopback():
		return Loopback
	case ip == netip.IPv6Unspecified():
		return Unspecified
	case nat64.Contains(ip):
		return classify4(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return classify4(netip.AddrFrom4([4]byte(b[2:6])))
	case ip.IsLinkLocalUnicast():
		return LinkLocal
	case within(ip, v6Private):
		return Private
	case within(ip, v6Special) || !v6Global.Contains(ip):
		return Special
	}
	return Public
}

func classify4(ip netip.Addr) Class {
	switch {
	case ip.IsLoopback():
		return Loopback
	case ip.As4()[0] == 0:
		return Unspecified
	case ip.IsLinkLocalUnicast():
		return LinkLocal
	case within(ip, v4Private):
		return Private
	case within(ip, v4Special):
		return Special
	}
	return Public
}
