//! The value types options are written in: [`Seconds`] (a duration as people
//! write it), [`Text`] (a value parsed from text, on the command line and in
//! the file alike), [`Net`] (a netmask), [`IdentMode`], and addresses to
//! listen on ([`parse_addr`]); lists that may be written as one value
//! (`one_or_many`). Each section of
//! [`super::Options`] uses them; they know nothing of the sections.

#[cfg(feature = "cli")]
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// IDENT (RFC 1413) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum IdentMode {
    /// Never query identd (rules may still require it).
    Off,
    /// Query and log, never refuse.
    Log,
    /// Refuse with 92 (identd unavailable) or 93 (another user).
    Require,
}

impl From<IdentMode> for socks4_proto::server::IdentMode {
    fn from(m: IdentMode) -> Self {
        match m {
            IdentMode::Off => Self::Off,
            IdentMode::Log => Self::Log,
            IdentMode::Require => Self::Require,
        }
    }
}

/// What per-client limits key on (`[limits] key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LimitsKey {
    /// The client's address (an IPv4 address, an IPv6 /64).
    Address,
    /// A verified TLS client certificate's subject name; clients without
    /// one by address.
    Cert,
    /// The user identd confirmed (needs `ident = "require"`); clients
    /// without one by address.
    Ident,
}

impl From<LimitsKey> for crate::limits::client_key::LimitKey {
    fn from(k: LimitsKey) -> Self {
        match k {
            LimitsKey::Address => Self::Address,
            LimitsKey::Cert => Self::Cert,
            LimitsKey::Ident => Self::Ident,
        }
    }
}

/// What a server at `max_connections` does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Leave it in the listen queue until a connection closes (accepting
    /// pauses).
    Wait,
    /// Accept it and refuse it at once (a SOCKS client reads a 91; any other
    /// kind is closed), so that clients and balancers see a full server.
    Refuse,
}

/// A listener kind whose connections are sniffed (`sniff`): their first
/// bytes read for the TLS SNI or the HTTP Host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SniffListeners {
    /// Transparent (TPROXY) listeners.
    Transparent,
    /// Redirect (REDIRECT, DNAT) listeners.
    Redirect,
    /// Port forwards (`forward`).
    Forward,
    /// No listener (`--sniff none`; in the file, `sniff = []` says the same).
    None,
}

/// Where a sniffed connection goes (`sniff_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SniffTarget {
    /// To the address the listener gave (the original destination, or the
    /// forward's target); rules and routes still match the name, a
    /// `socks4a://` or `http://` parent still gets it.
    #[default]
    Address,
    /// To the sniffed name, resolved by the server (the address only when
    /// no name was found).
    Name,
}

/// A length of time as people write it: `10` or `2.5` (seconds), or with a unit:
/// `500ms`, `10s`, `2m`, `1h`, `1h 30m` (humantime's format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub Duration);

/// The longest duration a setting takes, as a number of seconds or a
/// string alike: 1e9 seconds (about 31 years). Longer ones cannot be added
/// to the clock everywhere they are used, so they are a config error.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Seconds, String> {
        let s = s.trim();
        let d = match s.parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..1e9).contains(&v) => Duration::from_secs_f64(v),
            Ok(_) => {
                return Err(format!(
                    "'{s}': expected a duration such as 10, 2.5, 500ms, 2m or 1h"
                ))
            }
            Err(_) => humantime::parse_duration(s).map_err(|e| {
                format!("'{s}': {e} (expected a duration such as 10, 2.5, 500ms, 2m or 1h)")
            })?,
        };
        if d > MAX_DURATION {
            return Err(format!(
                "'{s}': longer than a deadline can be set ahead (at most 1e9 seconds, about 31 years)"
            ));
        }
        Ok(Seconds(d))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        humantime::format_duration(self.0).fmt(f)
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (10, 2.5) or a string (\"500ms\", \"2m\", \"1h\")")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seconds, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written as text in both the config file and on the command line (a
/// netmask, say), checked where it is read so that errors name the flag, or the
/// file's line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<T>(pub T);

impl<T: FromStr> FromStr for Text<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(Text).map_err(|e: T::Err| e.to_string())
    }
}

impl<T: fmt::Display> Serialize for Text<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Text<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<T>().map(Text).map_err(serde::de::Error::custom)
    }
}

/// A netmask as a setting.
pub type Net = Text<socks4_acl::Netmask>;

/// An address to listen on, as `IP:PORT` (`127.0.0.1:1080`, `[::1]:1080`,
/// `0.0.0.0:1080` for every IPv4 address): what the listener keys and flags
/// take. The error says what was expected, with an example, for the usual
/// slips (a port alone, `:1080`, a host name).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    const EXPECTED: &str = "expected IP:PORT, e.g. 127.0.0.1:1080";
    let why = if s.parse::<u16>().is_ok() {
        format!("a port alone does not say which address: {EXPECTED}")
    } else if let Some(port) = s.strip_prefix(':').filter(|p| p.parse::<u16>().is_ok()) {
        format!("{EXPECTED}, or 0.0.0.0:{port} and [::]:{port} for every address")
    } else if s.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok() && host.parse::<std::net::IpAddr>().is_err()
    }) {
        format!("a host name is not an address here: {EXPECTED}")
    } else {
        format!("{EXPECTED} (IPv6 in brackets: [::1]:1080)")
    };
    Err(format!("'{s}' is not an address: {why}"))
}

/// Deserializes a list of `IP:PORT` addresses, or one as a string (`listen =
/// "127.0.0.1:1080"` is a one-element list), with [`parse_addr`]'s errors.
pub(super) fn addr_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<SocketAddr>>, D::Error> {
    let texts: Option<Vec<String>> = one_or_many(d)?;
    texts
        .map(|t| {
            t.iter()
                .map(|a| parse_addr(a).map_err(serde::de::Error::custom))
                .collect()
        })
        .transpose()
}

/// Deserializes one `IP:PORT` address with [`parse_addr`]'s errors.
pub(super) fn one_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse_addr(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Deserializes a list, or one string standing for a list of one (`listen =
/// "ADDR"` as `listen = ["ADDR"]`). An element's own error comes through as
/// it is (a bad netmask in a list still says why).
pub(super) fn one_or_many<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or one value as a string")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut all = Vec::new();
            while let Some(one) = seq.next_element()? {
                all.push(one);
            }
            Ok(all)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            use serde::de::IntoDeserializer;
            T::deserialize(s.into_deserializer()).map(|one| vec![one])
        }
    }
    d.deserialize_any(V(std::marker::PhantomData)).map(Some)
}
