package netpolicy

import "net/netip"

// Class is the kind of network an address belongs to, as far as outbound
// requests to user-given hosts are concerned.
type Class string

// The classes. Only ClassPublic is allowed by the default policy.
const (
	ClassPublic    Class = "public"     // global unicast
	ClassLoopback  Class = "loopback"   // 127/8, ::1, and 0.0.0.0/8, :: (they reach this host)
	ClassPrivate   Class = "private"    // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10, 64:ff9b:1::/48
	ClassLinkLocal Class = "link-local" // 169.254/16 (cloud metadata), fe80::/10
	ClassReserved  Class = "reserved"   // multicast, 240/4, documentation and benchmark ranges, ...
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	privateNets  = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10", "64:ff9b:1::/48")
	reservedNets = prefixes(
		"192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"::/96", "100::/64", "2001:db8::/32", "2001:2::/48",
	)
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
)

// Classify returns the class of ip. Addresses that embed an IPv4 address
// (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// classified by the embedded address, so ::ffff:127.0.0.1 is loopback.
func Classify(ip netip.Addr) Class {
	ip = embedded(ip)
	switch {
	case !ip.IsValid():
		return ClassReserved
	case ip.IsLoopback(), ip.IsUnspecified(), ip.Is4() && thisNet.Contains(ip):
		return ClassLoopback
	case ip.IsLinkLocalUnicast():
		return ClassLinkLocal
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsLinkLocalMulticast():
		return ClassReserved
	}
	for _, p := range privateNets {
		if p.Contains(ip) {
			return ClassPrivate
		}
	}
	for _, p := range reservedNets {
		if p.Contains(ip) {
			return ClassReserved
		}
	}
	if !ip.IsGlobalUnicast() {
		return ClassReserved
	}
	return ClassPublic
}

// embedded returns the IPv4 address ip carries (mapped, NAT64, 6to4), or ip.
func embedded(ip netip.Addr) netip.Addr {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		return ip.Unmap()
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(ip):
			return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
	}
	return ip
}
