//! The session's timers: one deadline per phase, armed on entering it and
//! cleared on leaving it. The session's next deadline is the earliest armed one.

use std::time::Instant;

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
