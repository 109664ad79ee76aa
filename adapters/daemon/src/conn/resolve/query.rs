//! One DNS question asked of the nameservers, over the runtime seam: UDP
//! from a fresh socket (a random source port) with a random query id
//! (`ring`'s system random), the answer checked against both and against the
//! question, again over TCP when it comes back truncated; the next nameserver
//! on a timeout, SERVFAIL or REFUSED, `attempts` rounds. Messages are
//! encoded and decoded by `hickory-proto`. The nameservers come from
//! `[resolver] nameservers` or /etc/resolv.conf (with its `options timeout`,
//! `attempts`, `ndots` and its search list), read again for each question
//! that reaches the network.

use crate::config::outbound::{Outbound, RESOLV_CONF};
use crate::runtime::{before, read, socket, write_all, Runtime};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType as Rt};
use socks4_proto::dns_cache::{Answer, RecordType};
use socks4_proto::server::ResolveError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The largest UDP answer read (without EDNS a server sends at most 512
/// bytes and sets TC past it).
const UDP_ANSWER: usize = 4096;
/// The largest TCP answer read.
const TCP_ANSWER: usize = 65_535;
/// resolv.conf's defaults (resolv.conf(5)).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how questions go.
#[derive(Debug, Clone)]
pub(crate) struct Servers {
    /// The nameservers, in order.
    pub(crate) addrs: Vec<SocketAddr>,
    /// How long each nameserver gets.
    pub(crate) timeout: Duration,
    /// Rounds over the nameservers.
    pub(crate) attempts: u32,
    /// Names with fewer dots are tried with the search list first.
    pub(crate) ndots: usize,
    /// The search list.
    pub(crate) search: Vec<String>,
}

/// The nameservers: `[resolver] nameservers`, or /etc/resolv.conf's (its
/// options apply either way; without the file, 127.0.0.1:53).
pub(crate) fn servers(outbound: &Outbound) -> Servers {
    let conf = std::fs::read(RESOLV_CONF)
        .ok()
        .and_then(|text| resolv_conf::Config::parse(text).ok());
    let mut s = Servers {
        addrs: vec![SocketAddr::from(([127, 0, 0, 1], 53))],
        timeout: DEFAULT_TIMEOUT,
        attempts: 2,
        ndots: 1,
        search: Vec::new(),
    };
    if let Some(c) = &conf {
        s.timeout = Duration::from_secs(u64::from(c.timeout.clamp(1, 30)));
        s.attempts = c.attempts.clamp(1, 5);
        s.ndots = c.ndots.min(15) as usize;
        s.search = c.get_search().cloned().unwrap_or_default();
        if !c.nameservers.is_empty() {
            s.addrs = c
                .nameservers
                .iter()
                .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
                .collect();
        }
    }
    if let Some(addrs) = &outbound.nameservers {
        // Configured servers: the search list is the file's business only
        // when the file's servers are used.
        s.addrs = addrs.clone();
        s.search.clear();
    }
    s
}

/// The names to ask, in order, for `name` (resolv.conf's `ndots` and
/// `search`): as given first when it has enough dots (or ends with one).
pub(crate) fn candidates(name: &str, servers: &Servers) -> Vec<String> {
    if name.ends_with('.') {
        return vec![name.to_owned()];
    }
    let dots = name.matches('.').count();
    let searched = servers.search.iter().map(|d| format!("{name}.{d}"));
    if dots >= servers.ndots {
        std::iter::once(name.to_owned()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_owned())).collect()
    }
}

/// A nameserver's answer: what it says, and how long it may be kept
/// (`None` for a negative answer without an SOA: not to be cached).
pub(crate) type Said = (Answer, Option<Duration>);

/// Asks `name` (a full name) of type `rtype`: the first usable answer from
/// the nameservers, or why none came.
pub(crate) async fn ask<R: Runtime>(
    rt: &R,
    servers: &Servers,
    name: &str,
    rtype: RecordType,
) -> Result<Said, ResolveError> {
    let qname = Name::from_ascii(name).map_err(|_| ResolveError::NoSuchHost)?;
    let mut last = ResolveError::TemporaryFailure;
    for _ in 0..servers.attempts {
        for &server in &servers.addrs {
            match exchange(rt, server, &qname, rtype, servers.timeout).await {
                Ok(Some(said)) => return Ok(said),
                Ok(None) => last = ResolveError::Failed,
                Err(_) => last = ResolveError::TemporaryFailure,
            }
        }
    }
    Err(last)
}

fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // The system's random source cannot fail on Linux once the kernel's pool
    // is ready; a zero id is still a valid one.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    u16::from_be_bytes(id)
}

fn question(id: u16, qname: &Name, rtype: RecordType) -> io::Result<Vec<u8>> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    let rt = match rtype {
        RecordType::A => Rt::A,
        RecordType::Aaaa => Rt::AAAA,
    };
    msg.add_query(Query::query(qname.clone(), rt));
    msg.to_vec().map_err(io::Error::other)
}

