//! The actions a session asks its driver for, one method each: send a reply,
//! admit the request under its client's limits, resolve a name, ask the
//! client's identd, connect (directly, racing the addresses, with TLS for
//! `forward_tls`, or through one of a route's parents), and BIND's listen and accept. Each reports its outcome to the
//! session; a pending one is raced against the session's deadline and the
//! client's hang-up ([`Connection::pending`]).

use crate::config::options::OnError;
use crate::conn::connection::Connection;
use crate::conn::exit::Exit;
use crate::conn::race::More;
use crate::conn::{dial, ident, parent, resolve};
use crate::daemon::fleet_link::Asked;
use crate::limits::client_table::ClientKey;
use crate::limits::meter::Meter;
use crate::runtime::endpoint::{tls_failure_of, Endpoint};
use crate::runtime::{socket, Runtime};
use socks4_acl::limit::ConnectionRate;
use socks4_acl::{Balance, Parent, Verdict};
use socks4_proto::server::{Action, ActionOutcome, Hop, Limit};
use socks4_proto::{Command, Reply};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;

impl<R: Runtime> Connection<R> {
    /// Performs one action (not `Close` or `StartRelay`: `run` does those) and
    /// reports its outcome.
    pub(super) async fn perform(&mut self, action: Action) {
        use crate::observe::conns::ConnState;
        let phase = match &action {
            Action::Resolve { .. } => Some(ConnState::Resolving),
            Action::Connect(_) | Action::ConnectVia { .. } | Action::Accept => {
                Some(ConnState::Connecting)
            }
            _ => None,
        };
        if let (Some(phase), Some(entry)) = (phase, self.observer.entry()) {
            entry.set_state(phase);
        }
        match action {
            Action::SendReply(reply) => self.send_reply(reply).await,
            Action::Admit { command, verdict } => self.admit(command, &verdict).await,
            Action::Resolve { host, port: _ } => self.resolve(host).await,
            Action::IdentQuery { to, query } => self.ident(to, query).await,
            Action::Connect(addrs) => self.connect(addrs).await,
            // Asked for only while a `Connect` is pending, and handed to its
            // race there (`Connection::pending`); one that comes after the
            // race has ended has nothing to join.
            Action::ConnectMore(_) => {}
            Action::ConnectVia { hops, balance } => self.connect_via(hops, balance).await,
            Action::Bind(addr) => self.bind(addr),
            Action::Accept => self.accept().await,
            // `run` handles these two itself and never passes them here.
            Action::StartRelay { .. } | Action::Close(_) => {}
            other => {
                tracing::error!(target: "socks4d", conn = self.observer.id(), action = ?other, "action this driver does not know");
                self.abandon();
            }
        }
    }

    async fn send_reply(&mut self, reply: Reply) {
        if self.client_error.is_none() {
            if let Err(e) = self.client.write_all(&reply.to_bytes()).await {
                self.client_error = Some(e.kind());
                self.abandon();
            }
        }
    }

    /// The client this connection's limits count under (`[limits] key`):
    /// its verified certificate's name or IDENT-verified user when the key
    /// says so and it has one, else its address.
    pub(super) fn limit_key(&self) -> ClientKey {
        ClientKey::choose(
            self.daemon.clients().limits().key,
            self.session.peer().ip(),
            self.session.client_cert(),
            self.session.ident_user(),
        )
    }

    /// Counts the request under its client's limits (its connection moved
    /// to the identity `[limits] key` names; rate, bandwidth, quota; BIND
    /// listeners), as the verdict's rule says.
    async fn admit(&mut self, command: Command, verdict: &Verdict) {
        let key = self.limit_key();
        self.observer.set_client(key.clone());
        let clients = self.daemon.clients().clone();
        let moved = match self.counted.as_mut() {
            Some(counted) => counted.rekey(key.clone()),
            None => Ok(()),
        };
        let mut admitted = moved.and_then(|()| clients.admit(key.clone(), self.rt.now(), verdict));
        // With a fleet, a request the local window grants is counted in
        // the fleet's window too.
        if let (Ok((Some(_), _)), Some(rate)) = (&admitted, clients.limits().rate) {
            let (rt, daemon) = (self.rt.clone(), self.daemon.clone());
            if let Err(limit) = fleet_rate(&rt, &daemon, key.clone(), rate).await {
                admitted = Err(limit);
            }
        }
        let admitted = admitted.and_then(|(ticket, meter)| {
            if command == Command::Bind {
                self.before_relay().bind_counted = Some(clients.open_bind(key)?);
            }
            if ticket.is_some() {
                self.before_relay().rate_ticket = ticket;
            }
            self.meter = Some(meter).filter(Meter::is_limited);
            Ok(())
        });
        self.outcome(ActionOutcome::Admitted(admitted));
    }

