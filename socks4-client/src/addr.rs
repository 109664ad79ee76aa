//! Where to connect, as a caller writes it: [`HostPort`] (a host, by name or
//! address, and a port), made from `"host:port"`, `(host, port)`,
//! [`SocketAddr`] or [`SocketAddrV4`] by [`ToHostPort`]. The proxy is a
//! `HostPort` (a name is resolved by the runtime), and so is the target (a
//! name is sent to the proxy to resolve: SOCKS4a).

use crate::error::ClientError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// A host: an address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name.
    Name(String),
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// The host as text: an address (IPv6 without brackets) or a name.
    pub fn host_str(&self) -> std::borrow::Cow<'_, str> {
        match &self.host {
            Host::Ip(ip) => ip.to_string().into(),
            Host::Name(name) => name.as_str().into(),
        }
    }

    /// The address, when the host is one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// What can name a host and a port: `"host:port"` (`"proxy.lan:1080"`,
/// `"127.0.0.1:1080"`, `"[::1]:1080"`), `(host, port)`, [`SocketAddr`],
/// [`SocketAddrV4`], `(IpAddr, port)`, or a [`HostPort`].
pub trait ToHostPort {
    /// The host and port, or why the text does not name them.
    fn to_host_port(&self) -> Result<HostPort, ClientError>;
}

/// A host given as text: an address (brackets around IPv6 allowed), or else
/// a name.
fn host(text: &str) -> Host {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map_or_else(|_| Host::Name(text.to_owned()), Host::Ip)
}

impl ToHostPort for str {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return addr.to_host_port();
        }
        let bad =
            || ClientError::Address(format!("'{self}': expected HOST:PORT, e.g. proxy.lan:1080"));
        let (name, port) = self.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(bad());
        }
        Ok(HostPort {
            host: host(name),
            port,
        })
    }
}

impl ToHostPort for String {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        self.as_str().to_host_port()
    }
}

impl ToHostPort for (&str, u16) {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        if self.0.is_empty() {
            return Err(ClientError::Address("an empty host name".to_owned()));
        }
        Ok(HostPort {
            host: host(self.0),
            port: self.1,
        })
    }
}

impl ToHostPort for (String, u16) {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        (self.0.as_str(), self.1).to_host_port()
    }
}

impl ToHostPort for (IpAddr, u16) {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        Ok(HostPort {
            host: Host::Ip(self.0),
            port: self.1,
        })
    }
}

impl ToHostPort for (Ipv4Addr, u16) {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        (IpAddr::V4(self.0), self.1).to_host_port()
    }
}

impl ToHostPort for SocketAddr {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        (self.ip(), self.port()).to_host_port()
    }
}

impl ToHostPort for SocketAddrV4 {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        SocketAddr::V4(*self).to_host_port()
    }
}

impl ToHostPort for HostPort {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        Ok(self.clone())
    }
}

impl<T: ToHostPort + ?Sized> ToHostPort for &T {
    fn to_host_port(&self) -> Result<HostPort, ClientError> {
        (**self).to_host_port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(t: impl ToHostPort) -> HostPort {
        t.to_host_port().unwrap()
    }

    #[test]
    fn every_way_of_writing_a_host_and_port() {
        let name = HostPort {
            host: Host::Name("proxy.lan".into()),
            port: 1080,
        };
        assert_eq!(hp("proxy.lan:1080"), name);
        assert_eq!(hp(("proxy.lan", 1080)), name);
        assert_eq!(hp(("proxy.lan".to_owned(), 1080)), name);
        let v4: SocketAddrV4 = "127.0.0.1:1080".parse().unwrap();
        for same in [
            hp("127.0.0.1:1080"),
            hp(v4),
            hp(SocketAddr::V4(v4)),
            hp(("127.0.0.1", 1080)),
        ] {
            assert_eq!(same.socket_addr(), Some(SocketAddr::V4(v4)));
        }
        assert_eq!(hp("[::1]:1080").to_string(), "[::1]:1080");
        assert_eq!(hp(("::1", 1080)).socket_addr(), "[::1]:1080".parse().ok());
        for bad in ["proxy.lan", "1080", ":1080", "pro xy:1080", "proxy:port"] {
            assert!(bad.to_host_port().is_err(), "{bad}");
        }
    }
}
