//! IP allow-lists per organization, and who the client is behind trusted
//! proxies.
//!
//! Both [`AllowList`] and [`TrustedProxies`] are sets of CIDR ranges, parsed
//! with the same strict rules (see [`AllowList::parse`]); the range
//! arithmetic is `ipnet`'s. Addresses are parsed by the standard library,
//! not by `ipnet`'s own parser, because `ipnet` 2 reads `010.0.0.1/32` as
//! `10.0.0.1/32` where other software reads `010` as octal 8: the two
//! would disagree about which network an entry means.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are IPv4 everywhere here:
//! client addresses, proxy hops and entries written that way are normalised
//! before any comparison.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net};

/// The `X-Forwarded-For` header.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The prefix length of `::ffff:0:0/96`, the IPv4-mapped block.
const MAPPED_PREFIX_LEN: u8 = 96;

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become IPv4; every other
/// address is returned unchanged (the deprecated IPv4-compatible form
/// `::a.b.c.d` stays IPv6).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The CIDR ranges an organization's clients must come from.
///
/// An empty list allows every address: it means "no restriction", not
/// "nobody". Entries are parsed by [`AllowList::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
    /// Refuses everyone (a stored list that no longer parses).
    closed: bool,
}

impl AllowList {
    /// Parses a list of CIDR entries, or returns the index of the first bad
    /// entry and the reason.
    ///
    /// Each entry, after trimming surrounding whitespace, is one of:
    /// - `address/prefix`, IPv4 or IPv6, e.g. `10.0.0.0/24`, `2001:db8::/32`;
    /// - a bare address, meaning `/32` (IPv4) or `/128` (IPv6).
    ///
    /// Refused: anything the standard library does not read as an address
    /// (IPv4 octets with leading zeros such as `010.0.0.1`, fewer than four
    /// octets, zone ids `fe80::1%eth0`, brackets, ports), a prefix that is
    /// empty, not plain decimal, has a leading zero (`/08`) or is longer than
    /// the address, and **host bits set** (`10.0.0.5/24`). The last is an
    /// error rather than silently widened to `10.0.0.0/24`: the writer may
    /// have meant `10.0.0.5/32`, and guessing wider would grant access
    /// nobody asked for. The reason names both readings.
    ///
    /// IPv4-mapped entries are stored as IPv4: `::ffff:10.0.0.0/104` is
    /// `10.0.0.0/8`, `::ffff:10.1.2.3` is `10.1.2.3/32`. An IPv6 range wider
    /// than `/96` (`::/0`, say) stays IPv6 and never matches an IPv4 client.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, String)> {
        parse_nets(entries).map(|nets| Self {
            nets,
            closed: false,
        })
    }

    /// A list that allows nobody: what a stored list that no longer parses
    /// means, so a damaged setting fails closed.
    pub fn deny_all() -> Self {
        Self {
            nets: Vec::new(),
            closed: true,
        }
    }

    /// Whether a client at `ip` may call: always when the list is empty,
    /// otherwise when some entry contains the (canonical) address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        !self.closed && (self.nets.is_empty() || contains(&self.nets, ip))
    }

    /// Whether the list is empty, that is, allows every address.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The parsed entries in their canonical form, in the order given
    /// (`to_string()` on each gives `10.0.0.1/32`, `2001:db8::/32`).
    pub fn entries(&self) -> &[IpNet] {
        &self.nets
    }
}

/// The proxies (load balancers, ingress) whose `X-Forwarded-For` entries
/// the gateway believes, from configuration.
///
/// Unlike an [`AllowList`], an empty set trusts nobody: the client is then
/// always the TCP peer. Entries follow the rules of [`AllowList::parse`].
/// Read configuration as strings and call [`TrustedProxies::parse`] rather
/// than deserialising `ipnet::IpNet` directly, which accepts leading-zero
/// octets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses the configured ranges; see [`AllowList::parse`] for the rules.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, String)> {
        parse_nets(entries).map(|nets| Self { nets })
    }

    /// Whether `ip` (made canonical) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        contains(&self.nets, ip)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The parsed ranges in their canonical form.
    pub fn entries(&self) -> &[IpNet] {
        &self.nets
    }
}