    /// Resolves a name: first places among its client's lookups
    /// (`max_lookups_per_client`; one per question asked at once: AAAA and
    /// A are two), then among the server's. The answer
    /// is whole, or its first part (RFC 8305 §3), the rest kept for the
    /// session ([`BeforeRelay::late`](super::connection::BeforeRelay::late)).
    async fn resolve(&mut self, host: String) {
        let (rt, daemon, conn) = (self.rt.clone(), self.daemon.clone(), self.observer.id());
        let clients = self.daemon.clients().clone();
        let key = self.limit_key();
        let questions = self.daemon.settings().outbound.questions_per_lookup();
        let lookup = async move {
            let mine = clients.lookups(key, questions).await;
            resolve::resolve(&rt, &daemon, &host, conn, mine).await
        };
        match self.pending(Box::pin(lookup)).await {
            Ok(Ok(resolve::Resolution {
                addrs,
                rest: Some(rest),
            })) => {
                let now = self.rt.now();
                self.before_relay().late = Some((rest, now));
                self.outcome(ActionOutcome::ResolvedFirst(addrs));
            }
            Ok(r) => self.outcome(ActionOutcome::Resolved(r.map(|r| r.addrs))),
            Err(why) => self.interrupted(why),
        }
    }

    async fn ident(&mut self, to: SocketAddr, query: socks4_ident::Query) {
        let (rt, from) = (self.rt.clone(), self.session.local().ip());
        let ours = self.daemon.own_sockets().clone();
        match self
            .pending(Box::pin(ident::exchange(&rt, from, to, query, &ours)))
            .await
        {
            Ok(r) => self.outcome(ActionOutcome::Ident(r.map_err(|e| e.kind()))),
            Err(why) => self.interrupted(why),
        }
    }

    /// Connects to one of the destination's addresses (Happy Eyeballs), with
    /// TLS for `forward_tls`. While the rest of the name's answer is to come,
    /// the addresses of it the session passes join the race
    /// ([`BeforeRelay::joining`](super::connection::BeforeRelay::joining)).
    async fn connect(&mut self, addrs: Vec<SocketAddr>) {
        let (rt, daemon) = (self.rt.clone(), self.daemon.clone());
        let timeouts = self.session.config().timeouts;
        let dest_tls = self.before_relay.as_ref().and_then(|b| b.dest_tls.clone());
        let tls = dest_tls.map(|host| (host, self.tls.client.clone()));
        let more = self.waits_late().then(|| {
            let (tx, rx) = async_channel::bounded(1);
            self.before_relay().joining = Some(tx);
            Box::pin(async move { rx.recv().await.unwrap_or_default() }) as More<'static, _>
        });
        let exit = Exit::choose(&daemon, self.session.exit());
        let connect = async move {
            let (stream, mark, won) =
                dial::connect_any(&rt, &daemon, addrs, more, &timeouts, &exit).await?;
            let Some((host, config)) = tls else {
                return Ok((Endpoint::Plain(stream), mark, won));
            };
            let config = config
                .ok_or_else(|| io::Error::new(ErrorKind::Unsupported, "no TLS configuration"))?;
            let mut tls = Endpoint::tls_client(stream, config, &host)?;
            tls.handshake().await?;
            Ok::<_, io::Error>((tls, mark, won))
        };
        let connected = self.pending(Box::pin(connect)).await;
        // Whatever is still to come is of no use now.
        if let Some(before) = self.before_relay.as_deref_mut() {
            before.late = None;
            before.joining = None;
        }
        match connected {
            Ok(Ok((other, mark, won))) => {
                self.other = Some(other);
                self.other_mark = Some(mark);
                self.outcome(ActionOutcome::Connected(Ok(won)));
            }
            Ok(Err(e)) => {
                if let Some(kind) = tls_failure_of(&e) {
                    let counters = &self.daemon.books().counters;
                    counters.tls_failure("destination", kind);
                    tracing::info!(target: "socks4d", conn = self.observer.id(), error = %e, "TLS with the destination failed");
                }
                self.outcome(ActionOutcome::Connected(Err(e.kind())))
            }
            Err(why) => self.interrupted(why),
        }
    }

