//! Benchmark of cluster singleton failover (`cargo bench -p taskmaster --bench failover`; about
//! 3 minutes, most of it the 15 s lease; `-- --quick` runs 3 rounds per lease instead of 10,
//! `-- --ttl 2` one lease only). The figure is the one a user of a `singleton: true` program
//! waits through when its holder's host dies: from the holder's taskmaster SIGKILLed until the
//! program has started on another node.
//!
//! Setup, per lease (ttl 2 s, then 15 s): one etcd member on loopback (Debian's etcd-server
//! 3.4.23, started by the integration tests' harness `tests/support/etcd.rs`, included here, on
//! free ports, never 2379/2380), and three nodes `a`, `b`, `c`, each `taskmaster run --no-shell
//! -c CONFIG` of its own folder with `cluster: {etcd: [URL], node: NODE, ttl: TTL, prefix:
//! /bench-ttlNs}` and one program `leader`, `singleton: true`, `starttime: 0`, `stoptime` inside
//! the lease's stop window (7/30 of the ttl: 300ms at 2 s, 2s at 15 s). The program is a shell
//! script (`sh leader.sh NODE LEDGER`) that appends `start TOKEN NODE NS PID` to a ledger
//! shared by the three nodes when it starts, and `stop TOKEN NODE NS PID` when SIGTERM stops it:
//! TOKEN is its `TASKMASTER_FENCING_TOKEN`, NS the wall clock in nanoseconds (`date +%s%N`; all
//! on one host, so comparable with the bench's own `SystemTime`), PID its pid (`$$`).
//!
//! Each round (10 per lease): after a wait that puts the kill somewhere in the holder's renewal
//! cycle (a different tenth of it each round, a third with `--quick`: see `kill_delays`), the
//! holder is the node of the ledger's last start line, whose program must be alive; its
//! taskmaster is SIGKILLed by pid, the wall clock read just before. Then, every millisecond,
//! the bench looks at the old program in /proc and at the ledger, until a start line by another
//! node appears. Figures:
//!
//! - **failover**: that line's NS minus the time of the kill.
//! - **old program dead**: when /proc first showed the killed holder's program gone (by the same
//!   pid and start time; a zombie counts as gone). Its guard (`taskmaster guard`, reading a pipe
//!   from the killed taskmaster) SIGKILLs its process group when the pipe closes, so this should
//!   be milliseconds; the guard's own line in the killed node's output is checked too.
//! - **overlap**: how long the old program was seen alive after the new one's start line was
//!   written (the last poll that saw it alive, minus the new line's NS). Must be 0 every time;
//!   anything else is a taskmaster bug and is printed as such. Independently, every start line
//!   the bench reads is checked against every earlier start line's process: none may still be
//!   alive (same pid and start time) when a new one is seen.
//!
//! Then the killed node is started again (same folder, same configuration) and the round ends
//! once its `ctl status` shows the program standing by, held by the new holder in its term
//! (`rejoin`, printed too), so three nodes are always there when the next holder is killed.
//!
//! The baseline that explains the figure: the lease's promise, ttl + ttl/3 (README, "Cluster
//! singletons"). Renewals go every ttl/3, so the holder is killed between 0 and ttl/3 after its
//! last renewal, and etcd forgets the lease ttl after it *received* that renewal: 2ttl/3 to ttl
//! after the kill. etcd 3.4 looks for expired leases every 500 ms, then revokes them (deleting
//! the key), the standing-by nodes see the deletion on their watch, one creates the key and
//! starts the program: from about 2ttl/3 to ttl + 0.5 s, against the promise of ttl + ttl/3.
//! When the renewal was received, and so the sweep's delay, cannot be seen from outside: the
//! bench prints the bound and the range, not a split of the figure.
//!
//! Every process the bench starts is ended by its pid: each taskmaster and etcd is a
//! [`support::Process`] (SIGTERM, then the tree frozen and SIGKILLed, when dropped, on a panic
//! too), each taskmaster gets SIGTERM should the bench die (PR_SET_PDEATHSIG), and the bench is
//! a child subreaper: a killed node's orphans (its guard, its program) come to it, are tracked
//! (SIGKILLed on drop if alive) and reaped by pid. Figures are printed, never asserted; the exit
//! status is non-zero when a round failed or an overlap was seen.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use taskmaster_config::ClusterSpec;

#[path = "../tests/support/mod.rs"]
mod support;

