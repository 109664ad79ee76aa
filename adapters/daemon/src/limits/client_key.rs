//! [`ClientKey`]: a client as per-client limits and accounting see it: an
//! IPv4 address or an IPv6 /64 (one site's hosts share it, as IPv4 hosts
//! behind NAT share an address), or, with `[limits] key`, a verified
//! identity: a TLS client certificate's name, or an IDENT-verified user
//! ([`LimitKey`]). A SOCKS user id alone is never a key: it is the client's
//! claim.

use socks4_acl::canonical;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The longest identity name kept as a key, in bytes (longer names are cut
/// at a character boundary: a certificate's common name is at most 64
/// characters, an IDENT user id at most `max_user_id` bytes).
pub const MAX_KEY_NAME: usize = 255;

/// A client, as limits and accounting see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4(Ipv4Addr),
    /// An IPv6 /64: the address's first 64 bits.
    V6(u64),
    /// The subject common name of a verified TLS client certificate, as
    /// given (`[limits] key = "cert"`).
    Cert(Arc<str>),
    /// A user id identd confirmed (`[limits] key = "ident"` with `ident =
    /// "require"`), as given (bytes that are not UTF-8 replaced).
    Ident(Arc<str>),
}

/// What per-client limits key on (`[limits] key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitKey {
    /// The client's address (an IPv4 address, an IPv6 /64).
    #[default]
    Address,
    /// A verified TLS client certificate's name; other clients by address.
    Cert,
    /// The IDENT-verified user (`ident = "require"`); other clients by
    /// address.
    Ident,
}

impl LimitKey {
    /// Its name in the configuration and in `ctl clients`.
    pub fn name(self) -> &'static str {
        match self {
            LimitKey::Address => "address",
            LimitKey::Cert => "cert",
            LimitKey::Ident => "ident",
        }
    }
}

fn bounded(name: &str) -> Arc<str> {
    let mut end = name.len().min(MAX_KEY_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(&name[..end])
}

impl ClientKey {
    /// The client an address belongs to.
    pub fn of(addr: IpAddr) -> ClientKey {
        match canonical(addr) {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }

    /// The key a connection's limits use under `by`: its certificate's name
    /// or its IDENT-verified user when `by` says so and it has one, else its
    /// address.
    pub fn choose(
        by: LimitKey,
        addr: IpAddr,
        cert: Option<&str>,
        ident: Option<&[u8]>,
    ) -> ClientKey {
        match (by, cert, ident) {
            (LimitKey::Cert, Some(name), _) => ClientKey::Cert(bounded(name)),
            (LimitKey::Ident, _, Some(user)) => {
                ClientKey::Ident(bounded(&String::from_utf8_lossy(user)))
            }
            _ => ClientKey::of(addr),
        }
    }

    /// What kind of key it is: `address`, `cert` or `ident`.
    pub fn kind(&self) -> LimitKey {
        match self {
            ClientKey::V4(_) | ClientKey::V6(_) => LimitKey::Address,
            ClientKey::Cert(_) => LimitKey::Cert,
            ClientKey::Ident(_) => LimitKey::Ident,
        }
    }

    /// The key as the state file writes it: an address, `2001:db8::/64`,
    /// `cert:NAME` or `ident:NAME` (the name as given; JSON escapes it).
    pub fn to_record(&self) -> String {
        match self {
            ClientKey::Cert(name) => format!("cert:{name}"),
            ClientKey::Ident(name) => format!("ident:{name}"),
            other => other.to_string(),
        }
    }

    /// A key as [`to_record`](Self::to_record) wrote it; `None` when it is
    /// none.
    pub fn from_record(s: &str) -> Option<ClientKey> {
        if let Some(name) = s.strip_prefix("cert:") {
            return Some(ClientKey::Cert(bounded(name)));
        }
        if let Some(name) = s.strip_prefix("ident:") {
            return Some(ClientKey::Ident(bounded(name)));
        }
        if let Some(prefix) = s.strip_suffix("/64") {
            let v6: Ipv6Addr = prefix.parse().ok()?;
            return Some(ClientKey::of(IpAddr::V6(v6)));
        }
        let v4: Ipv4Addr = s.parse().ok()?;
        Some(ClientKey::of(IpAddr::V4(v4)))
    }
}

/// Writes a name with what could break a line or a field escaped (spaces,
/// `=`, `\`, control and non-ASCII characters).
fn escaped(name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for c in name.chars() {
        if c.is_ascii_graphic() && c != '\\' && c != '=' {
            write!(f, "{c}")?;
        } else {
            write!(f, "\\u{{{:x}}}", c as u32)?;
        }
    }
    Ok(())
}

impl fmt::Display for ClientKey {
    /// An address or `/64` as is; an identity as `cert:NAME` or
    /// `ident:NAME`, the name escaped so that it stays one field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::V4(a) => a.fmt(f),
            ClientKey::V6(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64))
            }
            ClientKey::Cert(name) => {
                f.write_str("cert:")?;
                escaped(name, f)
            }
            ClientKey::Ident(name) => {
                f.write_str("ident:")?;
                escaped(name, f)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_key_only_when_asked_and_round_trip() {
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let addr = ClientKey::of(a);
        assert_eq!(
            ClientKey::choose(LimitKey::Address, a, Some("alice"), Some(b"bob")),
            addr
        );
        assert_eq!(
            ClientKey::choose(LimitKey::Cert, a, None, Some(b"bob")),
            addr
        );
        assert_eq!(
            ClientKey::choose(LimitKey::Ident, a, Some("alice"), None),
            addr
        );
        let cert = ClientKey::choose(LimitKey::Cert, a, Some("alice smith"), None);
        assert_eq!(cert, ClientKey::Cert("alice smith".into()));
        assert_eq!(cert.to_string(), "cert:alice\\u{20}smith");
        let ident = ClientKey::choose(LimitKey::Ident, a, None, Some(b"bob"));
        assert_eq!(ident.kind(), LimitKey::Ident);
        for k in [
            addr,
            cert,
            ident,
            ClientKey::of("2001:db8::1".parse().unwrap()),
        ] {
            assert_eq!(ClientKey::from_record(&k.to_record()), Some(k));
        }
        let long = "é".repeat(200);
        let ClientKey::Cert(cut) = ClientKey::choose(LimitKey::Cert, a, Some(&long), None) else {
            panic!()
        };
        assert!(cut.len() <= MAX_KEY_NAME);
    }
}
