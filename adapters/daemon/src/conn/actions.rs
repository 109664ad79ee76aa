//! The actions a session asks its driver for, one method each: send a reply,
//! admit the request under its client's limits, resolve a name, ask the
//! client's identd, connect (directly, with TLS for `forward_tls`, or through
//! a parent), and BIND's listen and accept. Each reports its outcome to the
//! session; a pending one is raced against the session's deadline and the
//! client's hang-up ([`Connection::pending`]).

use crate::conn::connection::Connection;
use crate::conn::{ident, parent, resolve};
use crate::limits::client_table::ClientKey;
use crate::limits::meter::Meter;
use crate::runtime::endpoint::{tls_failure_of, Endpoint};
use crate::runtime::{socket, Runtime};
use socks4_acl::{Parent, Verdict};
use socks4_proto::server::{Action, ActionOutcome, Destination};
use socks4_proto::{Command, Reply};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;

impl<R: Runtime> Connection<R> {
    /// Performs one action (not `Close` or `StartRelay`: `run` does those) and
    /// reports its outcome.
    pub(super) async fn perform(&mut self, action: Action) {
        match action {
            Action::SendReply(reply) => self.send_reply(reply).await,
            Action::Admit { command, verdict } => self.admit(command, &verdict),
            Action::Resolve { host, port: _ } => self.resolve(host).await,
            Action::IdentQuery { to, query } => self.ident(to, query).await,
            Action::Connect(addr) => self.connect(addr).await,
            Action::ConnectVia {
                parent,
                dest,
                user_id,
            } => self.connect_via(parent, dest, user_id).await,
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

    /// Counts the request under its client's limits (rate, bandwidth, quota;
    /// BIND listeners), as the verdict's rule says.
    fn admit(&mut self, command: Command, verdict: &Verdict) {
        let key = ClientKey::of(self.session.peer().ip());
        let clients = self.daemon.clients().clone();
        let admitted = clients
            .admit(key, self.rt.now(), verdict)
            .and_then(|(ticket, meter)| {
                if command == Command::Bind {
                    self.bind_counted = Some(clients.open_bind(key)?);
                }
                self.rate_ticket = ticket;
                self.meter = Some(meter).filter(Meter::is_limited);
                Ok(())
            });
        self.outcome(ActionOutcome::Admitted(admitted));
    }

    async fn resolve(&mut self, host: String) {
        let (rt, lookups) = (self.rt.clone(), self.daemon.lookups().clone());
        match self
            .pending(Box::pin(resolve::resolve(&rt, &lookups, host)))
            .await
        {
            Ok(r) => self.outcome(ActionOutcome::Resolved(r)),
            Err(why) => self.interrupted(why),
        }
    }

    async fn ident(&mut self, to: SocketAddr, query: socks4_ident::Query) {
        let (rt, from) = (self.rt.clone(), self.session.local().ip());
        match self
            .pending(Box::pin(ident::exchange(&rt, from, to, query)))
            .await
        {
            Ok(r) => self.outcome(ActionOutcome::Ident(r.map_err(|e| e.kind()))),
            Err(why) => self.interrupted(why),
        }
    }

    /// Connects to the destination, with TLS for `forward_tls`.
    async fn connect(&mut self, addr: SocketAddr) {
        let rt = self.rt.clone();
        let from = socket::outgoing_for(&self.daemon.current().outgoing, addr);
        let tls = self
            .dest_tls
            .clone()
            .map(|host| (host, self.tls.client.clone()));
        let connect = async move {
            let stream = socket::connect(&rt, addr, from).await?;
            let Some((host, config)) = tls else {
                return Ok(Endpoint::Plain(stream));
            };
            let config = config
                .ok_or_else(|| io::Error::new(ErrorKind::Unsupported, "no TLS configuration"))?;
            let mut tls = Endpoint::tls_client(stream, config, &host)?;
            tls.handshake().await?;
            Ok::<_, io::Error>(tls)
        };
        match self.pending(Box::pin(connect)).await {
            Ok(Ok(other)) => {
                self.other = Some(other);
                self.outcome(ActionOutcome::Connected(Ok(())));
            }
            Ok(Err(e)) => {
                if let Some(kind) = tls_failure_of(&e) {
                    let counters = &self.daemon.books().counters;
                    counters.tls_failure("destination", kind);
                    tracing::info!(target: "socks4d", conn = self.observer.id(), dest = %addr, error = %e, "TLS with the destination failed");
                }
                self.outcome(ActionOutcome::Connected(Err(e.kind())))
            }
            Err(why) => self.interrupted(why),
        }
    }

    /// Connects to the destination through a parent proxy, with TLS inside
    /// the tunnel for `forward_tls`.
    async fn connect_via(&mut self, parent: Parent, dest: Destination, user_id: Vec<u8>) {
        let rt = self.rt.clone();
        let lookups = self.daemon.lookups().clone();
        let outgoing = self.daemon.current().outgoing.clone();
        let how = parent::Reach {
            outgoing: &outgoing,
            lookups: &lookups,
            tls: self.tls.client.clone(),
        };
        let dest_tls = self.dest_tls.clone();
        let tls = self.tls.client.clone();
        let via = async {
            let (tunnel, leftover) =
                parent::connect_via(&rt, &parent, &dest, &user_id, how).await?;
            match dest_tls {
                None => Ok((tunnel, leftover)),
                Some(host) => parent::tls_through(tunnel, &leftover, &host, tls)
                    .await
                    .map(|tls| (tls, Vec::new())),
            }
        };
        match self.pending(Box::pin(via)).await {
            Ok(Ok((tunnel, leftover))) => {
                self.other = Some(tunnel);
                self.dest_leftover = leftover;
                self.outcome(ActionOutcome::Connected(Ok(())));
            }
            Ok(Err(e)) => {
                if let Some(kind) = tls_failure_of(&e) {
                    let side = if parent.kind.tls() {
                        "parent"
                    } else {
                        "destination"
                    };
                    self.daemon.books().counters.tls_failure(side, kind);
                }
                tracing::info!(target: "socks4d", conn = self.observer.id(), parent = %parent, error = %e, "parent failed");
                self.outcome(ActionOutcome::Connected(Err(e.kind())));
            }
            Err(why) => self.interrupted(why),
        }
    }

    /// BIND's listener.
    fn bind(&mut self, addr: SocketAddr) {
        let bound = socket::listen(addr).and_then(|l| {
            let at = socket::local_addr(&l)?;
            Ok((self.rt.listener(l)?, at))
        });
        match bound {
            Ok((listener, at)) => {
                self.bind_listener = Some(listener);
                self.outcome(ActionOutcome::Bound(Ok(at)));
            }
            Err(e) => self.outcome(ActionOutcome::Bound(Err(e.kind()))),
        }
    }

    /// BIND's one inbound connection: the listener closes after it.
    async fn accept(&mut self) {
        let Some(listener) = self.bind_listener.take() else {
            return self.outcome(ActionOutcome::Accepted(Err(ErrorKind::NotConnected)));
        };
        let rt = self.rt.clone();
        let accepted = self.pending(Box::pin(rt.accept(&listener))).await;
        drop(listener);
        self.bind_counted = None;
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