use support::etcd::{self, EtcdCluster};
use support::{descendants, proc_stat, run_to_completion, send_signal, Process};

/// Rounds per lease, and with `--quick`.
const ROUNDS: usize = 10;
const QUICK_ROUNDS: usize = 3;
/// The leases measured, each with a `stoptime` inside its stop window (7/30 of the ttl).
const LEASES: [(Duration, Duration); 2] = [
    (Duration::from_secs(2), Duration::from_millis(300)),
    (Duration::from_secs(15), Duration::from_secs(2)),
];
const NODES: [&str; 3] = ["a", "b", "c"];
/// Between two looks at the ledger and at /proc during a failover.
const POLL: Duration = Duration::from_millis(1);
/// Between two `ctl status` while waiting for a node to stand by.
const STATUS_POLL: Duration = Duration::from_millis(20);
/// For the first holder to start, and for a restarted node to stand by.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// For a killed node's orphans to be gone.
const ORPHAN_DEADLINE: Duration = Duration::from_secs(5);
/// etcd 3.4's lessor looks for expired leases this often.
const ETCD_SWEEP: Duration = Duration::from_millis(500);

/// The singleton: a line when it starts, one when SIGTERM stops it, and nothing else to do.
const PROGRAM: &str = r#"# The failover bench's singleton: sh leader.sh NODE LEDGER
node=$1 ledger=$2 sleeper=
stopped() {
    echo "stop $TASKMASTER_FENCING_TOKEN $node $(date +%s%N) $$" >> "$ledger"
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
    exit 0
}
trap stopped TERM
echo "start $TASKMASTER_FENCING_TOKEN $node $(date +%s%N) $$" >> "$ledger"
sleep 86400 &
sleeper=$!
wait "$sleeper"
"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rounds = if args.iter().any(|a| a == "--quick") {
        QUICK_ROUNDS
    } else {
        ROUNDS
    };
    let only_ttl: Option<u64> = args
        .iter()
        .position(|a| a == "--ttl")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.trim_end_matches('s').parse().ok());
    let leases: Vec<(Duration, Duration)> = match only_ttl {
        Some(secs) => LEASES
            .iter()
            .copied()
            .filter(|(ttl, _)| ttl.as_secs() == secs)
            .collect(),
        None => LEASES.to_vec(),
    };
    if leases.is_empty() {
        eprintln!("failover: --ttl takes 2 or 15");
        return ExitCode::FAILURE;
    }
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        eprintln!("failover: cannot become a child subreaper: {e}");
        return ExitCode::FAILURE;
    }
    let taskmaster = PathBuf::from(env!("CARGO_BIN_EXE_taskmaster"));
    let etcd_bin = etcd::binary();
    let etcd_bin = etcd_bin.canonicalize().unwrap_or(etcd_bin);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "cluster singleton failover: {cpus} CPU(s), load average {} at the start",
        load_average()
    );
    println!("  taskmaster: {}", taskmaster.display());
    println!("  etcd:       {} ({})", etcd_bin.display(), etcd_version());

    let dir = tempfile::Builder::new()
        .prefix("taskmaster-bench-failover-")
        .tempdir()
        .expect("create a temporary folder");
    let etcd = EtcdCluster::start(dir.path(), 1);
    let endpoint = etcd.endpoint(0);
    println!("  etcd member: {endpoint} (one member, loopback)");

    let mut scenarios = Vec::new();
    for (ttl, stoptime) in leases {
        let scenario = run_scenario(&taskmaster, dir.path(), &endpoint, ttl, stoptime, rounds);
        scenarios.push(scenario);
    }
    drop(etcd);
    let leftovers = reap_all_children();

    print_summary(&scenarios);
    println!("load average at the end: {}", load_average());
    if !leftovers.is_empty() {
        println!("processes left under the bench, SIGKILLed by pid: {leftovers:?}");
    }
    let clean = scenarios.iter().all(Scenario::is_clean) && leftovers.is_empty();
    if clean {
        ExitCode::SUCCESS
    } else {
        eprintln!("failover: a round failed or an overlap was seen (see above)");
        ExitCode::FAILURE
    }
}

// ---- one lease ----------------------------------------------------------------------------

/// One lease's rounds.
struct Scenario {
    ttl: Duration,
    stoptime: Duration,
    rounds: Vec<Result<Round, String>>,
    /// Every overlap or unexpected line the ledger showed, in words.
    anomalies: Vec<String>,
    /// The ledger's stop lines while rounds ran (a SIGKILLed holder writes none).
    stops_during_rounds: usize,
}

