//! Per-client limits as values and arithmetic, with time passed in: sizes,
//! bandwidths, connection rates and traffic quotas as people write them, the
//! token bucket that paces a client's relays, the sliding window that counts
//! its granted requests, and the calendar periods (UTC) its quota runs over.
//!
//! Spellings (case-insensitive units):
//! - sizes: `1048576`, `500B`, `64KiB`, `500MiB`, `10GiB`, `1TiB` (powers of
//!   1024), `64KB`, `500MB`, `10GB`, `1TB` (powers of 1000);
//! - bandwidths: a size per second, `500KiB/s`, `2MiB/s`, `10MB/s`, or bits,
//!   `800kbit/s`, `100Mbit/s`, `1Gbit/s` (powers of 1000, 8 bits a byte);
//! - connection rates: `N/DURATION`, `10/1s`, `600/1m`, `100/500ms`, `5000/1h`;
//! - quotas: `SIZE/PERIOD`, PERIOD one of `hour`, `day`, `week` (from Monday
//!   00:00 UTC), `month`: `1GiB/day`, `50GB/month`.

use core::fmt;
use core::str::FromStr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why a limit is not written right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError(String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

fn bad(what: &str, input: &str, example: &str) -> LimitError {
    LimitError(format!("'{input}' is not {what} (e.g. {example})"))
}

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// The bytes per unit of a size unit, lowercased.
fn size_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    })
}

/// Splits `"12.5MiB"` into `(12.5, "mib")`.
fn number_and_unit(s: &str) -> Option<(f64, String)> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n, unit.trim().to_ascii_lowercase()))
}

impl FromStr for ByteSize {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<ByteSize, LimitError> {
        let err = || bad("a size", s, "500MiB, 10GiB, 1TB");
        let (n, unit) = number_and_unit(s).ok_or_else(err)?;
        let per = size_unit(&unit).ok_or_else(err)?;
        let bytes = n * per as f64;
        if bytes > u64::MAX as f64 {
            return Err(err());
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, per) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if b >= per && b % per == 0 {
                return write!(f, "{}{unit}", b / per);
            }
        }
        write!(f, "{b}B")
    }
}

/// A rate of bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    /// Bytes per second (at least 1).
    pub bytes_per_second: u64,
}

impl FromStr for Bandwidth {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<Bandwidth, LimitError> {
        let err = || bad("a bandwidth", s, "500KiB/s, 2MiB/s, 100Mbit/s");
        let (amount, per) = s.trim().rsplit_once('/').ok_or_else(err)?;
        if !per.trim().eq_ignore_ascii_case("s") {
            return Err(err());
        }
        let (n, unit) = number_and_unit(amount).ok_or_else(err)?;
        let bytes = match unit.as_str() {
            "bit" => n / 8.0,
            "kbit" => n * 1e3 / 8.0,
            "mbit" => n * 1e6 / 8.0,
            "gbit" => n * 1e9 / 8.0,
            other => n * size_unit(other).ok_or_else(err)? as f64,
        };
        if !(1.0..=u64::MAX as f64).contains(&bytes) {
            return Err(err());
        }
        Ok(Bandwidth {
            bytes_per_second: bytes.round() as u64,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", ByteSize(self.bytes_per_second))
    }
}

/// Parses `500ms`, `1s`, `10m`, `1h`, `1d` (a number and a unit).
fn duration(s: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(s)?;
    let secs = match unit.as_str() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

fn show_duration(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= per && ms % per == 0 {
            return write!(f, "{}{unit}", ms / per);
        }
    }
    write!(f, "{ms}ms")
}

/// At most `count` granted requests in any window of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionRate {
    /// Requests granted per window (at least 1).
    pub count: u32,
    /// The window's length.
    pub window: Duration,
}

/// The largest `count` a connection rate may have: the window keeps one time
/// per granted request.
pub const MAX_RATE_COUNT: u32 = 100_000;

impl FromStr for ConnectionRate {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<ConnectionRate, LimitError> {
        let err = || bad("a connection rate", s, "10/1s, 600/1m");
        let (n, d) = s.trim().split_once('/').ok_or_else(err)?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        let window = duration(d).ok_or_else(err)?;
        if count == 0 || count > MAX_RATE_COUNT {
            return Err(LimitError(format!(
                "'{s}': the count must be 1 to {MAX_RATE_COUNT}"
            )));
        }
        Ok(ConnectionRate { count, window })
    }
}

impl fmt::Display for ConnectionRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.count)?;
        show_duration(self.window, f)
    }
}

/// A calendar period, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Period {
    /// From hh:00:00 UTC.
    Hour,
    /// From 00:00:00 UTC.
    Day,
    /// From Monday 00:00:00 UTC.
    Week,
    /// From the 1st, 00:00:00 UTC.
    Month,
}

