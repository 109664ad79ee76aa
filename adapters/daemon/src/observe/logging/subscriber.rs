//! The global `tracing` subscriber the binaries install (feature `cli`):
//! non-blocking and lossy towards each output (standard error, the log file,
//! syslog, the access log), with dropped lines counted and reported, in the
//! `key=value` format of [`super::write_value`] or JSON. Each output is a
//! layer with a filter of its own: the diagnostic log's level, and the access
//! log's, which takes only the `socks4d::access` events.

use super::access::AccessFormat;
use super::file::{FileWriter, LogFile};
use super::outputs::{AccessLog, LogOutputs, SyslogTarget};
use super::syslog::{SyslogMakeWriter, Transport};
use super::{write_value, LogFormat, LogLevel};
use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Lines the log queue holds before it drops new ones.
pub const LOG_QUEUE_LINES: usize = 16_384;

static DROPPED: OnceLock<Vec<tracing_appender::non_blocking::ErrorCounter>> = OnceLock::new();
static GUARD: OnceLock<std::sync::Mutex<Vec<tracing_appender::non_blocking::WorkerGuard>>> =
    OnceLock::new();
static FILES: OnceLock<Vec<Arc<LogFile>>> = OnceLock::new();
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// A layer of the registry, boxed: one output with its format and filter.
type Output = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: non-blocking, at `level`, as `format`, to
/// standard error. A second call does nothing.
pub fn init(format: LogFormat, level: LogLevel) {
    // Standard error alone cannot fail to open.
    let _ = init_outputs(&LogOutputs::stderr(format, level));
}

/// Installs the global subscriber with every output `outputs` names, each
/// behind a queue of its own ([`LOG_QUEUE_LINES`], lossy): the log file and
/// access log file opened now (before a privilege drop), syslog connected
/// now if it can be (else as lines come). An error names the file that
/// cannot be opened; nothing is installed then. A second call does nothing.
pub fn init_outputs(outputs: &LogOutputs) -> Result<(), String> {
    let mut queues = Queues::default();
    let mut layers: Vec<Output> = Vec::new();
    // Each writer, and whether its lines carry their time (syslog's header
    // has it).
    let mut diagnostic: Vec<(BoxMakeWriter, bool)> = Vec::new();
    if let Some(path) = &outputs.file {
        diagnostic.push((queues.file(path, outputs.owner)?, true));
    }
    if let Some(target) = &outputs.syslog {
        diagnostic.push((queues.syslog(target, "log"), false));
    }
    if diagnostic.is_empty() {
        diagnostic.push((queues.stderr(), true));
    }
    for (writer, timed) in diagnostic {
        layers.push(diagnostic_layer(outputs, writer, timed));
    }
    let access = match (&outputs.access, outputs.access_level) {
        (None, _) | (_, LogLevel::Off) => None,
        (Some(AccessLog::File(path)), _) => Some(queues.file(path, outputs.owner)?),
        (Some(AccessLog::Syslog), _) => Some(queues.syslog(&outputs.access_syslog(), "access")),
    };
    if let Some(writer) = access {
        let level = tracing::level_filters::LevelFilter::from_str(outputs.access_level.as_str())
            .unwrap_or(tracing::level_filters::LevelFilter::INFO);
        let filter = Targets::new().with_target(super::ACCESS_TARGET, level);
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .event_format(AccessFormat(outputs.access_format))
                .with_filter(filter)
                .boxed(),
        );
    }
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok()
    {
        super::set_access_events(outputs.access.is_some() && outputs.access_level != LogLevel::Off);
        let _ = DROPPED.set(queues.counters);
        let _ = GUARD.set(std::sync::Mutex::new(queues.guards));
        let _ = FILES.set(queues.files);
        let _ = std::thread::Builder::new()
            .name("log-watch".into())
            .spawn(watch_drops);
        for (target, e) in queues.unreachable {
            // On standard error too: the log may go nowhere else.
            eprintln!("syslog server {target} not reachable yet ({e}): lines to it are dropped until it is");
            tracing::warn!(target: "socks4d", syslog = %target, error = %e, "syslog server not reachable yet: lines to it are dropped until it is");
        }
    }
    Ok(())
}