impl Scenario {
    fn spec(&self) -> ClusterSpec {
        ClusterSpec {
            endpoints: Vec::new(),
            node: String::new(),
            prefix: String::new(),
            ttl: self.ttl,
        }
    }

    fn succeeded(&self) -> impl Iterator<Item = &Round> {
        self.rounds.iter().filter_map(|r| r.as_ref().ok())
    }

    fn is_clean(&self) -> bool {
        self.anomalies.is_empty()
            && self
                .rounds
                .iter()
                .all(|r| r.as_ref().is_ok_and(|r| r.overlap_ms == 0.0))
    }
}

/// One failover's figures.
struct Round {
    killed: String,
    killed_token: i64,
    killed_program: u32,
    new_node: String,
    new_token: i64,
    /// From the kill to the new start line's timestamp.
    failover_ms: f64,
    /// From the kill to the bench reading that line.
    seen_ms: f64,
    /// From the kill to /proc first showing the old program gone (an upper bound).
    old_dead_ms: f64,
    /// The new start minus the last time the old program was seen alive; 0 when it was not.
    overlap_ms: f64,
    /// The killed node's output has its guard's `SIGKILL to process group PID` line.
    guard_said: bool,
    /// From the restart of the killed node until its status shows the new holder.
    rejoin_ms: f64,
    /// The wait before the kill, once the three nodes stood by.
    delay_ms: f64,
}

fn run_scenario(
    taskmaster: &Path,
    root: &Path,
    endpoint: &str,
    ttl: Duration,
    stoptime: Duration,
    rounds: usize,
) -> Scenario {
    let mut scenario = Scenario {
        ttl,
        stoptime,
        rounds: Vec::new(),
        anomalies: Vec::new(),
        stops_during_rounds: 0,
    };
    let spec = scenario.spec();
    println!(
        "\nttl {}: renewals every {}, renew deadline {}, kill deadline {}, stoptime {}; \
         bound ttl + ttl/3 = {}; lease end after a kill: {} to {}, then etcd's sweep (every {}): \
         {rounds} rounds",
        fmt_s(ms(ttl)),
        fmt_s(ms(spec.renew_period())),
        fmt_s(ms(spec.renew_deadline())),
        fmt_s(ms(spec.kill_deadline())),
        fmt_s(ms(stoptime)),
        fmt_s(ms(ttl + ttl / 3)),
        fmt_s(ms(ttl * 2 / 3)),
        fmt_s(ms(ttl)),
        fmt_s(ms(ETCD_SWEEP)),
    );
    let dir = root.join(format!("ttl{}s", ttl.as_secs()));
    let prefix = format!("/bench-ttl{}s", ttl.as_secs());
    let mut cluster = match Cluster::start(taskmaster, &dir, endpoint, &prefix, ttl, stoptime) {
        Ok(cluster) => cluster,
        Err(e) => {
            println!("  FAILED to start the nodes: {e}");
            scenario.rounds.push(Err(e));
            return scenario;
        }
    };
    let delays = kill_delays(rounds, spec.renew_period(), ttl.as_secs());
    for (number, delay) in (1..=rounds).zip(delays) {
        let round = cluster.failover(ttl, delay);
        match &round {
            Ok(r) => println!("  round {number:>2}: {}", r.describe()),
            Err(e) => println!("  round {number:>2}: FAILED: {e}"),
        }
        let failed = round.is_err();
        scenario.rounds.push(round);
        if failed {
            // Which node runs what is no longer known: the next rounds would measure nothing.
            break;
        }
    }
    cluster.ledger.scan();
    scenario.anomalies = cluster.ledger.anomalies.clone();
    scenario.stops_during_rounds = cluster.ledger.stops;
    for anomaly in &scenario.anomalies {
        println!("  ANOMALY: {anomaly}");
    }
    let ledger_path = cluster.ledger.path.clone();
    cluster.finish();
    if !scenario.is_clean() {
        // Kept for whoever looks into it: the ledger, each node's event log and output.
        let kept = std::env::temp_dir().join(format!(
            "taskmaster-bench-failover-ttl{}s-{}",
            ttl.as_secs(),
            std::process::id()
        ));
        if fs::rename(&dir, &kept).is_ok() {
            println!("  kept the nodes' folders in {}", kept.display());
        }
    } else if let Ok(text) = fs::read_to_string(&ledger_path) {
        println!(
            "  ledger: {} start and {} stop lines in all (the stops: the nodes' shutdown)",
            text.lines().filter(|l| l.starts_with("start ")).count(),
            text.lines().filter(|l| l.starts_with("stop ")).count()
        );
    }
    scenario
}

