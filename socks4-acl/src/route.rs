//! Routes: which way a passed request leaves, first match wins, with the same
//! matchers as rules. A route is `direct` (the default) or `via` one or more
//! parent proxies, tried in order when one cannot be reached:
//!
//! ```text
//! route from 10.0.0.0/8 to .corp.example via socks4a://parent.corp:1080 user proxyuser
//! route to any port eq 443 via http://127.0.0.1:3128, http://127.0.0.1:3129
//! route to any via socks4://10.0.0.1:1080, socks4://10.0.0.2:1080 balance round-robin
//! route to any direct
//! ```
//!
//! A `balance` clause after a `via` route's parents says how they share the
//! connections ([`Balance`]); without it, `first`: each request tries them in
//! the order given.
//!
//! A chain of parents (`via A then B`) is not a route of its own: configure the
//! first parent to go through the second.
//!
//! Exit clauses end a route, after its target, in any order, each once
//! ([`Exit`]): the local address its connections leave from (`source ADDR[,ADDR...]`
//! in turn, or `source PREFIX random`), the interface (`interface NAME`) and
//! the firewall mark (`mark N`). They apply to direct connections and to
//! connections toward the route's parents:
//!
//! ```text
//! route from 10.1.0.0/16 to any direct source 192.0.2.11,192.0.2.12 interface eth1
//! route to any direct source 2001:db8:0:1::/64 random mark 0x10
//! ```

use crate::rule::{Rule, Subject};
use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

/// What kind of proxy a parent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParentKind {
    /// `socks4://`: a SOCKS4 server; a SOCKS4a name is resolved here first and
    /// the parent gets an IPv4 address.
    Socks4,
    /// `socks4a://`: a SOCKS4a server; a name is passed on unresolved.
    Socks4a,
    /// `http://`: an HTTP/1.1 proxy, asked with `CONNECT host:port`.
    Http,
    /// `socks4+tls://`: SOCKS4 inside TLS.
    Socks4Tls,
    /// `socks4a+tls://`: SOCKS4a inside TLS.
    Socks4aTls,
    /// `https://`: HTTP CONNECT inside TLS.
    Https,
}

impl ParentKind {
    const SCHEMES: [(&'static str, ParentKind); 6] = [
        ("socks4", ParentKind::Socks4),
        ("socks4a", ParentKind::Socks4a),
        ("http", ParentKind::Http),
        ("socks4+tls", ParentKind::Socks4Tls),
        ("socks4a+tls", ParentKind::Socks4aTls),
        ("https", ParentKind::Https),
    ];

    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        Self::SCHEMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(s, _)| s)
    }

    /// Whether the parent takes a host name (SOCKS4a, HTTP) rather than only
    /// an IPv4 address (SOCKS4).
    pub fn takes_names(self) -> bool {
        !matches!(self, ParentKind::Socks4 | ParentKind::Socks4Tls)
    }

    /// Whether the connection to the parent is inside TLS.
    pub fn tls(self) -> bool {
        matches!(
            self,
            ParentKind::Socks4Tls | ParentKind::Socks4aTls | ParentKind::Https
        )
    }

    /// Whether the parent speaks SOCKS (4 or 4a), rather than HTTP.
    pub fn socks(self) -> bool {
        !matches!(self, ParentKind::Http | ParentKind::Https)
    }
}

/// A parent proxy, as a URL: `socks4a://[user@]host:port`,
/// `http://[user:password@]host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parent {
    /// Its kind.
    pub kind: ParentKind,
    /// Its host: a name (resolved when connecting) or an address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// For SOCKS: the USERID to send (default: the client's); for HTTP: the
    /// user of basic authentication.
    pub user: Option<String>,
    /// For HTTP: the password of basic authentication.
    pub password: Option<String>,
}

/// Why a parent URL does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentError(String);

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParentError {}

impl FromStr for Parent {
    type Err = ParentError;

    fn from_str(s: &str) -> Result<Parent, ParentError> {
        let err = |why: &str| {
            ParentError(format!(
                "'{}' is not a parent proxy URL ({why}): expected socks4://, socks4a://, http://, \
                 socks4+tls://, socks4a+tls:// or https:// then [user[:password]@]host:port",
                without_password(s)
            ))
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| err("no scheme"))?;
        let kind = ParentKind::SCHEMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(scheme))
            .map(|(_, k)| *k)
            .ok_or_else(|| err("unknown scheme"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once("]:").ok_or_else(|| err("no port"))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("bad IPv6 address"))?;
            (h.to_owned(), p)
        } else {
            let (h, p) = hostport.rsplit_once(':').ok_or_else(|| err("no port"))?;
            (h.to_owned(), p)
        };
        let port: u16 = port.parse().map_err(|_| err("bad port"))?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_ok || port == 0 {
            return Err(err("bad host or port"));
        }
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (Some(u.to_owned()), None),
            },
        };
        if kind.socks() && password.is_some() {
            return Err(err("SOCKS4 has a user id but no password"));
        }
        Ok(Parent {
            kind,
            host,
            port,
            user,
            password,
        })
    }
}

