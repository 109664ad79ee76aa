//! The session's timers: one deadline per phase, armed on entering it and
//! cleared on leaving it. The session's next deadline is the earliest armed one.

use std::time::{Duration, Instant};

/// A phase deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The request must arrive.
    Handshake,
    /// The SOCKS4a name must resolve.
    Resolve,
    /// identd must answer.
    Ident,
    /// The outbound connection must be established.
    Connect,
    /// The BIND's inbound connection must arrive.
    Accept,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::Handshake,
        Timer::Resolve,
        Timer::Ident,
        Timer::Connect,
        Timer::Accept,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The phase's name, as logs show it: `handshake`, `resolve`, `ident`,
    /// `connect`, `accept`.
    pub fn name(self) -> &'static str {
        match self {
            Timer::Handshake => "handshake",
            Timer::Resolve => "resolve",
            Timer::Ident => "ident",
            Timer::Connect => "connect",
            Timer::Accept => "accept",
        }
    }
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; 5],
}

impl TimerTable {
    /// No timer armed.
    pub(crate) const fn new() -> TimerTable {
        TimerTable {
            deadlines: [None; 5],
        }
    }

    /// Sets `timer` to fire `after` from `now` (see [`later`]).
    pub(crate) fn set_after(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.set(timer, later(now, after));
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn clear(&mut self) {
        self.deadlines = [None; 5];
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The first armed timer whose deadline has passed at `now`, disarmed.
    pub(crate) fn expired(&mut self, now: Instant) -> Option<Timer> {
        let t = Timer::ALL
            .into_iter()
            .find(|t| self.deadlines[t.index()].is_some_and(|d| d <= now))?;
        self.stop(t);
        Some(t)
    }
}

/// The longest a deadline is set ahead when a configured duration is too
/// long for the clock: about a century, which is never.
const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `now + after`, or as far ahead as the clock goes (at most a century) when
/// `after` is too long for it: a configured duration never panics the
/// session.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(NEVER.min(after)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a point in time to start from
    fn a_duration_too_long_for_the_clock_is_far_ahead_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) >= now + Duration::from_secs(86_400 * 365));
    }
}