impl Round {
    fn describe(&self) -> String {
        format!(
            "after {}, killed {} (program pid {}, term {}) -> {} started it (term {}) {} after \
             the kill (seen {}); old program dead after {} ({}), overlap {}; {} rejoined in {}",
            fmt_s(self.delay_ms),
            self.killed,
            self.killed_program,
            self.killed_token,
            self.new_node,
            self.new_token,
            fmt_s(self.failover_ms),
            fmt_s(self.seen_ms),
            fmt_ms(self.old_dead_ms),
            if self.guard_said {
                "its guard said so"
            } else {
                "NO guard line"
            },
            fmt_ms(self.overlap_ms),
            self.killed,
            fmt_s(self.rejoin_ms),
        )
    }
}

// ---- the nodes ----------------------------------------------------------------------------

/// A node: its folder and configuration, and its taskmaster.
struct Node {
    name: &'static str,
    dir: PathBuf,
    config: PathBuf,
    /// Its taskmaster's output (the guards' lines too).
    output: PathBuf,
    taskmaster: PathBuf,
    process: Process,
}

impl Node {
    fn spawn(
        taskmaster: &Path,
        dir: &Path,
        config: &Path,
        output: &Path,
    ) -> Result<Process, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(output)
            .map_err(|e| format!("cannot open {}: {e}", output.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot duplicate a descriptor: {e}"))?;
        let mut command = Command::new(taskmaster);
        command
            .args(["run", "--no-shell", "-c"])
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Should the bench itself die, each node gets a SIGTERM and shuts down.
        // SAFETY: between fork and exec only the prctl(2) system call runs: async-signal-safe,
        // and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                    .map_err(std::io::Error::from)
            });
        }
        Ok(Process::spawn(command).graceful(Signal::TERM))
    }

    fn restart(&mut self) -> Result<(), String> {
        // The old one is dead and reaped; dropping it kills what it tracked, if still there.
        self.process = Node::spawn(&self.taskmaster, &self.dir, &self.config, &self.output)?;
        Ok(())
    }

    /// `ctl -c CONFIG status`'s output (its exit status is 3 while the program is STOPPED).
    fn status(&self) -> String {
        let mut command = Command::new(&self.taskmaster);
        command
            .args(["ctl", "-c"])
            .arg(&self.config)
            .arg("status")
            .current_dir(&self.dir);
        let output = run_to_completion(command, support::TIMEOUT);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Whether its status shows the program standing by, held by `holder` in `term`.
    fn stands_by(&self, holder: &str, term: i64) -> bool {
        let status = self.status();
        status.contains(&format!("standby: held by {holder} "))
            && status.contains(&format!("(term {term})"))
    }
}

/// The three nodes of one lease, and their shared ledger. Dropped, every taskmaster gets
/// SIGTERM and is waited for (then SIGKILLed with its tree, by pid), on a panic too.
struct Cluster {
    nodes: Vec<Node>,
    ledger: Ledger,
}

