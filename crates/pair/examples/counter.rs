//! The counting demo of process pairs: prints 1, 2, 3, ... one number per period, and goes on
//! counting, without a gap, when its primary is killed or paused.
//!
//! ```text
//! cargo run -p taskmaster-pair --example counter -- --period 1s
//! kill -KILL <the pid on the last line>     # from another terminal, as often as you like
//! ```
//!
//! Both processes of the pair take the same arguments (the primary spawns its backup with
//! them). See `taskmaster_pair::demo`.
//!
//! This is the bare pair, with the library's defaults: the backup runs in a session of its
//! own, so a Ctrl-C in the terminal kills the primary alone and the backup counts on. End it
//! with `--last N`, or by killing both processes. `taskmaster pair-demo` runs the same counter
//! under a holder, and Ctrl-C ends it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use taskmaster_pair::{default_dir, demo, Options, Transport};

/// Counts, one number per period, as a process pair.
#[derive(Parser)]
struct Args {
    /// The time between two numbers: `1s`, `250ms`, `1.5s`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    period: Duration,
    /// The time between two heartbeats.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Heartbeats missed in a row before the backup takes over.
    #[arg(long, default_value_t = 3)]
    misses: u32,
    /// Takeovers at one checkpoint before it counts as poisoned.
    #[arg(long, default_value_t = 3)]
    poison_limit: u32,
    /// The pair's name (its files are named after it).
    #[arg(long, default_value = "counter")]
    name: String,
    /// The folder of the pair's files [default: $TMPDIR/NAME-pair].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Use UDP instead of a unix socket: the backup listens on this address.
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// With --udp, where the primary sends [default: the --udp address].
    #[arg(long, requires = "udp")]
    peer: Option<SocketAddr>,
    /// Stop the pair after this number [default: count for ever].
    #[arg(long)]
    last: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(|| default_dir(&args.name));
    let mut options = Options::new(args.name.clone(), dir);
    options.interval = args.interval;
    options.misses = args.misses;
    options.poison_limit = args.poison_limit;
    if let Some(listen) = args.udp {
        options.transport = Transport::Udp {
            listen,
            peer: args.peer.unwrap_or(listen),
        };
    }
    let last = args.last.unwrap_or(u64::MAX);
    match demo::counter_up_to(options, args.period, last, std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}[{}]: {error}", args.name, std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// `250ms`, `1s`, `1.5s`, `2m`: a number and a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: a unit is needed (ms, s, m)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number followed by a unit"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}
