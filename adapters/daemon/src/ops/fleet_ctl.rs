//! The fleet as the operator sees it: `ctl fleet` (whether Redis answers,
//! its last round-trip time, and the instances whose heartbeat it holds,
//! with their age) and the metrics `socks4_fleet_up`,
//! `socks4_fleet_ops_total{op,result}` and `socks4_fleet_rtt_seconds`.

use crate::daemon::Daemon;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde_json::json;
use std::fmt;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// An instance is listed as `up` by `ctl fleet` while its heartbeat is at
/// most this old (in milliseconds); older ones are listed as `silent`.
const RECENT_MS: u64 = 5_000;

/// `ctl fleet [--json]`.
pub(crate) fn fleet(daemon: &Daemon, as_json: bool) -> Result<String, String> {
    let Some(link) = daemon.fleet() else {
        return Err("this instance is in no fleet (no [fleet] in its configuration)".into());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let instances = link.instances();
    if as_json {
        let list: Vec<_> = instances
            .iter()
            .map(|i| {
                let age = now.saturating_sub(i.seen_ms);
                json!({
                    "name": i.name,
                    "last_seen_ms_ago": age,
                    "recent": age <= RECENT_MS,
                    "rtt_us": i.rtt_us,
                    "version": i.version,
                })
            })
            .collect();
        return Ok(format!(
            "{}\n",
            json!({
                "name": link.settings.name,
                "redis": link.settings.redis.to_string(),
                "up": link.is_up(),
                "rtt_us": link.rtt_us(),
                "instances": list,
            })
        ));
    }
    let mut out = format!(
        "fleet {} via {}: Redis {}, round trip {:.3} ms\n",
        link.settings.name,
        link.settings.redis,
        if link.is_up() {
            "up"
        } else {
            "DOWN (serving on local state)"
        },
        link.rtt_us() as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "{:<32} {:>10} {:>10}  VERSION",
        "INSTANCE", "SEEN", "RTT"
    );
    for i in &instances {
        let age = now.saturating_sub(i.seen_ms);
        let _ = writeln!(
            out,
            "{:<32} {:>8.1}s {:>8.3}ms  {}{}",
            i.name,
            age as f64 / 1000.0,
            i.rtt_us as f64 / 1000.0,
            i.version,
            if age <= RECENT_MS { "" } else { " (silent)" }
        );
    }
    Ok(out)
}

/// The fleet's metrics, when the daemon has `[fleet]`.
pub(crate) fn metrics(e: &mut DescriptorEncoder, daemon: &Daemon) -> fmt::Result {
    let Some(link) = daemon.fleet() else {
        return Ok(());
    };
    let m = e.encode_descriptor(
        "socks4_fleet_up",
        "Whether this instance's connection to the fleet's Redis works (0: deciding on local state)",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(i64::from(link.is_up())).encode(m)?;
    let m = e.encode_descriptor(
        "socks4_fleet_rtt_seconds",
        "The last round trip of a pipeline to the fleet's Redis",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(link.rtt_us() as f64 / 1e6).encode(m)?;
    let mut m = e.encode_descriptor(
        "socks4_fleet_ops",
        "Operations on the fleet's Redis by operation (rate, lists, heartbeat, connect) and result",
        None,
        MetricType::Counter,
    )?;
    for ((op, result), n) in link.ops() {
        let labels = vec![("op", op.to_owned()), ("result", result.to_owned())];
        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}