    /// Connects to the destination through one of a route's parents, with
    /// TLS inside the tunnel for `forward_tls`.
    async fn connect_via(&mut self, hops: Vec<Hop>, balance: Balance) {
        let (rt, daemon) = (self.rt.clone(), self.daemon.clone());
        let exit = Exit::choose(&daemon, self.session.exit());
        let how = parent::Reach {
            daemon: &daemon,
            tls: self.tls.client.clone(),
            conn: self.observer.id(),
            exit: &exit,
        };
        let dest_tls = self.before_relay.as_ref().and_then(|b| b.dest_tls.clone());
        let tls = self.tls.client.clone();
        // An error, and the parent whose tunnel it came through when it was
        // TLS with the destination that failed.
        let via = async {
            let mut tunnel = dial::connect_parents(&rt, &hops, balance, how)
                .await
                .map_err(|e| (e, None))?;
            if let Some(host) = dest_tls {
                let through = hops[tunnel.won.index].parent.clone();
                let early = std::mem::take(&mut tunnel.leftover);
                tunnel.endpoint = parent::tls_through(tunnel.endpoint, &early, &host, tls)
                    .await
                    .map_err(|e| (e, Some(through)))?;
            }
            Ok::<_, (io::Error, Option<Parent>)>(tunnel)
        };
        match self.pending(Box::pin(via)).await {
            Ok(Ok(tunnel)) => {
                self.other = Some(tunnel.endpoint);
                self.other_mark = Some(tunnel.mark);
                if !tunnel.leftover.is_empty() {
                    self.before_relay().dest_leftover = tunnel.leftover;
                }
                self.parent_open = Some(tunnel.open);
                self.outcome(ActionOutcome::Connected(Ok(tunnel.won)));
            }
            Ok(Err((e, None))) => self.parent_failed(&e, &hops),
            Ok(Err((e, Some(through)))) => {
                if let Some(kind) = tls_failure_of(&e) {
                    let counters = &self.daemon.books().counters;
                    counters.tls_failure("destination", kind);
                }
                tracing::info!(target: "socks4d", conn = self.observer.id(), parent = %through, error = %e, "TLS with the destination through the parent failed");
                self.observer.via_parent(&through);
                self.outcome(ActionOutcome::Connected(Err(e.kind())));
            }
            Err(why) => self.interrupted(why),
        }
    }

    /// No parent of the route gave a tunnel: `e` is about the last one tried,
    /// and names it first ("PARENT: why"), so that the closed line names it
    /// and its answer.
    fn parent_failed(&mut self, e: &io::Error, hops: &[Hop]) {
        if let Some(kind) = tls_failure_of(e) {
            self.daemon.books().counters.tls_failure("parent", kind);
        }
        tracing::info!(target: "socks4d", conn = self.observer.id(), error = %e, "parent failed");
        let text = e.to_string();
        let named = hops.iter().rev().find_map(|h| {
            let why = text.strip_prefix(&format!("{}: ", h.parent))?;
            Some((h.parent.clone(), why.to_owned()))
        });
        if let Some((parent, why)) = named {
            self.observer.via_parent(&parent);
            self.observer.parent_failed(why);
        }
        self.outcome(ActionOutcome::Connected(Err(e.kind())));
    }

    /// BIND's listener.
    fn bind(&mut self, addr: SocketAddr) {
        let bound = socket::listen(addr).and_then(|l| {
            let at = socket::local_addr(&l)?;
            Ok((self.rt.listener(l)?, at))
        });
        match bound {
            Ok((listener, at)) => {
                self.before_relay().bind_listener = Some(listener);
                self.outcome(ActionOutcome::Bound(Ok(at)));
            }
            Err(e) => self.outcome(ActionOutcome::Bound(Err(e.kind()))),
        }
    }

    /// BIND's one inbound connection: the listener closes after it.
    async fn accept(&mut self) {
        let Some(listener) = self.before_relay().bind_listener.take() else {
            return self.outcome(ActionOutcome::Accepted(Err(ErrorKind::NotConnected)));
        };
        let rt = self.rt.clone();
        let accepted = self.pending(Box::pin(rt.accept(&listener))).await;
        drop(listener);
        self.before_relay().bind_counted = None;
        match accepted {
            Ok(Ok((stream, from))) => {
                self.other = Some(Endpoint::Plain(stream));
                self.outcome(ActionOutcome::Accepted(Ok(from)));
            }
            Ok(Err(e)) => self.outcome(ActionOutcome::Accepted(Err(e.kind()))),
            Err(why) => self.interrupted(why),
        }
    }
}

/// The fleet's answer on one more request of `key` under `rate`:
/// granted (at once when far below the limit: granted ahead), refused, or (Redis down or slower than `[fleet] timeout`)
/// as `[fleet] on_error` says. Without a fleet, granted.
async fn fleet_rate<R: Runtime>(
    rt: &R,
    daemon: &crate::daemon::Daemon,
    key: ClientKey,
    rate: ConnectionRate,
) -> Result<(), Limit> {
    let Some(fleet) = daemon.fleet() else {
        return Ok(());
    };
    let deadline = crate::runtime::later(rt.now(), fleet.settings.timeout);
    let answer = match fleet.ask_rate(key.to_string(), rate, rt.now()) {
        Some(Asked::Ahead) => return Ok(()),
        Some(Asked::Wait(rx)) => crate::runtime::before(rt, Some(deadline), rx.recv()).await,
        None => Some(Err(async_channel::RecvError)),
    };
    match answer {
        Some(Ok(true)) => Ok(()),
        Some(Ok(false)) => Err(Limit::Rate),
        failed => {
            if failed.is_none() {
                fleet.count("rate", "timeout");
            }
            match fleet.settings.on_error {
                OnError::Local => Ok(()),
                OnError::Refuse => Err(Limit::Rate),
            }
        }
    }
}