impl Period {
    /// Every period.
    pub const ALL: [Period; 4] = [Period::Hour, Period::Day, Period::Week, Period::Month];

    /// Its name: `hour`, `day`, `week`, `month`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// Which period (a count since the Unix epoch) the second `unix_secs` is
    /// in. Consecutive periods have consecutive numbers.
    pub fn index(self, unix_secs: u64) -> u64 {
        let days = unix_secs / 86_400;
        match self {
            Period::Hour => unix_secs / 3600,
            Period::Day => days,
            // 1970-01-01 was a Thursday; weeks count from Monday 1969-12-29.
            Period::Week => (days + 3) / 7,
            Period::Month => {
                let (y, m, _) = civil_from_days(days as i64);
                (y * 12 + i64::from(m) - 1) as u64
            }
        }
    }

    /// The first second (Unix time) of period number `index`.
    pub fn start(self, index: u64) -> u64 {
        match self {
            Period::Hour => index * 3600,
            Period::Day => index * 86_400,
            Period::Week => (index * 7).saturating_sub(3) * 86_400,
            Period::Month => {
                let y = (index / 12) as i64;
                let m = (index % 12) as u32 + 1;
                days_from_civil(y, m, 1) as u64 * 86_400
            }
        }
    }
}

impl FromStr for Period {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<Period, LimitError> {
        Period::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| bad("a period", s, "hour, day, week, month"))
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01 (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A traffic quota: bytes of both directions per calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Bytes allowed per period.
    pub bytes: ByteSize,
    /// The period.
    pub period: Period,
}

impl FromStr for Quota {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<Quota, LimitError> {
        let err = || bad("a quota", s, "1GiB/day, 50GB/month");
        let (size, period) = s.trim().rsplit_once('/').ok_or_else(err)?;
        Ok(Quota {
            bytes: size.parse().map_err(|_| err())?,
            period: period.parse().map_err(|_| err())?,
        })
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bytes, self.period.name())
    }
}

/// A token bucket: `rate` tokens (bytes) a second, holding at most `burst`
/// (one second's worth). Starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens, in millionths of a byte, so that slow rates refill smoothly.
    micro: u128,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket for `rate`, with a burst of one second's worth.
    pub fn new(rate: Bandwidth) -> TokenBucket {
        let rate = rate.bytes_per_second.max(1);
        TokenBucket {
            rate,
            burst: rate,
            micro: u128::from(rate) * 1_000_000,
            last: None,
        }
    }

    /// The rate, bytes a second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            // rate bytes/s = rate * 1e6 micro-bytes per 1e9 ns.
            let added = elapsed * u128::from(self.rate) / 1000;
            self.micro = (self.micro + added).min(u128::from(self.burst) * 1_000_000);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    /// Takes up to `want` tokens at `now`; how many it got (0 when empty).
    pub fn take(&mut self, now: Instant, want: u64) -> u64 {
        self.refill(now);
        let have = (self.micro / 1_000_000) as u64;
        let got = want.min(have);
        self.micro -= u128::from(got) * 1_000_000;
        got
    }

    /// Gives back tokens taken but not used.
    pub fn give_back(&mut self, n: u64) {
        self.micro =
            (self.micro + u128::from(n) * 1_000_000).min(u128::from(self.burst) * 1_000_000);
    }

    /// When at least `want` tokens (at most the burst) will be there.
    pub fn ready_at(&mut self, now: Instant, want: u64) -> Instant {
        self.refill(now);
        let want = u128::from(want.clamp(1, self.burst)) * 1_000_000;
        if self.micro >= want {
            return now;
        }
        let missing = want - self.micro;
        let nanos = missing.div_ceil(u128::from(self.rate)) * 1000;
        now + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

/// Granted requests of one client in a sliding window: each a time, kept
/// until it leaves the window. A request is counted (reserved) when it is
/// admitted and taken back if it is not granted after all, so that requests
/// in flight at once cannot together pass the limit.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    times: VecDeque<Instant>,
}

impl RateWindow {
    /// An empty window.
    pub fn new() -> RateWindow {
        RateWindow::default()
    }

    /// Counts a request at `now` if fewer than `rate.count` are in the window
    /// ending at `now`; the time to give back if it is not granted, or `None`
    /// (refused).
    pub fn acquire(&mut self, now: Instant, rate: ConnectionRate) -> Option<Instant> {
        self.expire(now, rate.window);
        if self.times.len() >= rate.count as usize {
            return None;
        }
        // Kept in order even if a caller's clock is a little behind another's.
        let at = self.times.back().map_or(now, |b| now.max(*b));
        self.times.push_back(at);
        Some(at)
    }

