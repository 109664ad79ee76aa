//! [`Event`]: what a session reports as it goes, for logging, counting and
//! publishing. The names follow the events of the POE SOCKS server this project
//! grew from (`connection`, `denied`, `rejected`, `dns_lookup`, `sock_up`,
//! `bind_up`, `sock_down`, `disconnected`).

use super::action::Destination;
use super::action::RelayStats;
use super::reason::CloseReason;
use crate::codec::{Command, ReplyCode};
use socks4_acl::{Parent, Source, Verdict};
use std::net::{IpAddr, SocketAddr};

/// What happened, for logging, counting and publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client connected (`connection`).
    Connection {
        /// The client's address.
        peer: SocketAddr,
        /// Our address the client connected to.
        local: SocketAddr,
    },
    /// The client came over TLS with a verified certificate (`cert`): its
    /// subject common name. Comes before [`Event::Request`].
    ClientCertificate {
        /// The certificate's subject common name.
        common_name: String,
    },
    /// The name an intercepted or forwarded connection's first bytes gave
    /// (its TLS SNI or HTTP Host: [`crate::sniff`]). Comes before
    /// [`Event::Request`], whose destination then shows the name.
    Sniffed {
        /// The host name.
        name: String,
        /// Where it was found.
        kind: crate::sniff::NameKind,
        /// The destination the listener gave (the original address, or a
        /// forward's target).
        dest: Destination,
    },
    /// A complete request arrived.
    Request {
        /// CONNECT or BIND.
        command: Command,
        /// The destination as the client gave it (`host:port` for SOCKS4a).
        dest: String,
        /// The request's USERID.
        user_id: Vec<u8>,
    },
    /// The access policy decided the request, pass or block: the verdict names
    /// the deciding list or rule and carries the rule's options (`log`).
    Decided {
        /// The decision.
        verdict: Verdict,
    },
    /// A rule with `notify` decided the request: the administrator is to be
    /// told (raised with [`Event::Decided`], before the reply or the
    /// connect).
    Notify {
        /// The client's address.
        peer: SocketAddr,
        /// The code a denied request gets (91–93); `None` when the rule
        /// passed the request.
        reply: Option<ReplyCode>,
        /// The deciding rule's number and line.
        source: Source,
        /// The deciding rule, as text.
        rule: String,
        /// CONNECT or BIND.
        command: Command,
        /// The destination as the client gave it (`host:port` for SOCKS4a).
        dest: String,
        /// The request's USERID, as sent.
        user_id: Vec<u8>,
    },
    /// The access policy refused the client (`denied`).
    Denied {
        /// The client's address.
        peer: SocketAddr,
        /// What refused it.
        source: Source,
        /// Whether the deciding rule asks for a log line.
        log: bool,
    },
    /// The request was refused or failed (`rejected`): the reply code sent.
    Rejected {
        /// 91, 92 or 93.
        code: ReplyCode,
        /// Why.
        reason: CloseReason,
    },
    /// A SOCKS4a name resolved (`dns_lookup`).
    DnsLookup {
        /// The name.
        host: String,
        /// Its addresses, in resolver order.
        addrs: Vec<IpAddr>,
    },
    /// The rest of a SOCKS4a name's answer (the other family's addresses)
    /// came after connecting started (`dns_late`): those the policy passes
    /// join the race.
    LateAddresses {
        /// The name.
        host: String,
        /// The addresses that came late, in resolver order (before the
        /// policy).
        addrs: Vec<IpAddr>,
    },
    /// identd answered, or did not (`None`), in `log` or `require` mode.
    Ident {
        /// The answer.
        outcome: Option<socks4_ident::Outcome>,
    },
    /// A connection to the application server is up (`sock_up`): the outbound
    /// connection of a CONNECT, or the inbound one of a BIND.
    SockUp {
        /// The application server's address.
        dest: SocketAddr,
        /// The policy rule that passed the request.
        source: Source,
    },
    /// A CONNECT's outbound connection is up after `attempts` attempts (the
    /// addresses raced, or the parents tried). Comes right before
    /// [`Event::Routed`] or [`Event::SockUp`].
    Attempts {
        /// How many attempts were started, the winner's included.
        attempts: u32,
    },
    /// The connection goes through a parent proxy (a route's `via`): the
    /// parent granted the request. Comes right before [`Event::SockUp`].
    Routed {
        /// The parent.
        parent: Parent,
        /// What was asked of it.
        dest: Destination,
    },
    /// A BIND listener is up (`bind_up`).
    BindUp {
        /// The listener's address.
        listen: SocketAddr,
    },
    /// The relay ended (`sock_down`).
    SockDown {
        /// Bytes moved each way.
        stats: RelayStats,
    },
    /// The session is over (`disconnected`); always the last event.
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
}
