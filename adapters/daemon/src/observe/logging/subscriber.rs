//! The global `tracing` subscriber the binaries install (feature `cli`):
//! non-blocking and lossy towards standard error, with dropped lines counted
//! and reported, in the `key=value` format of [`super::write_value`] or JSON.

use super::{write_value, LogFormat, LogLevel};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Lines the log queue holds before it drops new ones.
pub const LOG_QUEUE_LINES: usize = 16_384;

static DROPPED: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();
static GUARD: OnceLock<std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>>> =
    OnceLock::new();
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// Installs the global subscriber: non-blocking, at `level`, as `format`. A
/// second call does nothing.
pub fn init(format: LogFormat, level: LogLevel) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.as_str()));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let counter = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let installed = match format {
        LogFormat::Text => builder.event_format(Logfmt).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_ok() {
        let _ = DROPPED.set(counter);
        let _ = GUARD.set(std::sync::Mutex::new(Some(guard)));
        let _ = std::thread::Builder::new()
            .name("log-watch".into())
            .spawn(watch_drops);
    }
}

/// Log lines dropped so far because standard error could not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Writes out what is queued (at exit); lines logged afterwards are lost.
pub fn flush() {
    if let Some(guard) = GUARD.get() {
        drop(guard.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// Reports dropped lines once they stop being dropped.
fn watch_drops() {
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = dropped_lines();
        let reported = REPORTED.load(Ordering::Relaxed);
        if now == last && now > reported {
            // Lines flow again (nothing dropped for a second): say how many
            // were lost.
            REPORTED.store(now, Ordering::Relaxed);
            tracing::warn!(target: "socks4d", dropped = now - reported, total_dropped = now, "log lines were dropped: standard error could not keep up");
        }
        last = now;
    }
}

/// The text format: `TIME LEVEL TARGET: MESSAGE key=value ...`, with values
/// quoted and escaped where needed ([`write_value`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        write!(writer, "{now} {:>5} {}:", meta.level(), meta.target())?;
        let mut fields = Fields {
            out: String::new(),
            message: None,
        };
        event.record(&mut fields);
        if let Some(message) = fields.message {
            // The server's own words: bare, with control characters escaped.
            writer.write_char(' ')?;
            for c in message.chars() {
                if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                    write!(writer, "\\u{{{:x}}}", u32::from(c))?;
                } else {
                    writer.write_char(c)?;
                }
            }
        }
        writer.write_str(&fields.out)?;
        writeln!(writer)
    }
}

struct Fields {
    out: String,
    message: Option<String>,
}

impl Fields {
    fn field(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
            return;
        }
        let _ = write!(self.out, " {}=", field.name());
        let _ = write_value(&mut self.out, value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format!("{value:?}"));
    }
}