/// The address of the client of a request, canonical (see [`canonical_ip`]).
///
/// `x_forwarded_for` holds every `X-Forwarded-For` header value in the
/// order received; each is a comma-separated list of hops, oldest first.
///
/// - When the peer is not a trusted proxy, the client is the peer and the
///   header is ignored entirely: anyone can write it.
/// - When the peer is trusted, the hops are walked from the right (the one
///   the peer itself appended) leftwards, skipping trusted proxies; the
///   first untrusted hop is the client. Hops further left were written by
///   that client or before it and are never looked at, so fake hops a
///   client prepends change nothing.
/// - A malformed hop (not an address; empty; `unknown`; an obfuscated
///   identifier) ends the walk, and the result is the last address that
///   was vouched for: the peer, or the trusted hop right of the bad one.
///   That address is a trusted proxy, not something a client wrote, so it
///   cannot be spoofed; it is the same answer as when every hop is trusted
///   or the header is absent. The walk never steps over a bad hop to reach
///   hops a client may control.
///
/// A hop is an address with optional surrounding spaces or tabs, and may
/// carry a port: `10.0.0.1`, `10.0.0.1:5678`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`. An IPv6 address with a port must
/// be bracketed (`2001:db8::1:443` is read as an address). Leading-zero
/// IPv4 octets make a hop malformed.
///
/// Callers must pass every header value: dropping one they cannot decode
/// would let the walk reach hops further left. Pass `""` in its place
/// instead (it is malformed), or use [`client_address_from_headers`].
pub fn client_address(peer: IpAddr, x_forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical_ip(peer);
    if !trusted.contains(client) {
        return client;
    }
    let hops = x_forwarded_for
        .iter()
        .rev()
        .flat_map(|value| value.rsplit(','));
    for hop in hops {
        let Some(hop) = parse_hop(hop) else {
            return client;
        };
        client = hop;
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// [`client_address`] with the `X-Forwarded-For` values taken from
/// `headers`; a value that is not visible ASCII counts as a malformed hop.
pub fn client_address_from_headers(
    peer: IpAddr,
    headers: &http::HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical_ip(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let values: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|value| value.to_str().unwrap_or(""))
        .collect();
    client_address(peer, &values, trusted)
}

/// Whether some range in `nets` contains the canonical form of `ip`.
fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    nets.iter().any(|net| net.contains(&ip))
}

/// Parses every entry with [`parse_net`], stopping at the first bad one.
fn parse_nets<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, (usize, String)> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| parse_net(entry.as_ref()).map_err(|reason| (index, reason)))
        .collect()
}

/// One CIDR entry: `address[/prefix]`, canonical, host bits clear.
fn parse_net(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))?;
    let net = match prefix {
        None => IpNet::from(address),
        Some(prefix) => {
            let len = parse_prefix_len(prefix)
                .ok_or_else(|| format!("{entry:?} has a malformed prefix length"))?;
            IpNet::new(address, len)
                .map_err(|_| format!("{entry:?} has a prefix length longer than the address"))?
        }
    };
    let net = canonical_net(net);
    let network = net.trunc();
    if network != net {
        let host = IpNet::from(net.addr());
        return Err(format!(
            "{entry:?} has host bits set: write {network} for the range or {host} for the address"
        ));
    }
    Ok(net)
}

/// A prefix length in plain decimal without a leading zero (`0`..=`255`;
/// the address family bounds it further).
fn parse_prefix_len(prefix: &str) -> Option<u8> {
    let plain = !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'));
    if plain { prefix.parse().ok() } else { None }
}

