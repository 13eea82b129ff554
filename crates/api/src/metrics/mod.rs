//! `GET /metrics`: the core's snapshot ([`Metrics`]) and taskmaster's own process figures as
//! Prometheus metrics, written in Prometheus' text format, or in OpenMetrics' when the scraper
//! asks for it (`Accept: application/openmetrics-text`).
//!
//! The metrics are built at each scrape from the snapshot, as plain data ([`Family`]), then
//! written by one of two small writers ([`text`]); nothing is kept between scrapes. Names,
//! types, units and help follow Prometheus' conventions (`_total` counters, `_seconds`,
//! `_bytes`, one `_info` gauge), so `promtool check metrics` passes on the output.

mod own;
mod text;

use taskmaster_core::{Health, Metrics, State};

pub use text::{content_type, write, Format};

/// A metric family: its samples, and what they mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name as Prometheus' text format writes it (a counter's ends with `_total`).
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// The unit its name ends with (`seconds`, `bytes`), for OpenMetrics' `# UNIT`.
    pub unit: Option<&'static str>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One value and its labels, written out once (`name="web",group="web"`, values escaped):
/// a scrape of a thousand processes writes tens of thousands of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: String,
    pub value: f64,
}

/// `pairs` as a sample's labels: `name="value"`, comma-separated, each value escaped.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        text::escape_label_into(&mut out, value);
        out.push('"');
    }
    out
}

/// `labels` and one more label after them.
fn and(labels: &str, name: &str, value: &str) -> String {
    let more = self::labels(&[(name, value)]);
    match labels.is_empty() {
        true => more,
        false => format!("{labels},{more}"),
    }
}

/// The families of a scrape: the snapshot's, then taskmaster's own. `wall` turns the
/// snapshot's monotonic times into Unix times.
pub fn families(metrics: &Metrics, wall: impl Fn(taskmaster_core::Time) -> f64) -> Vec<Family> {
    let family = |name, help, kind, unit| Family {
        name,
        help,
        kind,
        unit,
        samples: Vec::new(),
    };
    let mut build = family(
        "taskmaster_build_info",
        "The version of taskmaster running, as a label; always 1.",
        Kind::Gauge,
        None,
    );
    build.samples.push(Sample {
        labels: labels(&[("version", env!("CARGO_PKG_VERSION"))]),
        value: 1.0,
    });
    let mut state = family(
        "taskmaster_process_state",
        "The state each process is in, as a label (STOPPED, STARTING, RUNNING, BACKOFF, \
         STOPPING, EXITED, FATAL); always 1.",
        Kind::Gauge,
        None,
    );
    let mut up = family(
        "taskmaster_process_up",
        "Whether each process is RUNNING (1) or not (0).",
        Kind::Gauge,
        None,
    );
    let mut started = family(
        "taskmaster_process_start_time_seconds",
        "When the running child of each process was started, as Unix time.",
        Kind::Gauge,
        Some("seconds"),
    );
    let mut restarts = family(
        "taskmaster_process_restarts_total",
        "Children of each process spawned again after its first, since taskmaster started.",
        Kind::Counter,
        None,
    );
    let mut exits = family(
        "taskmaster_process_exits_total",
        "Children of each process that ended, by cause (exited, crashed, killed, hung, \
         unhealthy, not_ready, spawn_failed, stopped, killed_after_stoptime, killed_by_request).",
        Kind::Counter,
        None,
    );
    let mut output = family(
        "taskmaster_process_output_bytes_total",
        "Bytes each process (its health checks and hooks included) wrote on stdout and \
         stderr, since this taskmaster started.",
        Kind::Counter,
        Some("bytes"),
    );
    let mut healthy = family(
        "taskmaster_process_healthy",
        "For each process with a health check: 1 when its last checks passed, 0 otherwise.",
        Kind::Gauge,
        None,
    );
    for process in &metrics.processes {
        let info = &process.info;
        let who = labels(&[("name", &info.name), ("group", &info.group)]);
        state.samples.push(Sample {
            labels: and(&who, "state", info.state.name()),
            value: 1.0,
        });
        up.samples.push(Sample {
            labels: who.clone(),
            value: f64::from(u8::from(info.state == State::Running)),
        });
        if let (Some(_), Some(at)) = (info.pid, info.started_at) {
            started.samples.push(Sample {
                labels: who.clone(),
                value: wall(at),
            });
        }
        restarts.samples.push(Sample {
            labels: who.clone(),
            value: process.restarts as f64,
        });
        for (cause, count) in &process.exits {
            exits.samples.push(Sample {
                labels: and(&who, "cause", cause),
                value: *count as f64,
            });
        }
        for (stream, bytes) in ["stdout", "stderr"].into_iter().zip(process.output) {
            output.samples.push(Sample {
                labels: and(&who, "stream", stream),
                value: bytes as f64,
            });
        }
        if let Some(health) = &info.health {
            healthy.samples.push(Sample {
                labels: who.clone(),
                value: f64::from(u8::from(*health == Health::Healthy)),
            });
        }
    }
    let mut reloads = family(
        "taskmaster_reloads_total",
        "Reloads of the configuration: applied, or refused for a file with errors.",
        Kind::Counter,
        None,
    );
    for (result, count) in [
        ("applied", metrics.reloads.applied),
        ("refused", metrics.reloads.refused),
    ] {
        reloads.samples.push(Sample {
            labels: labels(&[("result", result)]),
            value: count as f64,
        });
    }
    let mut takeovers = family(
        "taskmaster_pair_takeovers_total",
        "Times a backup took over from a primary that died (run --pair).",
        Kind::Counter,
        None,
    );
    takeovers.samples.push(Sample {
        labels: String::new(),
        value: metrics.takeovers as f64,
    });
    let mut alerts = family(
        "taskmaster_alerts_sent_total",
        "Alert messages by destination: delivered (ok), or failed after their retries.",
        Kind::Counter,
        None,
    );
    for (destination, counts) in &metrics.alerts_sent {
        for (result, count) in [("ok", counts.sent), ("failed", counts.failed)] {
            alerts.samples.push(Sample {
                labels: labels(&[("destination", destination), ("result", result)]),
                value: count as f64,
            });
        }
    }
    let mut all = vec![
        build, state, up, started, restarts, exits, output, healthy, reloads, takeovers, alerts,
    ];
    all.extend(own::families());
    all
}