impl Cluster {
    fn start(
        taskmaster: &Path,
        dir: &Path,
        endpoint: &str,
        prefix: &str,
        ttl: Duration,
        stoptime: Duration,
    ) -> Result<Cluster, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let script = dir.join("leader.sh");
        fs::write(&script, PROGRAM).map_err(|e| format!("cannot write the program: {e}"))?;
        let ledger = dir.join("ledger");
        fs::write(&ledger, "").map_err(|e| format!("cannot create the ledger: {e}"))?;
        let mut nodes = Vec::new();
        for name in NODES {
            let node_dir = dir.join(name);
            fs::create_dir_all(&node_dir)
                .map_err(|e| format!("cannot create {}: {e}", node_dir.display()))?;
            let config = node_dir.join("taskmaster.yaml");
            let text = config_text(name, endpoint, prefix, ttl, stoptime, &script, &ledger);
            fs::write(&config, text)
                .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            let output = node_dir.join("taskmaster.out");
            let process = Node::spawn(taskmaster, &node_dir, &config, &output)?;
            nodes.push(Node {
                name,
                dir: node_dir,
                config,
                output,
                taskmaster: taskmaster.to_path_buf(),
                process,
            });
        }
        let mut cluster = Cluster {
            nodes,
            ledger: Ledger::new(ledger),
        };
        // The first holder, whoever it is, then the two others standing by.
        let started = Instant::now();
        let first = loop {
            cluster.ledger.scan();
            if let Some(start) = cluster.ledger.starts.first() {
                break start.clone();
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(format!(
                    "no node started the program within {READY_DEADLINE:?}; {}",
                    cluster.outputs()
                ));
            }
            sleep(STATUS_POLL);
        };
        for i in 0..cluster.nodes.len() {
            if cluster.nodes[i].name != first.node {
                cluster.wait_standing_by(i, &first.node, first.token)?;
            }
        }
        println!(
            "  nodes a, b, c up; {} holds the program (term {}), {} ms after the start",
            first.node,
            first.token,
            started.elapsed().as_millis()
        );
        Ok(cluster)
    }

    /// Kills the holder, measures until another node starts the program, restarts the killed
    /// node and waits until it stands by.
    fn failover(&mut self, ttl: Duration, delay: Duration) -> Result<Round, String> {
        // Where in the holder's renewal cycle the kill lands (see `kill_delays`).
        sleep(delay);
        self.ledger.scan();
        let holder = self
            .ledger
            .starts
            .last()
            .cloned()
            .ok_or("the ledger has no start line")?;
        if !holder.alive() {
            return Err(format!(
                "the last start line's program (pid {}, {}) is not running",
                holder.pid, holder.node
            ));
        }
        let index = self
            .nodes
            .iter()
            .position(|n| n.name == holder.node)
            .ok_or_else(|| format!("no node {}", holder.node))?;
        let starts_before = self.ledger.starts.len();
        let stops_before = self.ledger.stops;
        let node = &mut self.nodes[index];
        let tm_pid = node.process.pid();
        // Its guard and program become the bench's when it dies: tracked (SIGKILLed on drop if
        // still there) and reaped by pid.
        let orphans = descendants(tm_pid);
        for &pid in &orphans {
            node.process.track(pid);
        }

        let kill_ns = wall_ns();
        let killed_at = Instant::now();
        send_signal(tm_pid, Signal::KILL).map_err(|e| {
            format!(
                "cannot SIGKILL {}'s taskmaster (pid {tm_pid}): {e}",
                holder.node
            )
        })?;

        let deadline = ttl * 2 + Duration::from_secs(10);
        let mut last_alive: Option<Duration> = None;
        let mut dead_at: Option<Duration> = None;
        let new = loop {
            let now = killed_at.elapsed();
            if dead_at.is_none() {
                if holder.alive() {
                    last_alive = Some(now);
                } else {
                    dead_at = Some(now);
                }
            }
            self.ledger.scan();
            if let Some(new) = self.ledger.starts[starts_before..]
                .iter()
                .find(|s| s.node != holder.node)
            {
                break new.clone();
            }
            if now > deadline {
                return Err(format!(
                    "no other node started the program within {deadline:?} of the kill of {}; {}",
                    holder.node,
                    self.outputs()
                ));
            }
            sleep(POLL);
        };
        let seen = killed_at.elapsed();
        // An old program still alive now overlaps: how long, until it dies.
        while dead_at.is_none() {
            let now = killed_at.elapsed();
            if holder.alive() {
                last_alive = Some(now);
            } else {
                dead_at = Some(now);
            }
            if now > deadline + ORPHAN_DEADLINE {
                break;
            }
            sleep(POLL);
        }
        let node = &mut self.nodes[index];
        node.process.wait_exit(support::TIMEOUT);
        let unreaped = reap(&orphans);
        let guard_said = fs::read_to_string(&node.output).is_ok_and(|out| {
            out.lines()
                .filter(|l| l.contains("taskmaster guard:"))
                .any(|l| l.ends_with(&format!("SIGKILL to process group {}", holder.pid)))
        });

        let failover_ms = (new.ns - kill_ns) as f64 / 1e6;
        let overlap_ms = match last_alive {
            Some(alive) => {
                let alive_ns = kill_ns + alive.as_nanos() as i128;
                ((alive_ns - new.ns) as f64 / 1e6).max(0.0)
            }
            None => 0.0,
        };
        if overlap_ms > 0.0 {
            self.ledger.anomalies.push(format!(
                "OVERLAP: {}'s program (pid {}, term {}) was still alive {} after {} started it \
                 (pid {}, term {}); it was killed {} after the kill of its taskmaster",
                holder.node,
                holder.pid,
                holder.token,
                fmt_ms(overlap_ms),
                new.node,
                new.pid,
                new.token,
                dead_at.map_or("never seen dead".into(), |d| fmt_ms(ms(d))),
            ));
        }
        if new.token <= holder.token {
            self.ledger.anomalies.push(format!(
                "the new holder's term {} is not above the old one's {}",
                new.token, holder.token
            ));
        }
        if !unreaped.is_empty() {
            self.ledger.anomalies.push(format!(
                "{}'s orphans {unreaped:?} were still there {ORPHAN_DEADLINE:?} after the failover",
                holder.node
            ));
        }

        // Three nodes again: the killed one back, standing by.
        let restarted_at = Instant::now();
        self.nodes[index].restart()?;
        self.wait_standing_by(index, &new.node, new.token)?;
        let rejoin = restarted_at.elapsed();
        self.ledger.scan();
        let extra_starts = self.ledger.starts.len() - starts_before - 1;
        if extra_starts > 0 {
            self.ledger.anomalies.push(format!(
                "{extra_starts} more start line(s) than the failover's in the round that killed {}",
                holder.node
            ));
        }
        if self.ledger.stops > stops_before {
            self.ledger.anomalies.push(format!(
                "{} stop line(s) in the round that killed {}: a holder was stopped",
                self.ledger.stops - stops_before,
                holder.node
            ));
        }
        Ok(Round {
            killed: holder.node,
            killed_token: holder.token,
            killed_program: holder.pid,
            new_node: new.node,
            new_token: new.token,
            failover_ms,
            seen_ms: ms(seen),
            old_dead_ms: dead_at.map_or(f64::NAN, ms),
            overlap_ms,
            guard_said,
            rejoin_ms: ms(rejoin),
            delay_ms: ms(delay),
        })
    }

    /// Waits until node `index`'s status shows the program held by `holder` in `term`.
    fn wait_standing_by(&mut self, index: usize, holder: &str, term: i64) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.ledger.scan();
            if self.nodes[index].stands_by(holder, term) {
                return Ok(());
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(format!(
                    "{} does not stand by (held by {holder}, term {term}) within \
                     {READY_DEADLINE:?}; its status: {:?}; {}",
                    self.nodes[index].name,
                    self.nodes[index].status(),
                    self.outputs()
                ));
            }
            sleep(STATUS_POLL);
        }
    }

    /// The end of each node's output, for a failure's message.
    fn outputs(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let out = fs::read_to_string(&node.output).unwrap_or_default();
            let lines: Vec<&str> = out.lines().collect();
            let _ = write!(
                text,
                "\n  --- {} (taskmaster pid {}), last lines of {}:\n  {}",
                node.name,
                node.process.pid(),
                node.output.display(),
                lines[lines.len().saturating_sub(5)..].join("\n  ")
            );
        }
        text
    }

    /// SIGTERM to every node at once, so that they shut down together (each would otherwise
    /// take the program over from the one before), then each waited for by its `Process`.
    fn finish(self) {
        for node in &self.nodes {
            let _ = send_signal(node.process.pid(), Signal::TERM);
        }
        drop(self);
    }
}