/// One exchange with one server: `Ok(Some)` an answer to keep, `Ok(None)` a
/// server that failed (SERVFAIL, REFUSED, garbage), `Err` no answer in time.
async fn exchange<R: Runtime>(
    rt: &R,
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> io::Result<Option<Said>> {
    let id = random_id();
    let bytes = question(id, qname, rtype)?;
    let deadline = rt.now() + timeout;
    let udp = async {
        let sock = socket::datagram_to(rt, server)?;
        // One datagram: a connected UDP socket sends it whole or not at all.
        write_all(&sock, &bytes).await?;
        let mut buf = vec![0u8; UDP_ANSWER];
        loop {
            let n = read(&sock, &mut buf).await?;
            // Anything but the answer to this question is ignored (a late
            // answer to an earlier one, a forgery without the id).
            if let Some(msg) = matching(&buf[..n], id, qname, rtype) {
                return Ok::<_, io::Error>(msg);
            }
        }
    };
    let mut msg = before(rt, Some(deadline), udp)
        .await
        .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))??;
    if msg.metadata.truncation {
        let tcp = tcp_exchange(rt, server, &bytes, id, qname, rtype);
        msg = before(rt, Some(deadline + timeout), tcp)
            .await
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))??;
    }
    Ok(interpret(&msg, rtype))
}

async fn tcp_exchange<R: Runtime>(
    rt: &R,
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    qname: &Name,
    rtype: RecordType,
) -> io::Result<Message> {
    let stream = socket::connect(rt, server, &socket::Egress::default()).await?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    write_all(&stream, &framed).await?;
    let mut got: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        if got.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([got[0], got[1]]));
            if got.len() >= 2 + len {
                return matching(&got[2..2 + len], id, qname, rtype)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData));
            }
        }
        let n = read(&stream, &mut buf).await?;
        if n == 0 || got.len() + n > TCP_ANSWER + 2 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// The message in `bytes` if it answers this very question.
fn matching(bytes: &[u8], id: u16, qname: &Name, rtype: RecordType) -> Option<Message> {
    let msg = Message::from_vec(bytes).ok()?;
    let want = match rtype {
        RecordType::A => Rt::A,
        RecordType::Aaaa => Rt::AAAA,
    };
    let q = msg.queries.first()?;
    let ok = msg.metadata.id == id
        && msg.metadata.message_type == MessageType::Response
        && q.name() == qname
        && q.query_type() == want;
    ok.then_some(msg)
}

/// What a response says: addresses (kept for the smallest TTL of the
/// answer's records), NXDOMAIN or NODATA (kept for the SOA's negative TTL,
/// RFC 2308 §5, or not at all without one), or `None` for a failure.
fn interpret(msg: &Message, rtype: RecordType) -> Option<Said> {
    let negative_ttl = || {
        msg.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(Duration::from_secs(u64::from(r.ttl.min(soa.minimum)))),
            _ => None,
        })
    };
    match msg.metadata.response_code {
        ResponseCode::NoError => {
            let addrs: Vec<IpAddr> = msg
                .answers
                .iter()
                .filter_map(|r| match (&r.data, rtype) {
                    (RData::A(a), RecordType::A) => Some(IpAddr::V4(a.0)),
                    (RData::AAAA(a), RecordType::Aaaa) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            if addrs.is_empty() {
                return Some((Answer::NoData, negative_ttl()));
            }
            let ttl = msg.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
            Some((
                Answer::Addrs(addrs),
                Some(Duration::from_secs(u64::from(ttl))),
            ))
        }
        ResponseCode::NXDomain => Some((Answer::NoName, negative_ttl())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(ndots: usize, search: &[&str]) -> Servers {
        Servers {
            addrs: vec![],
            timeout: DEFAULT_TIMEOUT,
            attempts: 1,
            ndots,
            search: search.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn search_list_and_ndots() {
        let s = servers(1, &["corp.example"]);
        assert_eq!(candidates("db", &s), ["db.corp.example", "db"]);
        assert_eq!(candidates("a.b", &s), ["a.b", "a.b.corp.example"]);
        assert_eq!(candidates("a.b.", &s), ["a.b."]);
    }

    #[test]
    fn answers_are_matched_and_read() {
        let name = Name::from_ascii("a.example.").unwrap();
        let q = question(7, &name, RecordType::A).unwrap();
        assert!(
            matching(&q, 7, &name, RecordType::A).is_none(),
            "a query is no answer"
        );
        let mut r = Message::from_vec(&q).unwrap();
        r.metadata.message_type = MessageType::Response;
        r.add_answer(hickory_proto::rr::Record::from_rdata(
            name.clone(),
            30,
            RData::A(hickory_proto::rr::rdata::A([192, 0, 2, 1].into())),
        ));
        let bytes = r.to_vec().unwrap();
        assert!(
            matching(&bytes, 8, &name, RecordType::A).is_none(),
            "another id"
        );
        assert!(
            matching(&bytes, 7, &name, RecordType::Aaaa).is_none(),
            "another type"
        );
        let m = matching(&bytes, 7, &name, RecordType::A).unwrap();
        assert_eq!(
            interpret(&m, RecordType::A),
            Some((
                Answer::Addrs(vec!["192.0.2.1".parse().unwrap()]),
                Some(Duration::from_secs(30))
            ))
        );
        r.answers.clear();
        r.metadata.response_code = ResponseCode::NXDomain;
        let m = Message::from_vec(&r.to_vec().unwrap()).unwrap();
        assert_eq!(
            interpret(&m, RecordType::A),
            Some((Answer::NoName, None)),
            "no SOA: not kept"
        );
    }
}