/// The diagnostic log to `writer`, at the settings' level (or `RUST_LOG`'s),
/// without the access log's events; text lines without their time unless
/// `timed`.
fn diagnostic_layer(outputs: &LogOutputs, writer: BoxMakeWriter, timed: bool) -> Output {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(outputs.level.as_str()))
        .add_directive(
            format!("{}=off", super::ACCESS_TARGET)
                .parse()
                .expect("a valid directive"),
        );
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    match outputs.format {
        LogFormat::Text if timed => layer.event_format(Logfmt).with_filter(filter).boxed(),
        LogFormat::Text => layer
            .event_format(LogfmtUntimed)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
    }
}

/// The queues made for the outputs, with what [`init_outputs`] keeps of them.
#[derive(Default)]
struct Queues {
    counters: Vec<tracing_appender::non_blocking::ErrorCounter>,
    guards: Vec<tracing_appender::non_blocking::WorkerGuard>,
    files: Vec<Arc<LogFile>>,
    unreachable: Vec<(SyslogTarget, std::io::Error)>,
}

impl Queues {
    fn queue(&mut self, out: impl std::io::Write + Send + 'static) -> NonBlocking {
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .thread_name("log-writer")
            .finish(out);
        self.counters.push(writer.error_counter());
        self.guards.push(guard);
        writer
    }

    fn stderr(&mut self) -> BoxMakeWriter {
        BoxMakeWriter::new(self.queue(std::io::stderr()))
    }

    fn file(&mut self, path: &Path, owner: Option<(u32, u32)>) -> Result<BoxMakeWriter, String> {
        let file =
            LogFile::open(path, owner).map_err(|e| format!("log file {}: {e}", path.display()))?;
        self.files.push(file.clone());
        Ok(BoxMakeWriter::new(self.queue(FileWriter(file))))
    }

    fn syslog(&mut self, target: &SyslogTarget, msgid: &'static str) -> BoxMakeWriter {
        let (transport, error) = Transport::new(target.clone());
        if let Some(e) = error {
            self.unreachable.push((target.clone(), e));
        }
        BoxMakeWriter::new(SyslogMakeWriter::new(self.queue(transport), msgid))
    }
}

/// Opens the log files again (SIGUSR1, after logrotate moved them): the
/// paths reopened, or the first error (lines go on to the file open so far).
pub fn reopen() -> Result<Vec<std::path::PathBuf>, String> {
    let mut done = Vec::new();
    for file in FILES.get().into_iter().flatten() {
        file.reopen()
            .map_err(|e| format!("{}: {e}", file.path().display()))?;
        done.push(file.path().to_owned());
    }
    Ok(done)
}

/// Log lines dropped so far because an output could not keep up (or a
/// syslog server could not be reached).
pub fn dropped_lines() -> u64 {
    let queued: u64 = DROPPED
        .get()
        .into_iter()
        .flatten()
        .map(|c| c.dropped_lines() as u64)
        .sum();
    queued + super::syslog::lost()
}

/// Writes out what is queued (at exit); lines logged afterwards are lost.
pub fn flush() {
    if let Some(guard) = GUARD.get() {
        drop(std::mem::take(
            &mut *guard.lock().unwrap_or_else(|e| e.into_inner()),
        ));
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
            tracing::warn!(target: "socks4d", dropped = now - reported, total_dropped = now, "log lines were dropped: a log output could not keep up");
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
        let now = super::now_rfc3339();
        write!(writer, "{now} {:>5} ", event.metadata().level())?;
        logfmt(writer, event)
    }
}

/// [`Logfmt`] without the time, for syslog, whose header has it (and the
/// level unpadded): `LEVEL TARGET: MESSAGE key=value ...`.
#[derive(Debug, Clone, Copy, Default)]
struct LogfmtUntimed;

impl<S, N> FormatEvent<S, N> for LogfmtUntimed
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
        write!(writer, "{} ", event.metadata().level())?;
        logfmt(writer, event)
    }
}

/// A text line after its time and level: `TARGET: MESSAGE key=value ...`.
fn logfmt(mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
    write!(writer, "{}:", event.metadata().target())?;
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