/// A node's configuration.
fn config_text(
    node: &str,
    endpoint: &str,
    prefix: &str,
    ttl: Duration,
    stoptime: Duration,
    script: &Path,
    ledger: &Path,
) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""));
    let word = |p: &Path| format!("'{}'", p.to_string_lossy().replace('\'', r"'\''"));
    let cmd = format!("sh {} {node} {}", word(script), word(ledger));
    format!(
        "logfile: events.log\n\
         cluster:\n  etcd: [{}]\n  node: {node}\n  ttl: {}s\n  prefix: {}\n\
         programs:\n  leader:\n    cmd: {}\n    singleton: true\n    starttime: 0\n    \
         stoptime: {}ms\n    autorestart: unexpected\n",
        quote(endpoint),
        ttl.as_secs(),
        quote(prefix),
        quote(&cmd),
        stoptime.as_millis(),
    )
}

/// The wait before each round's kill, once the previous round is over: each from its own
/// stratum of `[0, period)` (the renewal period), in a shuffled order, so that the kills land
/// across the whole renewal cycle. Without them the rounds, each about a ttl long (three
/// renewal periods) plus a few ms, phase-lock onto the renewals: every kill then lands just
/// after one, the slowest case (measured so: 14.93 to 15.35 s at ttl 15 s, 1.93 to 2.44 s at
/// 2 s). A fixed seed: the same waits each run.
fn kill_delays(rounds: usize, period: Duration, seed: u64) -> Vec<Duration> {
    // xorshift64*.
    let mut state = 0x9E37_79B9_7F4A_7C15 ^ seed;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut strata: Vec<usize> = (0..rounds).collect();
    for i in (1..strata.len()).rev() {
        let j = (next() * (i + 1) as f64) as usize;
        strata.swap(i, j.min(i));
    }
    strata
        .into_iter()
        .map(|stratum| period.mul_f64((stratum as f64 + next()) / rounds as f64))
        .collect()
}

