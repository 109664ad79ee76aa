//! Unit tests of nets: the forms a user types, IPv6 spellings of IPv4
//! addresses, address classes, and sets under inserts and deletes.

use super::*;
use std::net::Ipv4Addr;

fn nm(s: &str) -> Netmask {
    s.parse().unwrap()
}

#[test]
fn every_form_a_user_types() {
    let cases = [
        ("any", "any"),
        ("ANY", "any"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("10.0.0.0 255.0.0.0", "10.0.0.0/8"),
        ("10.0.0.0   255.255.255.0", "10.0.0.0/24"),
        ("10.0.0.0/255.255.0.0", "10.0.0.0/16"),
        ("192.168.1.7", "192.168.1.7/32"),
        ("::1", "::1/128"),
        ("2001:db8::1/32", "2001:db8::/32"),
        (" 0.0.0.0/0 ", "0.0.0.0/0"),
        ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
        ("::ffff:10.1.2.3", "10.1.2.3/32"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("::ffff:0:0/95", "::fffe:0:0/95"),
    ];
    for (input, shown) in cases {
        assert_eq!(nm(input).to_string(), shown, "{input}");
        assert_eq!(nm(shown), nm(input));
    }
}

#[test]
fn rejects_what_is_not_a_netmask() {
    for bad in [
        "",
        "10.0.0.0/33",
        "10.0.0.0 255.0.255.0",
        "10.0.0.0 0.255.255.255",
        "10.0.0.0 8",
        "::1 ffff::",
        "example.com",
        "10.0.0.0/8 junk",
        "1.2.3",
    ] {
        let err = bad.parse::<Netmask>().unwrap_err();
        assert!(err.to_string().contains("not a netmask"), "{bad}");
    }
}

#[test]
fn ipv6_spellings_of_ipv4_addresses() {
    let eq = |s: &str| ipv4_equivalent(s.parse().unwrap());
    let lo = Some(Ipv4Addr::LOCALHOST);
    assert_eq!(eq("::1"), lo);
    assert_eq!(eq("0:0:0:0:0:0:0:1"), lo);
    assert_eq!(eq("::ffff:127.0.0.1"), lo);
    assert_eq!(eq("::127.0.0.1"), lo);
    assert_eq!(eq("64:ff9b::7f00:1"), lo);
    assert_eq!(eq("::ffff:10.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(eq("::"), None);
    assert_eq!(eq("2001:db8::1"), None);
    assert_eq!(eq("127.0.0.1"), None);
}

#[test]
fn address_classes_cover_both_families() {
    let yes = |c: AddrClass, s: &str| assert!(c.contains(s.parse().unwrap()), "{c} {s}");
    let no = |c: AddrClass, s: &str| assert!(!c.contains(s.parse().unwrap()), "{c} {s}");
    for a in [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "::ffff:127.0.0.2",
        "64:ff9b::7f00:1",
    ] {
        yes(AddrClass::Loopback, a);
    }
    for a in [
        "10.0.0.1",
        "172.16.9.9",
        "192.168.1.1",
        "fd00::1",
        "fc12::",
        "::ffff:10.0.0.1",
    ] {
        yes(AddrClass::Private, a);
    }
    for a in ["169.254.1.1", "fe80::1", "febf::1", "::ffff:169.254.0.1"] {
        yes(AddrClass::LinkLocal, a);
    }
    for a in ["0.0.0.0", "::", "::ffff:0.0.0.0"] {
        yes(AddrClass::Unspecified, a);
    }
    no(AddrClass::Loopback, "128.0.0.1");
    no(AddrClass::Private, "172.32.0.1");
    no(AddrClass::Private, "2001:db8::1");
    no(AddrClass::LinkLocal, "fec0::1");
    no(AddrClass::Unspecified, "::2");
    for c in AddrClass::ALL {
        assert_eq!(AddrClass::from_name(c.name()), Some(c));
    }
}

#[test]
fn mapped_ipv6_counts_as_ipv4() {
    let mut set = NetSet::new();
    set.insert(nm("127.0.0.0/8"));
    assert!(set.contains("::ffff:127.0.0.1".parse().unwrap()));
    assert!(nm("127.0.0.1").contains("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!set.contains("::1".parse().unwrap()));
}

#[test]
fn nested_nets_survive_deletes_in_any_order() {
    let mut set: NetSet = ["10.0.0.0/8", "10.1.0.0/16", "10.1.1.0/24", "10.2.0.0/16"]
        .map(nm)
        .into_iter()
        .collect();
    assert_eq!(set.search_len(), 1);
    assert!(set.remove(&nm("10.1.0.0/16")));
    assert_eq!(set.search_len(), 1);
    assert!(set.remove(&nm("10.0.0.0/8")));
    assert_eq!(set.search_len(), 2); // 10.1.1.0/24 and 10.2.0.0/16
    assert!(set.contains("10.1.1.9".parse().unwrap()));
    assert!(!set.contains("10.1.2.9".parse().unwrap()));
    assert!(set.contains("10.2.255.255".parse().unwrap()));
    assert!(!set.remove(&nm("10.0.0.0/8")));
    assert!(set.insert(nm("0.0.0.0/0")));
    assert_eq!(set.search_len(), 1);
    assert_eq!(set.len(), 3);
    assert!(set.contains("8.8.8.8".parse().unwrap()));
    assert!(!set.contains("2001:db8::".parse().unwrap()));
    assert!(set.insert(Netmask::Any));
    assert!(!set.insert(Netmask::Any));
    assert!(set.contains("2001:db8::".parse().unwrap()));
    assert!(set.remove(&Netmask::Any));
    assert!(!set.remove(&Netmask::Any));
}
