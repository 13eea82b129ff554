//! taskmaster's own process, as every Prometheus client library exports it (`process_*`),
//! read from `/proc/self`. A figure that cannot be read is left out, never made up.

use super::{Family, Kind, Sample};

/// The `process_*` families that could be read.
pub(super) fn families() -> Vec<Family> {
    let mut families = Vec::new();
    let mut one = |name, help, kind, unit, value: Option<f64>| {
        if let Some(value) = value {
            families.push(Family {
                name,
                help,
                kind,
                unit,
                samples: vec![Sample {
                    labels: String::new(),
                    value,
                }],
            });
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // The fields after the command, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|stat| stat.rsplit_once(") "))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // `man 5 proc`: field N (1-based, the pid being 1 and the command 2) is fields[N - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let cpu = field(14)
        .zip(field(15))
        .map(|(user, system)| (user + system) as f64 / ticks);
    one(
        "process_cpu_seconds_total",
        "User and system CPU time spent by taskmaster, in seconds.",
        Kind::Counter,
        Some("seconds"),
        cpu,
    );
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
        stat.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|secs| secs.trim().parse::<u64>().ok())
    });
    let start = field(22)
        .zip(boot)
        .map(|(since_boot, boot)| boot as f64 + since_boot as f64 / ticks);
    one(
        "process_start_time_seconds",
        "When taskmaster started, as Unix time.",
        Kind::Gauge,
        Some("seconds"),
        start,
    );
    one(
        "process_virtual_memory_bytes",
        "taskmaster's virtual memory size, in bytes.",
        Kind::Gauge,
        Some("bytes"),
        field(23).map(|bytes| bytes as f64),
    );
    let page = rustix::param::page_size() as f64;
    one(
        "process_resident_memory_bytes",
        "taskmaster's resident memory size, in bytes.",
        Kind::Gauge,
        Some("bytes"),
        field(24).map(|pages| pages as f64 * page),
    );
    let open = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|fds| fds.count() as f64);
    one(
        "process_open_fds",
        "Descriptors taskmaster has open.",
        Kind::Gauge,
        None,
        open,
    );
    let max = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map(|max| max as f64);
    one(
        "process_max_fds",
        "The most descriptors taskmaster may open (its soft RLIMIT_NOFILE).",
        Kind::Gauge,
        None,
        max,
    );
    families
}