/// A parent URL as typed, with what may be a password (between the
/// scheme's `://`, a `:` and the last `@`) shown as `***`: for errors about
/// a URL that does not parse.
pub(crate) fn without_password(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => s.to_owned(),
        },
        None => s.to_owned(),
    }
}

impl fmt::Display for Parent {
    /// The URL, with a password shown as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if let Some(u) = &self.user {
            write!(f, "{u}")?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Parent {
    /// The URL exactly as it parses back (password included), for a config
    /// file's `Display` round trip.
    pub fn to_url(&self) -> String {
        let mut s = format!("{}://", self.kind.scheme());
        if let Some(u) = &self.user {
            s.push_str(u);
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(p);
            }
            s.push('@');
        }
        if self.host.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6()) {
            s.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            s.push_str(&format!("{}:{}", self.host, self.port));
        }
        s
    }
}

/// Where a route sends a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Straight to the destination (from `outgoing_address`, if set).
    Direct,
    /// Through these parents, tried in order while one cannot be reached.
    Via(Vec<Parent>),
}

/// One route: the conditions of a rule (its action is ignored) and a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Which requests it applies to (`from`, `to`, `port`, `command`, `user`).
    pub conditions: Rule,
    /// Where they go.
    pub target: Target,
    /// How a `via` route's parents share the connections.
    pub balance: Balance,
    /// How its connections leave the server (its exit clauses).
    pub exit: Exit,
}

/// Which local address a route's connections leave from (its `source`
/// clause).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SourceAddr {
    /// No `source` clause: the server's `outgoing_address`, if set, else the
    /// system's choice.
    #[default]
    Default,
    /// `source ADDR[,ADDR...]`: one of these per connection, in turn (round
    /// robin); for each destination address, the next of its family.
    Rotate(Vec<IpAddr>),
    /// `source PREFIX random`: a random address inside this IPv6 prefix for
    /// each connection (bound with `IP_FREEBIND`: the prefix is routed to the
    /// machine, `ip -6 route add local PREFIX dev lo`, not configured
    /// address by address).
    Random(ipnet::Ipv6Net),
}

impl SourceAddr {
    /// Whether the route names a source address for destinations of this
    /// family (`ipv4`: IPv4, else IPv6); `true` without a `source` clause.
    pub fn has_family(&self, ipv4: bool) -> bool {
        match self {
            SourceAddr::Default => true,
            SourceAddr::Rotate(list) => list.iter().any(|a| a.is_ipv4() == ipv4),
            SourceAddr::Random(_) => !ipv4,
        }
    }
}

/// How a route's connections leave the server: its exit clauses, after its
/// target. The default (no clause) is the server's: `outgoing_address`, no
/// interface, no mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Exit {
    /// `source`: the local address.
    pub source: SourceAddr,
    /// `interface NAME`: the network interface the connections are bound to
    /// (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// `mark N`: the firewall mark set on them (`SO_MARK`), for policy
    /// routing.
    pub mark: Option<u32>,
}

impl Exit {
    /// Whether the route has no exit clause.
    pub fn is_default(&self) -> bool {
        *self == Exit::default()
    }

    /// The Linux capabilities a server needs for this exit, with why: `mark`
    /// needs CAP_NET_ADMIN (or CAP_NET_RAW since Linux 5.17); `interface`
    /// none on Linux 5.7 and later (an unbound socket; CAP_NET_RAW before);
    /// a `source` address not configured on the machine (IP_FREEBIND) none.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.mark.is_some() {
            out.push("mark needs CAP_NET_ADMIN (or CAP_NET_RAW on Linux 5.17 and later)");
        }
        if self.interface.is_some() {
            out.push("interface needs no capability on Linux 5.7 and later (CAP_NET_RAW before)");
        }
        out
    }
}