    /// Forgets the requests that left the `window` ending at `now`.
    pub fn expire(&mut self, now: Instant, window: Duration) {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.times.pop_front();
        }
    }

    /// Takes back a request counted at `at` that was not granted.
    pub fn release(&mut self, at: Instant) {
        if let Some(i) = self.times.iter().rposition(|t| *t == at) {
            self.times.remove(i);
        }
    }

    /// Requests counted in the window.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the window holds nothing.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need a point in time to start from
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!("500MiB".parse::<ByteSize>().unwrap().0, 500 << 20);
        assert_eq!("10GiB".parse::<ByteSize>().unwrap().0, 10 << 30);
        assert_eq!("1TiB".parse::<ByteSize>().unwrap().0, 1 << 40);
        assert_eq!("2MB".parse::<ByteSize>().unwrap().0, 2_000_000);
        assert_eq!("1tb".parse::<ByteSize>().unwrap().0, 1_000_000_000_000);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!(
            "500KiB/s".parse::<Bandwidth>().unwrap().bytes_per_second,
            512_000
        );
        assert_eq!(
            "2MiB/s".parse::<Bandwidth>().unwrap().bytes_per_second,
            2 << 20
        );
        assert_eq!(
            "100Mbit/s".parse::<Bandwidth>().unwrap().bytes_per_second,
            12_500_000
        );
        assert_eq!(
            "1Gbit/s".parse::<Bandwidth>().unwrap().bytes_per_second,
            125_000_000
        );
        let r: ConnectionRate = "600/1m".parse().unwrap();
        assert_eq!((r.count, r.window), (600, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "600/1m");
        let q: Quota = "1MiB/day".parse().unwrap();
        assert_eq!((q.bytes.0, q.period), (1 << 20, Period::Day));
        assert_eq!(q.to_string(), "1MiB/day");
        for bad in ["1MiB/x", "1MiB", "fast/s", "-1MiB/s", "0/s"] {
            assert!(bad.parse::<Bandwidth>().is_err(), "{bad}");
        }
        for bad in ["10", "10/", "0/1s", "x/1s", "10/1y", "10/0s"] {
            assert!(bad.parse::<ConnectionRate>().is_err(), "{bad}");
        }
        for bad in ["1MiB/fortnight", "1MiB", "lots/day", "1MiB/"] {
            assert!(bad.parse::<Quota>().is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_at_known_boundaries() {
        // 2024-03-01T00:00:00Z (a leap year's March) and the second before.
        let march = 1_709_251_200;
        assert_eq!(
            Period::Month.index(march),
            Period::Month.index(march - 1) + 1
        );
        assert_eq!(Period::Month.start(Period::Month.index(march)), march);
        // 2024-02-01T00:00:00Z.
        assert_eq!(
            Period::Month.start(Period::Month.index(march - 1)),
            1_706_745_600
        );
        // Monday 2024-03-04T00:00:00Z.
        let monday = 1_709_510_400;
        assert_eq!(
            Period::Week.index(monday),
            Period::Week.index(monday - 1) + 1
        );
        assert_eq!(
            Period::Week.start(Period::Week.index(monday + 5 * 86_400)),
            monday
        );
        assert_eq!(Period::Day.start(Period::Day.index(march + 86_399)), march);
        assert_eq!(Period::Hour.start(Period::Hour.index(march + 3599)), march);
        // 1970 and 2100 (not a leap year) round-trip through the calendar.
        for days in [0, 59, 60, 365, 47_541, 47_540, 11_016, 73_048] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn the_bucket_starts_full_and_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Bandwidth {
            bytes_per_second: 1000,
        });
        assert_eq!(b.take(t0, 5000), 1000, "a burst of one second");
        assert_eq!(b.take(t0, 1), 0);
        assert_eq!(b.ready_at(t0, 100), t0 + Duration::from_millis(100));
        assert_eq!(b.take(t0 + Duration::from_millis(250), 1000), 250);
        b.give_back(50);
        assert_eq!(b.take(t0 + Duration::from_millis(250), 1000), 50);
        assert_eq!(
            b.take(t0 + Duration::from_secs(60), 5000),
            1000,
            "never more than the burst"
        );
    }

    #[test]
    fn the_window_counts_exactly() {
        let t0 = Instant::now();
        let rate = ConnectionRate {
            count: 3,
            window: Duration::from_secs(10),
        };
        let mut w = RateWindow::new();
        let a = w.acquire(t0, rate).unwrap();
        w.acquire(t0 + Duration::from_secs(1), rate).unwrap();
        w.acquire(t0 + Duration::from_secs(2), rate).unwrap();
        assert!(w.acquire(t0 + Duration::from_secs(3), rate).is_none());
        w.release(a);
        assert!(
            w.acquire(t0 + Duration::from_secs(3), rate).is_some(),
            "a released request frees its place"
        );
        assert!(w.acquire(t0 + Duration::from_secs(10), rate).is_none());
        assert!(
            w.acquire(t0 + Duration::from_secs(11), rate).is_some(),
            "the second one left the window"
        );
    }
}