/// An IPv6 range inside `::ffff:0:0/96` as the IPv4 range it maps.
fn canonical_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net;
    };
    let mapped_prefix = v6.prefix_len().checked_sub(MAPPED_PREFIX_LEN);
    match (v6.addr().to_ipv4_mapped(), mapped_prefix) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
        _ => net,
    }
}

/// One `X-Forwarded-For` hop, canonical; `None` when malformed.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches([' ', '\t']);
    let ip = if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else if let Ok(socket) = hop.parse::<SocketAddr>() {
        socket.ip()
    } else {
        let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(canonical_ip(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn allow(entries: &[&str]) -> AllowList {
        AllowList::parse(entries).expect("valid allow-list")
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).expect("valid trusted proxies")
    }

    #[test]
    fn slash_32_and_bare_ipv4_match_exactly() {
        for entry in ["192.0.2.7/32", "192.0.2.7", " 192.0.2.7 "] {
            let list = allow(&[entry]);
            assert!(list.allows(ip("192.0.2.7")), "{entry}");
            assert!(!list.allows(ip("192.0.2.6")), "{entry}");
            assert!(!list.allows(ip("192.0.2.8")), "{entry}");
            assert!(!list.allows(ip("2001:db8::1")), "{entry}");
            assert_eq!(list.entries()[0].to_string(), "192.0.2.7/32");
        }
    }

    #[test]
    fn slash_128_and_bare_ipv6_match_exactly() {
        for entry in ["2001:db8::7/128", "2001:db8::7", "2001:DB8:0:0:0:0:0:7"] {
            let list = allow(&[entry]);
            assert!(list.allows(ip("2001:db8::7")), "{entry}");
            assert!(!list.allows(ip("2001:db8::6")), "{entry}");
            assert!(!list.allows(ip("2001:db8::8")), "{entry}");
            assert!(!list.allows(ip("192.0.2.7")), "{entry}");
            assert_eq!(list.entries()[0].to_string(), "2001:db8::7/128");
        }
    }

    #[test]
    fn both_edges_of_a_slash_24_and_their_neighbours() {
        let list = allow(&["198.51.100.0/24"]);
        assert!(list.allows(ip("198.51.100.0")));
        assert!(list.allows(ip("198.51.100.255")));
        assert!(!list.allows(ip("198.51.99.255")));
        assert!(!list.allows(ip("198.51.101.0")));
    }

    #[test]
    fn ipv6_ranges_include_both_edges() {
        let list = allow(&["2001:db8:1::/48"]);
        assert!(list.allows(ip("2001:db8:1::")));
        assert!(list.allows(ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff")));
        assert!(!list.allows(ip("2001:db8:0:ffff:ffff:ffff:ffff:ffff")));
        assert!(!list.allows(ip("2001:db8:2::")));
    }

    #[test]
    fn ipv4_mapped_client_matches_ipv4_entries() {
        let list = allow(&["10.1.2.0/24"]);
        assert!(list.allows(ip("::ffff:10.1.2.3")));
        assert!(!list.allows(ip("::ffff:10.1.3.3")));
        // The IPv4-compatible form is not a mapped address.
        assert!(!list.allows(ip("::10.1.2.3")));
    }

    #[test]
    fn ipv4_mapped_entries_become_ipv4() {
        let list = allow(&["::ffff:10.1.2.3", "::ffff:192.168.0.0/112"]);
        assert_eq!(
            list.entries()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.1.2.3/32", "192.168.0.0/16"]
        );
        assert!(list.allows(ip("10.1.2.3")));
        assert!(list.allows(ip("::ffff:10.1.2.3")));
        assert!(list.allows(ip("192.168.255.255")));
        assert!(!list.allows(ip("10.1.2.4")));
        // IPv6 ranges wider than the mapped block stay IPv6.
        let v6_only = allow(&["::/0"]);
        assert!(v6_only.allows(ip("2001:db8::1")));
        assert!(!v6_only.allows(ip("10.1.2.3")));
        assert!(!v6_only.allows(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn leading_zero_octets_are_refused() {
        for entry in [
            "010.0.0.1/32",
            "010.0.0.1",
            "10.0.0.01",
            "10.00.0.0/16",
            "0127.0.0.1",
            "::ffff:010.0.0.1",
            "::ffff:010.0.0.0/104",
        ] {
            let err = AllowList::parse(&[entry]).expect_err(entry);
            assert_eq!(err.0, 0, "{entry}");
            let err = TrustedProxies::parse(&[entry]).expect_err(entry);
            assert_eq!(err.0, 0, "{entry}");
        }
        // A single zero octet is fine.
        assert!(allow(&["10.0.0.0/8"]).allows(ip("10.200.0.1")));
    }

    #[test]
    fn malformed_entries_are_refused_with_their_index() {
        for entry in [
            "",
            " ",
            "garbage",
            "10.0.0",
            "10.0.0.0.0",
            "256.0.0.1",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "/24",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/08",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "10.0.0.0/0x8",
            "10.0.0.0/300",
            "[2001:db8::1]",
            "2001:db8::1/",
            "fe80::1%eth0",
            "10.0.0.1:80",
            "10.0.0.0 /8",
        ] {
            let entries = ["10.0.0.0/8".to_owned(), entry.to_owned()];
            let (index, reason) = AllowList::parse(&entries).expect_err(entry);
            assert_eq!(index, 1, "{entry}");
            assert!(!reason.is_empty(), "{entry}");
        }
        let widest = allow(&["0.0.0.0/0", "::/0"]);
        assert!(widest.allows(ip("1.2.3.4")) && widest.allows(ip("2001:db8::1")));
    }

    #[test]
    fn host_bits_set_are_refused_naming_both_readings() {
        let (index, reason) = AllowList::parse(&["10.0.0.5/24"]).expect_err("host bits");
        assert_eq!(index, 0);
        assert!(reason.contains("10.0.0.0/24"), "{reason}");
        assert!(reason.contains("10.0.0.5/32"), "{reason}");
        assert!(AllowList::parse(&["2001:db8::1/64"]).is_err());
        assert!(AllowList::parse(&["::ffff:10.0.0.5/120"]).is_err());
        assert!(AllowList::parse(&["::ffff:10.0.0.0/80"]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/0"]).is_err());
    }

    #[test]
    fn empty_list_allows_all() {
        let list = AllowList::parse::<String>(&[]).expect("empty list");
        assert!(list.is_empty());
        for addr in ["10.0.0.1", "2001:db8::1", "::ffff:1.2.3.4", "127.0.0.1"] {
            assert!(list.allows(ip(addr)), "{addr}");
        }
        assert!(AllowList::default().allows(ip("203.0.113.9")));
    }

    #[test]
    fn empty_trusted_set_trusts_nobody() {
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert!(!none.contains(ip("10.0.0.1")));
        assert_eq!(
            client_address(ip("10.0.0.1"), &["203.0.113.9"], &none),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let peer = ip("203.0.113.50");
        for xff in [
            &["10.0.0.1"][..],
            &["192.0.2.1, 10.0.0.1"],
            &["192.0.2.1", "10.0.0.2"],
            &["garbage"],
        ] {
            assert_eq!(client_address(peer, xff, &proxies), peer, "{xff:?}");
        }
        // Mapped peers are reported as IPv4 even when untrusted.
        assert_eq!(
            client_address(ip("::ffff:203.0.113.50"), &["10.0.0.1"], &proxies),
            peer
        );
    }

    #[test]
    fn a_trusted_proxy_is_honoured_and_prepended_hops_are_ignored() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let lb = ip("10.0.0.2");
        assert_eq!(
            client_address(lb, &["198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        // The client wrote "1.1.1.1, 10.9.9.9" itself; the proxy appended
        // the address it saw. The right-most untrusted hop wins.
        assert_eq!(
            client_address(lb, &["1.1.1.1, 10.9.9.9, 198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        // The same with the client's header as a separate value.
        assert_eq!(
            client_address(lb, &["1.1.1.1, 10.9.9.9", "198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        // A mapped peer is still recognised as the trusted proxy.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &["198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        // No header at all: the proxy is all we know.
        assert_eq!(client_address(lb, &[], &proxies), lb);
    }

    #[test]
    fn a_chain_of_two_trusted_proxies_is_walked() {
        let proxies = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // client -> edge proxy (2001:db8:ffff::1) -> internal lb (10.0.0.2) -> gateway
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &["6.6.6.6, 198.51.100.7, 2001:db8:ffff::1"],
                &proxies
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &["6.6.6.6", "2001:db8:1::9", "10.1.1.1"],
                &proxies
            ),
            ip("2001:db8:1::9")
        );
        // Every hop trusted: the left-most one, the furthest vouched for.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["10.3.3.3, 10.1.1.1"], &proxies),
            ip("10.3.3.3")
        );
    }

    #[test]
    fn malformed_hops_end_the_walk_at_the_last_trusted_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let lb = ip("10.0.0.2");
        for (xff, expected) in [
            (&["198.51.100.7, garbage"][..], "10.0.0.2"),
            (&["198.51.100.7, unknown"], "10.0.0.2"),
            (&["198.51.100.7, "], "10.0.0.2"),
            (&["198.51.100.7,,10.1.1.1"], "10.1.1.1"),
            (&["198.51.100.7", ""], "10.0.0.2"),
            (&["198.51.100.7, 010.1.1.1"], "10.0.0.2"),
            (&["198.51.100.7, _hidden"], "10.0.0.2"),
            (&["198.51.100.7, 10.1.1.1:99999"], "10.0.0.2"),
            (&["198.51.100.7, 2001:db8::1]"], "10.0.0.2"),
            (&["198.51.100.7, 10.1.1.1 10.1.1.2"], "10.0.0.2"),
            (&["198.51.100.7, bad, 10.1.1.1"], "10.1.1.1"),
            // A malformed hop left of the client is never reached.
            (&["garbage, 198.51.100.7"], "198.51.100.7"),
        ] {
            assert_eq!(client_address(lb, xff, &proxies), ip(expected), "{xff:?}");
        }
    }

    #[test]
    fn hops_may_carry_ports_brackets_and_spaces() {
        let proxies = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let lb = ip("10.0.0.2");
        for (hop, expected) in [
            ("198.51.100.7:5678", "198.51.100.7"),
            ("  198.51.100.7\t", "198.51.100.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            (" [2001:db8::1]:443 ", "2001:db8::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("[::ffff:198.51.100.7]:443", "198.51.100.7"),
        ] {
            let xff = format!("6.6.6.6, {hop} , [2001:db8:ffff::1]:80,10.1.1.1:1");
            assert_eq!(
                client_address(lb, &[xff.as_str()], &proxies),
                ip(expected),
                "{hop}"
            );
        }
    }

    #[test]
    fn headers_are_read_in_order_and_undecodable_values_are_malformed() {
        use http::{HeaderMap, HeaderValue};
        let proxies = trusted(&["10.0.0.0/8"]);
        let lb = ip("10.0.0.2");
        let mut headers = HeaderMap::new();
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("198.51.100.7, 10.1.1.1"),
        );
        assert_eq!(
            client_address_from_headers(lb, &headers, &proxies),
            ip("198.51.100.7")
        );
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff10.1.1.2").expect("obs-text value"),
        );
        assert_eq!(client_address_from_headers(lb, &headers, &proxies), lb);
        // Untrusted peer: the headers are not looked at.
        assert_eq!(
            client_address_from_headers(ip("203.0.113.1"), &headers, &proxies),
            ip("203.0.113.1")
        );
    }
}
