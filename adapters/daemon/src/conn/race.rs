//! Runs a [`Race`] (socks4-proto's Happy Eyeballs machine) over real
//! attempts: each attempt is a future the caller makes for a candidate's
//! index; the machine says when to start one and when one has run out of
//! time; the first to succeed wins and every other is dropped (its socket
//! closed). What happened to each attempt is reported, for metrics and
//! parent health.

use crate::runtime::Runtime;
use socks4_proto::eyeballs::{Race, RaceAction, RaceConfig, RaceOutcome};
use socks4_proto::server::Won;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::Poll;
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

/// A race's result: the winner's value and index, or the last error; and how
/// each started attempt ended, by candidate index.
pub(crate) struct Raced<T> {
    pub(crate) result: io::Result<(T, Won)>,
    pub(crate) attempts: Vec<(usize, AttemptEnd)>,
}

type Attempt<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Races `n` candidates under `cfg`: `start(i)` makes candidate `i`'s
/// attempt. Bounded by the machine (each attempt by its deadline); the
/// caller bounds the whole with the session's deadline.
pub(crate) async fn race<'a, R: Runtime, T>(
    rt: &R,
    n: usize,
    cfg: RaceConfig,
    mut start: impl FnMut(usize) -> Attempt<'a, T>,
) -> Raced<T> {
    let mut machine = Race::new(n, cfg, rt.now());
    let mut running: Vec<(usize, Attempt<'a, T>)> = Vec::new();
    let mut ends: Vec<(usize, AttemptEnd)> = Vec::new();
    let mut errors: Vec<(usize, io::Error)> = Vec::new();
    let mut timer: Option<(Instant, Pin<Box<dyn Future<Output = ()> + Send + 'a>>)> = None;
    let mut winner: Option<(usize, T)> = None;
    let rt2 = rt.clone();
    poll_fn(|cx| loop {
        while let Some(action) = machine.poll_action() {
            match action {
                RaceAction::Start(i) => running.push((i, start(i))),
                RaceAction::Abandon(i) => {
                    running.retain(|(j, _)| *j != i);
                    ends.push((i, AttemptEnd::TimedOut));
                }
            }
        }
        if machine.outcome().is_some() {
            return Poll::Ready(());
        }
        let mut progressed = false;
        let mut k = 0;
        while k < running.len() {
            let (i, fut) = &mut running[k];
            let i = *i;
            match fut.as_mut().poll(cx) {
                Poll::Pending => k += 1,
                Poll::Ready(Ok(v)) => {
                    drop(running.remove(k));
                    machine.handle_connected(i);
                    winner = Some((i, v));
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) => {
                    drop(running.remove(k));
                    machine.handle_failed(i, e.kind(), rt2.now());
                    errors.push((i, e));
                    progressed = true;
                }
            }
        }
        if progressed {
            continue;
        }
        let Some(at) = machine.poll_timeout() else {
            return Poll::Pending;
        };
        if timer.as_ref().is_none_or(|(t, _)| *t != at) {
            let rt3 = rt2.clone();
            timer = Some((at, Box::pin(async move { rt3.sleep_until(at).await })));
        }
        let (_, sleep) = timer.as_mut().expect("set above");
        if sleep.as_mut().poll(cx).is_ready() {
            timer = None;
            machine.handle_timeout(rt2.now().max(at));
            continue;
        }
        return Poll::Pending;
    })
    .await;
    for (i, _) in running.drain(..) {
        ends.push((i, AttemptEnd::Lost));
    }
    let last_error = errors.last().map(|(_, e)| e.kind());
    for (i, e) in errors {
        ends.push((i, AttemptEnd::Failed(e)));
    }
    let result = match (winner, machine.outcome()) {
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