// ---- the ledger ---------------------------------------------------------------------------

/// A start line, and its process as /proc showed it when the line was read.
#[derive(Clone)]
struct Start {
    token: i64,
    node: String,
    /// Wall clock, nanoseconds since the epoch.
    ns: i128,
    pid: u32,
    /// The process's start time (/proc), to tell it from a later process of the same pid;
    /// `None` if it was already gone when the line was read.
    starttime: Option<u64>,
}

impl Start {
    /// Whether its process still runs (same pid and start time, not a zombie).
    fn alive(&self) -> bool {
        let Some(starttime) = self.starttime else {
            return false;
        };
        proc_stat(self.pid).is_some_and(|stat| stat.starttime == starttime && stat.state != 'Z')
    }
}

/// The file the three nodes' programs append to, read as it grows.
struct Ledger {
    path: PathBuf,
    /// How much of it has been read (whole lines only).
    offset: usize,
    starts: Vec<Start>,
    stops: usize,
    anomalies: Vec<String>,
}

impl Ledger {
    fn new(path: PathBuf) -> Ledger {
        Ledger {
            path,
            offset: 0,
            starts: Vec::new(),
            stops: 0,
            anomalies: Vec::new(),
        }
    }

    /// Reads the new whole lines. Each start line is checked: no earlier start's process may
    /// still be alive when it is read.
    fn scan(&mut self) {
        let Ok(bytes) = fs::read(&self.path) else {
            return;
        };
        let Some(end) = bytes[self.offset.min(bytes.len())..]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| self.offset + i + 1)
        else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes[self.offset..end]).into_owned();
        self.offset = end;
        for line in text.lines() {
            match parse_line(line) {
                Some(("start", token, node, ns, pid)) => {
                    let start = Start {
                        token,
                        node,
                        ns,
                        pid,
                        starttime: proc_stat(pid).map(|stat| stat.starttime),
                    };
                    for earlier in self.starts.iter().filter(|s| s.alive()) {
                        self.anomalies.push(format!(
                            "OVERLAP: {}'s program (pid {}, term {}) still runs as {}'s start \
                             (pid {}, term {}) is read",
                            earlier.node,
                            earlier.pid,
                            earlier.token,
                            start.node,
                            start.pid,
                            start.token
                        ));
                    }
                    self.starts.push(start);
                }
                Some(("stop", ..)) => self.stops += 1,
                _ => self
                    .anomalies
                    .push(format!("the ledger has a line it cannot read: {line:?}")),
            }
        }
    }
}

/// `KIND TOKEN NODE NS PID`.
fn parse_line(line: &str) -> Option<(&str, i64, String, i128, u32)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [kind, token, node, ns, pid] = fields.as_slice() else {
        return None;
    };
    Some((
        kind,
        token.parse().ok()?,
        node.to_string(),
        ns.parse().ok()?,
        pid.parse().ok()?,
    ))
}

// ---- processes ----------------------------------------------------------------------------

/// Reaps the given orphans (the bench is their subreaper), waiting up to [`ORPHAN_DEADLINE`]
/// for each to end; returns those still there then (SIGKILLed when their node's `Process`
/// drops).
fn reap(pids: &[u32]) -> Vec<u32> {
    let started = Instant::now();
    let mut left: Vec<u32> = pids.to_vec();
    while !left.is_empty() && started.elapsed() < ORPHAN_DEADLINE {
        left.retain(|&pid| {
            let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                return false;
            };
            match rustix::process::waitpid(Some(target), WaitOptions::NOHANG) {
                Ok(Some(_)) => false,
                Ok(None) => true,
                // Not the bench's child (a process that ended before its parent was killed,
                // reaped by it): gone either way.
                Err(Errno::CHILD) => false,
                Err(_) => true,
            }
        });
        if !left.is_empty() {
            sleep(POLL);
        }
    }
    left
}

