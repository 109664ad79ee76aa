//! [`Throttle`]: a per-second budget of log lines of one kind (refused
//! connections, notification failures). Lines over the budget are counted and
//! summed up in one line once their second is over, so that a flood cannot
//! fill a disk and is still reported.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A per-second budget of log lines; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Throttle {
    per_second: AtomicU32,
    /// The summary line's message: what was not logged one by one.
    what: &'static str,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl Throttle {
    /// A budget of `per_second` lines; `what` names the lines in the summary
    /// ("refused connections not logged one by one ...").
    pub(crate) fn new(per_second: u32, what: &'static str) -> Throttle {
        Throttle {
            per_second: AtomicU32::new(per_second),
            what,
            window: Mutex::default(),
        }
    }

    /// Changes the budget.
    pub(crate) fn set_per_second(&self, per_second: u32) {
        self.per_second.store(per_second, Ordering::Relaxed);
    }

    /// Whether one more line may be written now.
    pub(crate) fn allow(&self, now: Instant) -> bool {
        let budget = self.per_second.load(Ordering::Relaxed);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        self.roll(&mut w, now);
        if w.logged < budget {
            w.logged += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Sums up the lines of a second that is over (called periodically, so
    /// that a flood that stops is still reported).
    pub(crate) fn flush(&self, now: Instant) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        self.roll(&mut w, now);
    }

    fn roll(&self, w: &mut Window, now: Instant) {
        let over = w
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if over {
            if w.suppressed > 0 {
                tracing::warn!(target: "socks4d", suppressed = w.suppressed, "{}", self.what);
            }
            *w = Window {
                start: Some(now),
                logged: 0,
                suppressed: 0,
            };
        }
    }
}
