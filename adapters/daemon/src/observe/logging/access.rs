//! The access log's line format: one line per finished connection, the
//! fields of the `socks4d::access` event in the order the observer gives
//! them, after the time. Text: `time=TIME key=value ...`, values quoted and
//! escaped where needed ([`write_value`]); JSON: one object per line,
//! numbers as numbers. No level, target or message: the field set is the
//! line (documented in `docs/operations.md`).

use super::{write_value, LogFormat};
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The access log's formatter, text or JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessFormat(pub(crate) LogFormat);

impl<S, N> FormatEvent<S, N> for AccessFormat
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
        let now = super::now_rfc3339().to_string();
        let mut line = Line {
            json: self.0 == LogFormat::Json,
            out: String::new(),
        };
        line.put("time", Value::Str(&now));
        event.record(&mut line);
        if line.json {
            writeln!(writer, "{{{}}}", line.out)
        } else {
            writeln!(writer, "{}", line.out)
        }
    }
}

enum Value<'a> {
    Str(&'a str),
    Number(String),
}

struct Line {
    json: bool,
    out: String,
}

impl Line {
    fn put(&mut self, name: &str, value: Value<'_>) {
        if name == "message" {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(if self.json { ',' } else { ' ' });
        }
        if self.json {
            let value = match value {
                Value::Str(s) => serde_json::Value::from(s),
                Value::Number(n) => serde_json::from_str(&n).unwrap_or(serde_json::Value::Null),
            };
            let _ = write!(self.out, "{}:{value}", serde_json::Value::from(name));
        } else {
            let _ = write!(self.out, "{name}=");
            match value {
                Value::Str(s) => {
                    let _ = write_value(&mut self.out, s);
                }
                Value::Number(n) => self.out.push_str(&n),
            }
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), Value::Str(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), Value::Number(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), Value::Number(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), Value::Str(&format!("{value:?}")));
    }
}