/// At the end, every `Process` dropped: reaps whatever is left under the bench, SIGKILLing by
/// pid anything still alive; returns those pids.
fn reap_all_children() -> Vec<u32> {
    let bench = std::process::id();
    let started = Instant::now();
    let mut killed = Vec::new();
    loop {
        // Bounded: each round reaps one child, or ends.
        while let Ok(Some(_)) | Err(Errno::INTR) = rustix::process::wait(WaitOptions::NOHANG) {}
        let live = descendants(bench);
        if live.is_empty() || started.elapsed() > ORPHAN_DEADLINE {
            break;
        }
        for &pid in &live {
            let _ = send_signal(pid, Signal::STOP);
        }
        for &pid in &live {
            let _ = send_signal(pid, Signal::KILL);
        }
        killed.extend(live);
        sleep(POLL);
    }
    killed.sort_unstable();
    killed.dedup();
    killed
}

// ---- the summary --------------------------------------------------------------------------

fn print_summary(scenarios: &[Scenario]) {
    println!(
        "\nsummary (failover: the holder's taskmaster SIGKILLed -> the program started by \
         another node)"
    );
    println!(
        "| ttl | bound: ttl + ttl/3 | failovers | failover median | min | max | within the bound \
         | old program dead after the kill (guard), max | overlap | rejoin median |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for scenario in scenarios {
        let bound = ms(scenario.ttl + scenario.ttl / 3);
        let ok: Vec<&Round> = scenario.succeeded().collect();
        let failovers = sorted(ok.iter().map(|r| r.failover_ms));
        let dead = sorted(ok.iter().map(|r| r.old_dead_ms));
        let rejoin = sorted(ok.iter().map(|r| r.rejoin_ms));
        let within = failovers.iter().filter(|&&f| f <= bound).count();
        let overlaps = ok.iter().filter(|r| r.overlap_ms > 0.0).count();
        let max_overlap = ok.iter().map(|r| r.overlap_ms).fold(0.0, f64::max);
        let guards = ok.iter().filter(|r| r.guard_said).count();
        println!(
            "| {} s | {} | {}/{} | {} | {} | {} | {within}/{} | {} ({guards}/{} guard lines) | {} \
             ({overlaps} of {}) | {} |",
            scenario.ttl.as_secs(),
            fmt_s(bound),
            ok.len(),
            scenario.rounds.len(),
            stat(&failovers, median),
            stat(&failovers, |v| v[0]),
            stat(&failovers, |v| v[v.len() - 1]),
            ok.len(),
            stat(&dead, |v| v[v.len() - 1]),
            ok.len(),
            fmt_ms(max_overlap),
            ok.len(),
            stat(&rejoin, median),
        );
    }
    for scenario in scenarios {
        let extra = if scenario.anomalies.is_empty() {
            "none".to_string()
        } else {
            scenario.anomalies.len().to_string()
        };
        println!(
            "ttl {} s: stoptime {}, anomalies (overlaps, unexpected lines) {extra}, stop lines \
             during the rounds {}",
            scenario.ttl.as_secs(),
            fmt_s(ms(scenario.stoptime)),
            scenario.stops_during_rounds
        );
    }
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `f` of the figures, formatted, or `-` when there are none.
fn stat(sorted: &[f64], f: fn(&[f64]) -> f64) -> String {
    if sorted.is_empty() {
        "-".to_string()
    } else {
        let value = f(sorted);
        if value >= 1000.0 {
            fmt_s(value)
        } else {
            fmt_ms(value)
        }
    }
}

// ---- small things -------------------------------------------------------------------------

fn wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Seconds, e.g. `2.31 s`.
fn fmt_s(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

/// Milliseconds, e.g. `3.1 ms`.
fn fmt_ms(ms: f64) -> String {
    if ms.is_nan() {
        "?".to_string()
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The 1-minute load average, from /proc/loadavg.
fn load_average() -> String {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().next().unwrap_or("?").to_string()
}

/// `etcd --version`'s first line.
fn etcd_version() -> String {
    let mut command = Command::new(etcd::binary());
    command.arg("--version");
    let output = run_to_completion(command, support::TIMEOUT);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or("?")
        .to_string()
}
