//! Runs a [`Race`] (socks4-proto's Happy Eyeballs machine) over real
//! attempts: each attempt is a future the caller makes for a candidate; the
//! machine says when to start one and when one has run out of time; the
//! first to succeed wins and every other is dropped (its socket closed).
//! Candidates that come late (the other family's addresses, RFC 8305 §3)
//! join the race in progress. What happened to each attempt is reported,
//! for metrics and parent health.

use crate::runtime::Runtime;
use socks4_proto::eyeballs::{Race, RaceAction, RaceConfig, RaceOutcome};
use socks4_proto::server::Won;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// It connected first.
    Won,
    /// It failed.
    Failed(io::Error),
    /// Its own deadline passed.
    TimedOut,
    /// Another won while it was still trying: closed.
    Lost,
}

impl AttemptEnd {
    /// The metrics label: `won`, `error`, `timeout`, `lost`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            AttemptEnd::Won => "won",
            AttemptEnd::Failed(_) => "error",
            AttemptEnd::TimedOut => "timeout",
            AttemptEnd::Lost => "lost",
        }
    }
}

/// A race's result: the winner's value and index, or the last error; how
/// each started attempt ended, by candidate index; and every candidate, the
/// late ones included, in index order.
pub(crate) struct Raced<C, T> {
    pub(crate) result: io::Result<(T, Won)>,
    pub(crate) attempts: Vec<(usize, AttemptEnd)>,
    pub(crate) candidates: Vec<C>,
}

type Attempt<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;
type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Candidates still to come, once (none: no more will).
pub(crate) type More<'a, C> = Pin<Box<dyn Future<Output = Vec<C>> + Send + 'a>>;

/// A race in progress: the machine, the candidates, the attempts running,
/// and its timer.
struct Racer<'a, R, C, T, F> {
    rt: R,
    machine: Race,
    candidates: Vec<C>,
    more: Option<More<'a, C>>,
    start: F,
    running: Vec<(usize, Attempt<'a, T>)>,
    ends: Vec<(usize, AttemptEnd)>,
    errors: Vec<(usize, io::Error)>,
    timer: Option<(Instant, Sleep<'a>)>,
    winner: Option<(usize, T)>,
}

impl<'a, R: Runtime, C, T, F: FnMut(usize, &C) -> Attempt<'a, T>> Racer<'a, R, C, T, F> {
    /// Polls for late candidates; true when they came (or none will).
    fn poll_more(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(more) = self.more.as_mut() else {
            return false;
        };
        let Poll::Ready(late) = more.as_mut().poll(cx) else {
            return false;
        };
        self.more = None;
        let now = self.rt.now();
        self.machine.add(late.len(), now);
        self.candidates.extend(late);
        self.machine.no_more(now);
        true
    }

    /// Polls the attempts; true when one ended (the machine has news).
    fn poll_attempts(&mut self, cx: &mut Context<'_>) -> bool {
        let mut k = 0;
        let mut progressed = false;
        while k < self.running.len() {
            let i = self.running[k].0;
            match self.running[k].1.as_mut().poll(cx) {
                Poll::Pending => k += 1,
                Poll::Ready(Ok(v)) => {
                    drop(self.running.remove(k));
                    self.machine.handle_connected(i);
                    self.winner = Some((i, v));
                    return true;
                }
                Poll::Ready(Err(e)) => {
                    drop(self.running.remove(k));
                    self.machine.handle_failed(i, e.kind(), self.rt.now());
                    self.errors.push((i, e));
                    progressed = true;
                }
            }
        }
        progressed
    }

    /// One step: what the machine asks, the attempts, the timer.
    fn poll_race(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            while let Some(action) = self.machine.poll_action() {
                match action {
                    RaceAction::Start(i) => {
                        let attempt = (self.start)(i, &self.candidates[i]);
                        self.running.push((i, attempt));
                    }
                    RaceAction::Abandon(i) => {
                        self.running.retain(|(j, _)| *j != i);
                        self.ends.push((i, AttemptEnd::TimedOut));
                    }
                }
            }
            if self.machine.outcome().is_some() {
                return Poll::Ready(());
            }
            if self.poll_attempts(cx) || self.poll_more(cx) {
                continue;
            }
            let Some(at) = self.machine.poll_timeout() else {
                return Poll::Pending;
            };
            if self.timer.as_ref().is_none_or(|(t, _)| *t != at) {
                let rt = self.rt.clone();
                self.timer = Some((at, Box::pin(async move { rt.sleep_until(at).await })));
            }
            let (_, sleep) = self.timer.as_mut().expect("set above");
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
            let now = self.rt.now().max(at);
            self.machine.handle_timeout(now);
        }
    }
}

/// Races `candidates` under `cfg`, and those `more` brings when it brings
/// them: `start(i, c)` makes the attempt of candidate `c`, number `i`.
/// Bounded by the machine (each attempt by its deadline) and by `more`; the
/// caller bounds the whole with the session's deadline.
pub(crate) async fn race<'a, R: Runtime, C, T>(
    rt: &R,
    candidates: Vec<C>,
    more: Option<More<'a, C>>,
    cfg: RaceConfig,
    start: impl FnMut(usize, &C) -> Attempt<'a, T>,
) -> Raced<C, T> {
    let mut machine = Race::new(candidates.len(), cfg, rt.now());
    if more.is_some() {
        machine.expect_more();
    }
    let mut r = Racer {
        rt: rt.clone(),
        machine,
        candidates,
        more,
        start,
        running: Vec::new(),
        ends: Vec::new(),
        errors: Vec::new(),
        timer: None,
        winner: None,
    };
    poll_fn(|cx| r.poll_race(cx)).await;
    let mut ends = r.ends;
    for (i, _) in r.running.drain(..) {
        ends.push((i, AttemptEnd::Lost));
    }
    let last_error = r.errors.last().map(|(_, e)| e.kind());
    for (i, e) in r.errors {
        ends.push((i, AttemptEnd::Failed(e)));
    }
    let result = match (r.winner, r.machine.outcome()) {
        (Some((index, v)), Some(RaceOutcome::Won { attempts, .. })) => {
            ends.push((index, AttemptEnd::Won));
            Ok((v, Won { index, attempts }))
        }
        (
            _,
            Some(RaceOutcome::Failed {
                last_error: kind, ..
            }),
        ) => {
            let kind = kind.or(last_error).unwrap_or(ErrorKind::NotFound);
            Err(io::Error::new(kind, last_message(&ends, kind)))
        }
        _ => Err(io::Error::from(ErrorKind::NotFound)),
    };
    Raced {
        result,
        attempts: ends,
        candidates: r.candidates,
    }
}

/// The last attempt's error, as the log shows it.
fn last_message(ends: &[(usize, AttemptEnd)], kind: ErrorKind) -> String {
    ends.iter()
        .rev()
        .find_map(|(_, e)| match e {
            AttemptEnd::Failed(e) => Some(e.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| match kind {
            ErrorKind::TimedOut => "every attempt timed out".to_owned(),
            _ => "no candidate".to_owned(),
        })
}