impl fmt::Display for Exit {
    /// The exit clauses as written, each after a space (empty for the
    /// default).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SourceAddr::Default => {}
            SourceAddr::Rotate(list) => {
                let shown: Vec<String> = list.iter().map(IpAddr::to_string).collect();
                write!(f, " source {}", shown.join(","))?;
            }
            SourceAddr::Random(net) => write!(f, " source {net} random")?,
        }
        if let Some(i) = &self.interface {
            write!(f, " interface {i}")?;
        }
        if let Some(m) = self.mark {
            write!(f, " mark {m:#x}")?;
        }
        Ok(())
    }
}

/// How the parents of one route share its connections (`balance` clause).
/// Whatever the choice, a parent that is down is skipped while another is
/// up, and the others follow the chosen one when it cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Balance {
    /// `first`: in the order given (failover). The default.
    #[default]
    First,
    /// `round-robin`: each request starts at the next parent in turn.
    RoundRobin,
    /// `least-connections`: the parent with the fewest open connections first.
    LeastConnections,
}

impl Balance {
    /// The clause's word: `first`, `round-robin`, `least-connections`.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::First => "first",
            Balance::RoundRobin => "round-robin",
            Balance::LeastConnections => "least-connections",
        }
    }
}

impl FromStr for Balance {
    type Err = ();

    fn from_str(s: &str) -> Result<Balance, ()> {
        match s {
            "first" => Ok(Balance::First),
            "round-robin" => Ok(Balance::RoundRobin),
            "least-connections" => Ok(Balance::LeastConnections),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Route {
    /// The text format, passwords included, so that it parses back to an
    /// equal route: for a config file. For a person, [`Route::redacted`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, Parent::to_url)
    }
}

impl Route {
    /// The route as text with every parent's password shown as `***`: for
    /// `--check`, the control socket and logs, never for a file.
    ///
    /// ```
    /// use socks4_acl::Policy;
    /// let p: Policy = "route to any via http://u:s3cret@127.0.0.1:3128".parse()?;
    /// let route = p.routes.routes().next().unwrap();
    /// assert_eq!(route.redacted().to_string(), "route from any to any via http://u:***@127.0.0.1:3128");
    /// assert!(route.to_string().contains("s3cret"));
    /// # Ok::<(), socks4_acl::ParseError>(())
    /// ```
    pub fn redacted(&self) -> impl fmt::Display + '_ {
        struct Redacted<'a>(&'a Route);
        impl fmt::Display for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, Parent::to_string)
            }
        }
        Redacted(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, url: fn(&Parent) -> String) -> fmt::Result {
        // The rule's own text minus its verb: "pass from ... to ...".
        let rule = self.conditions.to_string();
        let conditions = rule.strip_prefix("pass ").unwrap_or(&rule);
        write!(f, "route {conditions}")?;
        match &self.target {
            Target::Direct => f.write_str(" direct")?,
            Target::Via(parents) => {
                let urls: Vec<String> = parents.iter().map(url).collect();
                write!(f, " via {}", urls.join(", "))?;
                if self.balance != Balance::First {
                    write!(f, " balance {}", self.balance)?;
                }
            }
        }
        write!(f, "{}", self.exit)
    }
}

/// The routes, in order, each with the line it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSet {
    routes: Vec<(Route, Option<usize>)>,
}

impl RouteSet {
    /// No routes: everything goes direct.
    pub fn new() -> RouteSet {
        RouteSet::default()
    }

    /// Appends a route.
    pub fn push(&mut self, route: Route, line: Option<usize>) {
        self.routes.push((route, line));
    }

    /// The routes, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(r, _)| r)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Adds another set's routes after these.
    pub fn append(&mut self, other: RouteSet) {
        self.routes.extend(other.routes);
    }

    /// Puts another set's routes before these.
    pub fn prepend(&mut self, other: RouteSet) {
        let mine = std::mem::replace(&mut self.routes, other.routes);
        self.routes.extend(mine);
    }

    /// The first route that matches `s`: its number (from 1), its line, and
    /// the route; `None`: direct.
    pub fn find(&self, s: &Subject<'_>) -> Option<(usize, Option<usize>, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, (r, _))| r.conditions.matches(s))
            .map(|(i, (r, line))| (i + 1, *line, r))
    }

    /// The route before the destination's address is known, where the address
    /// cannot change it: `Some(None)` direct, `Some(Some(..))` that route;
    /// `None` when a route that needs the address comes first.
    pub fn find_without_address(
        &self,
        s: &Subject<'_>,
    ) -> Option<Option<(usize, Option<usize>, &Route)>> {
        for (i, (r, line)) in self.routes.iter().enumerate() {
            match r.conditions.matches_without_address(s) {
                Some(false) => continue,
                Some(true) => return Some(Some((i + 1, *line, r))),
                None => return None,
            }
        }
        Some(None)
    }
}
