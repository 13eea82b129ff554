//! Cluster singletons (README's "Cluster singletons"): taskmasters (nodes `a`, `b`, `c`) sharing
//! one etcd, and a `singleton: true` program that runs on the node holding its key, never on
//! two nodes at once, and moves when its holder dies, is cut off, pauses, stops or shuts down.
//!
//! Each test has a [`Cluster`] of its own: a real etcd (`support::etcd`, one member unless
//! said), and taskmasters each with its own sandbox, the same programs and a prefix of the
//! test's own, with the shortest lease, `ttl: 2s` (renewals every 667 ms, the renew deadline
//! at 1.33 s, the kill deadline at 1.8 s: a stop window of 466 ms, hence `stoptime: 300ms`).
//!
//! The singleton, `sched`, is [`SINGLETON_SH`]. It appends a line to a runs file the nodes
//! share when it starts (`start token=T node=N pid=P ...`) and when a TERM stops it
//! (`stop ...`; a SIGKILL writes nothing). At its start it also looks in /proc at the process
//! of every earlier run, and writes in `alive=` those still alive: the one moment that matters,
//! seen by the one process that knows it. [`Runs`] reads the same file from a thread of its
//! own, notes every run's pid for the [`Reaper`] (a SIGKILLed daemon's programs are orphans),
//! and watches the runs' processes. [`Runs::check_never_twice`], one rule for every test,
//! fails the test unless:
//!
//! - every run found no earlier run alive when it started (its own `alive=`);
//! - taken in the order they started, each run that wrote its stop did so before the next
//!   started (the intervals do not overlap);
//! - every run has a fencing token, tokens never go down, and a token is never seen on two
//!   nodes; a new holder's token is larger. (A token may repeat on its node: when a lease
//!   outlives an outage, which etcd's refresh of every lease at a leader's election allows,
//!   the holder starts its program again under the key it still holds.)
//! - its thread never saw two runs alive at once, nor, when it first saw a run start, a
//!   process left in an earlier run's process group.
//!
//! Every wait is for a condition, with [`TIMEOUT`]. Failover and handover times are measured
//! (from the runs file's clock readings) and printed (`--nocapture`), never asserted beyond
//! that deadline: what proves a clean handover did not wait for the lease to expire is etcd's
//! own record (the old node's presence key, on the same lease, still there).

use std::collections::HashSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;
use serde_json::{json, Value};

use crate::support::etcd::{self, EtcdCluster, Proxy};
use crate::support::{
    descendants, fixture_cmd, is_alive, proc_stat, send_signal, shell_quote, wait_dead, wait_until,
    wait_until_or_none, yaml_quote, Process, Reaper, Sandbox, StatusLine, Taskmaster, TIMEOUT,
};

/// The singleton program's name.
const SCHED: &str = "sched";

/// The lease of every test: the shortest taskmaster allows.
const TTL: &str = "2s";

/// How often the watcher looks at the runs file and at the runs' processes.
const WATCH_POLL: Duration = Duration::from_millis(10);

/// The bound a clean handover is held to: generous (the README promises about a second, and
/// prints show it), so that only a handover that waited for something is caught by it.
const HANDOVER_BOUND: Duration = Duration::from_secs(5);

/// What a holder that could not renew says when it stops its singleton (the core's words).
const RENEW_DEADLINE_STOP: &str = "the lease could not be renewed by its renew deadline";

/// The singleton: `sh singleton.sh RUNS NODE`. Records its start (with the earlier runs it
/// finds alive) and its stop by TERM in RUNS, and idles in between. It waits in `wait`, which
/// a trapped TERM interrupts at once, so that its stop is written however the TERM reaches it
/// (to it alone or to its group).
const SINGLETON_SH: &str = r#"# sched: a cluster singleton for the tests. Arguments: the runs file, the node's name.
runs=$1 node=$2
token=${TASKMASTER_FENCING_TOKEN:-none}
at=$(date +%s%N)
read -r _ _ _ _ pgid _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ starttime _ </proc/$$/stat
# Each earlier run whose process is alive now: not gone, not a zombie, and the same process
# (the same start time), not a reused pid.
alive=
if [ -f "$runs" ]; then
  while read -r kind _ _ pid start _; do
    [ "$kind" = start ] || continue
    pid=${pid#pid=} start=${start#starttime=}
    read -r _ _ state _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ since _ 2>/dev/null </proc/"$pid"/stat || continue
    case $state in Z | X | x) continue ;; esac
    [ "$since" = "$start" ] && alive="$alive,$pid"
  done <"$runs"
fi
echo "start token=$token node=$node pid=$$ starttime=$starttime pgid=$pgid at=$at alive=${alive#,}" >>"$runs"
sleeper=
trap 'kill $sleeper 2>/dev/null; echo "stop token=$token node=$node pid=$$ at=$(date +%s%N)" >>"$runs"; exit 0' TERM
while :; do
  sleep 10 &
  sleeper=$!
  wait $sleeper
done
"#;

/// Nanoseconds since the epoch, the clock of the runs file's `at=` (`date +%s%N`).
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_nanos() as i128
}

/// `ns` nanoseconds as milliseconds, for printing.
fn ms(ns: i128) -> String {
    format!("{:.0} ms", ns as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// One run of the singleton, from its `start` line and, if a TERM stopped it, its `stop` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// `TASKMASTER_FENCING_TOKEN`; `None` when the child did not get one.
    token: Option<i64>,
    node: String,
    pid: u32,
    /// Its start time in /proc (clock ticks after boot): with the pid, names this process.
    starttime: u64,
    pgid: u32,
    /// When it started, in nanoseconds since the epoch.
    started: i128,
    /// The earlier runs it found alive when it started (pids, comma-separated).
    alive_at_start: String,
    /// When its TERM trap wrote its stop, if it did.
    stopped: Option<i128>,
}

/// The `key=value` words of a line after its first, the kind.
fn line_fields(line: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let mut words = line.split(' ');
    let kind = words.next()?;
    let fields = words.filter_map(|word| word.split_once('=')).collect();
    Some((kind, fields))
}

fn field<'a>(fields: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A `start` line as a run (not yet stopped).
fn parse_start(line: &str) -> Option<Run> {
    let (kind, fields) = line_fields(line)?;
    if kind != "start" {
        return None;
    }
    Some(Run {
        token: field(&fields, "token")?.parse().ok(),
        node: field(&fields, "node")?.to_owned(),
        pid: field(&fields, "pid")?.parse().ok()?,
        starttime: field(&fields, "starttime")?.parse().ok()?,
        pgid: field(&fields, "pgid")?.parse().ok()?,
        started: field(&fields, "at")?.parse().ok()?,
        alive_at_start: field(&fields, "alive")?.to_owned(),
        stopped: None,
    })
}

/// The complete lines of the runs file as runs, in the order their starts were written, each
/// with its stop; lines the file should not hold are errors.
fn parse_runs(text: &str) -> Result<Vec<Run>, String> {
    let mut runs: Vec<Run> = Vec::new();
    for line in complete_lines(text) {
        if let Some(run) = parse_start(line) {
            runs.push(run);
            continue;
        }
        let stop = line_fields(line).filter(|(kind, _)| *kind == "stop");
        let pid = stop
            .as_ref()
            .and_then(|(_, f)| field(f, "pid")?.parse::<u32>().ok());
        let at = stop
            .as_ref()
            .and_then(|(_, f)| field(f, "at")?.parse::<i128>().ok());
        let run = pid.and_then(|pid| runs.iter_mut().rev().find(|run| run.pid == pid));
        match (run, at) {
            // A second TERM's stop, if a shell ever wrote one, changes nothing: the first
            // is when the run stopped.
            (Some(run), Some(at)) => {
                run.stopped.get_or_insert(at);
            }
            _ => return Err(format!("a line the runs file should not hold: {line:?}")),
        }
    }
    Ok(runs)
}

/// The lines of `text` that are whole (a line being appended is not yet).
fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let end = text.rfind('\n').map_or(0, |i| i + 1);
    text[..end].lines()
}

/// What is wrong with `runs` by the rules of the module docs, but for the watcher's own.
fn never_twice_problems(runs: &[Run]) -> Vec<String> {
    let mut problems = Vec::new();
    for run in runs {
        if !run.alive_at_start.is_empty() {
            problems.push(format!(
                "run pid {} on {} (token {:?}) found earlier runs alive when it started: pids {}",
                run.pid, run.node, run.token, run.alive_at_start
            ));
        }
        if run.token.is_none() {
            problems.push(format!(
                "run pid {} on {} has no TASKMASTER_FENCING_TOKEN",
                run.pid, run.node
            ));
        }
    }
    let mut by_start: Vec<&Run> = runs.iter().collect();
    by_start.sort_by_key(|run| run.started);
    for pair in by_start.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if let Some(stopped) = before.stopped {
            if stopped >= after.started {
                problems.push(format!(
                    "runs overlap: pid {} on {} stopped {} after pid {} on {} started",
                    before.pid,
                    before.node,
                    ms(stopped - after.started),
                    after.pid,
                    after.node
                ));
            }
        }
        match (before.token, after.token) {
            (Some(a), Some(b)) if b < a => problems.push(format!(
                "the fencing token went down: {a} (pid {} on {}) then {b} (pid {} on {})",
                before.pid, before.node, after.pid, after.node
            )),
            (Some(a), Some(b)) if a == b && before.node != after.node => problems.push(format!(
                "token {a} on two nodes: pid {} on {}, then pid {} on {}",
                before.pid, before.node, after.pid, after.node
            )),
            _ => {}
        }
    }
    problems
}

/// Whether `pid` is still the process that started at `starttime`, and alive (not a zombie).
fn same_alive(pid: u32, starttime: u64) -> bool {
    proc_stat(pid)
        .is_some_and(|stat| stat.starttime == starttime && !matches!(stat.state, 'Z' | 'X' | 'x'))
}

/// The live processes (pid, pgid) of the process groups `groups`.
fn live_members(groups: &HashSet<u32>) -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .filter(|(_, stat)| groups.contains(&stat.pgid) && !matches!(stat.state, 'Z' | 'X' | 'x'))
        .map(|(pid, stat)| (pid, stat.pgid))
        .collect()
}

/// What the watcher knows, shared with its thread.
#[derive(Debug, Default)]
struct Watched {
    /// How many complete lines of the runs file were taken in.
    lines: usize,
    /// Each run seen start, and whether it was seen dead since.
    runs: Vec<(Run, bool)>,
    /// What it saw that must never be.
    problems: Vec<String>,
    /// The pairs of runs (pids) already reported alive together.
    reported: HashSet<(u32, u32)>,
    /// Every run's pid, SIGKILLed with its group when the watcher drops.
    reaper: Reaper,
}

impl Watched {
    /// One look: the runs file's new lines, then the runs' processes.
    fn look(&mut self, path: &std::path::Path) {
        let text = fs::read_to_string(path).unwrap_or_default();
        let new: Vec<String> = complete_lines(&text)
            .skip(self.lines)
            .map(str::to_owned)
            .collect();
        for line in new {
            self.lines += 1;
            let Some(run) = parse_start(&line) else {
                continue;
            };
            self.reaper.track(run.pid);
            let earlier: HashSet<u32> = self.runs.iter().map(|(run, _)| run.pgid).collect();
            for (pid, pgid) in live_members(&earlier) {
                self.problems.push(format!(
                    "when run pid {} on {} was seen starting, pid {pid} of an earlier run's \
                     process group {pgid} was alive",
                    run.pid, run.node
                ));
            }
            self.runs.push((run, false));
        }
        for (run, dead) in &mut self.runs {
            if !*dead && !same_alive(run.pid, run.starttime) {
                *dead = true;
            }
        }
        let alive: Vec<&Run> = self
            .runs
            .iter()
            .filter(|(_, dead)| !dead)
            .map(|(run, _)| run)
            .collect();
        for (i, first) in alive.iter().enumerate() {
            for second in &alive[i + 1..] {
                if self.reported.insert((first.pid, second.pid)) {
                    self.problems.push(format!(
                        "two runs alive at once: pid {} on {} (token {:?}) and pid {} on {} \
                         (token {:?})",
                        first.pid, first.node, first.token, second.pid, second.node, second.token
                    ));
                }
            }
        }
    }
}

/// The runs file, and a thread that reads it as it grows and watches the runs' processes,
/// every [`WATCH_POLL`], until dropped; then it SIGKILLs every run's process group still there.
struct Runs {
    path: PathBuf,
    watched: Arc<Mutex<Watched>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Runs {
    /// Watches the runs file `path` (which need not exist yet).
    fn watch(path: PathBuf) -> Runs {
        let watched = Arc::new(Mutex::new(Watched::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (watched, stop, path) = (watched.clone(), stop.clone(), path.clone());
            // Bounded by the flag its drop sets.
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    watched.lock().expect("watcher lock").look(&path);
                    thread::sleep(WATCH_POLL);
                }
            })
        };
        Runs {
            path,
            watched,
            stop,
            thread: Some(thread),
        }
    }

    /// The runs so far, in the order their starts were written.
    fn read(&self) -> Vec<Run> {
        parse_runs(&self.raw()).unwrap_or_else(|e| panic!("{e}\n{}", self.text()))
    }

    fn raw(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The file, framed, for a failure's message.
    fn text(&self) -> String {
        format!(
            "--- the runs file ---\n{}--- end of the runs file ---",
            self.raw()
        )
    }

    /// Waits until a run satisfying `pred` has started, and returns the first such.
    fn wait_for(&self, what: &str, pred: impl Fn(&Run) -> bool) -> Run {
        wait_until_or_none(TIMEOUT, || self.read().into_iter().find(&pred))
            .unwrap_or_else(|| panic!("no run {what} within {TIMEOUT:?}\n{}", self.text()))
    }

    /// Everything that breaks the rule of the module docs, so far.
    fn problems(&self) -> Vec<String> {
        let mut problems = never_twice_problems(&self.read());
        problems.extend(self.watched.lock().expect("watcher lock").problems.clone());
        problems
    }

    /// Fails the test, saying what broke and showing the runs, unless the rule of the module
    /// docs holds for everything seen so far. Returns the runs.
    fn check_never_twice(&self) -> Vec<Run> {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "never twice is broken:\n{}\n{}",
            problems.join("\n"),
            self.text()
        );
        self.read()
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Ok(mut watched) = self.watched.lock() {
            watched.reaper.kill_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// How a node reaches etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Every member's endpoint.
    Direct,
    /// Through a [`Proxy`] of its own to member 0, passing.
    Proxy,
    /// Through a [`Proxy`] of its own to member 0, resetting every connection from the start.
    ProxyReset,
}

/// One taskmaster of the cluster. Fields drop in order: the daemon, its proxy, its sandbox.
struct Node {
    tm: Taskmaster,
    proxy: Option<Proxy>,
    /// Set once the test killed or shut down the daemon: it answers nothing any more, and its
    /// pid is not to be signalled again.
    gone: bool,
    name: &'static str,
    sandbox: Sandbox,
}

impl Node {
    fn proxy(&self) -> &Proxy {
        self.proxy
            .as_ref()
            .unwrap_or_else(|| panic!("node {} talks to etcd without a proxy", self.name))
    }
}

/// Who runs the singleton, once every node agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holding {
    /// The index of the node running it.
    node: usize,
    /// Its process.
    pid: u32,
    /// The term (fencing token) its key is held in.
    term: i64,
}

/// `standby: held by b since 10:41:03 (term 7812)`: the node and the term.
fn held_by(description: &str) -> Option<(String, i64)> {
    let rest = description.strip_prefix("standby: held by ")?;
    let node = rest.split(' ').next()?.to_owned();
    let term = rest
        .rsplit_once("(term ")?
        .1
        .strip_suffix(')')?
        .parse()
        .ok()?;
    Some((node, term))
}

/// A key's create revision and lease, as etcd has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRecord {
    create_revision: i64,
    lease: i64,
}

/// A 64-bit number of etcd's JSON gateway (written as a string; absent when 0).
fn gateway_number(value: &Value) -> i64 {
    match value {
        Value::String(text) => text.parse().unwrap_or(0),
        value => value.as_i64().unwrap_or(0),
    }
}

/// An etcd (one or three members), the taskmasters sharing it, the singleton's runs file and
/// its watcher. Dropped, it asks every daemon to shut down at once (they do so in parallel),
/// then each daemon is waited for, the runs' processes killed, etcd killed.
struct Cluster {
    nodes: Vec<Node>,
    runs: Runs,
    etcd: EtcdCluster,
    /// The keys' prefix, of this test only.
    prefix: String,
    /// The runs file, the singleton's script and etcd's data.
    shared: Sandbox,
}

impl Cluster {
    /// etcd with `members` members, and no node yet.
    fn new(test: &str, members: usize) -> Cluster {
        let shared = Sandbox::new();
        fs::write(shared.file("singleton.sh"), SINGLETON_SH).expect("write singleton.sh");
        let etcd = EtcdCluster::start(shared.path(), members);
        let runs = Runs::watch(shared.file("runs"));
        Cluster {
            nodes: Vec::new(),
            runs,
            etcd,
            prefix: format!("/taskmaster-tests/{test}-{}", std::process::id()),
            shared,
        }
    }

    /// etcd with `members` members and nodes `a`, `b`, `c` on every member's endpoint.
    fn three(test: &str, members: usize) -> Cluster {
        Cluster::three_linked(test, members, Link::Direct)
    }

    fn three_linked(test: &str, members: usize, link: Link) -> Cluster {
        let mut cluster = Cluster::new(test, members);
        for name in ["a", "b", "c"] {
            cluster.add_node(name, link, "");
        }
        cluster
    }

    /// Starts node `name` with `sched` and the programs of `more` (YAML lines under
    /// `programs:`); returns once its control socket answers.
    fn add_node(&mut self, name: &'static str, link: Link, more: &str) -> usize {
        let proxy = match link {
            Link::Direct => None,
            Link::Proxy | Link::ProxyReset => Some(Proxy::start(self.etcd.client_addr(0))),
        };
        if link == Link::ProxyReset {
            proxy.as_ref().expect("a proxy").reset();
        }
        let endpoints = match &proxy {
            Some(proxy) => vec![proxy.url()],
            None => self.etcd.endpoints(),
        };
        let endpoints: Vec<String> = endpoints.iter().map(|e| yaml_quote(e)).collect();
        let cmd = format!(
            "/bin/sh {} {} {name}",
            shell_quote(&self.shared.file_str("singleton.sh")),
            shell_quote(&self.shared.file_str("runs")),
        );
        let sandbox = Sandbox::new();
        sandbox.write_config(&format!(
            "cluster:\n  etcd: [{}]\n  node: {name}\n  prefix: {}\n  ttl: {TTL}\n\
             programs:\n  {SCHED}:\n    cmd: {}\n    singleton: true\n    starttime: 0\n    \
             stoptime: 300ms\n{more}",
            endpoints.join(", "),
            yaml_quote(&self.prefix),
            yaml_quote(&cmd),
        ));
        let tm = Taskmaster::start_serving(&sandbox, &[]);
        self.nodes.push(Node {
            tm,
            proxy,
            gone: false,
            name,
            sandbox,
        });
        self.nodes.len() - 1
    }

    /// The nodes whose daemon the test has not killed or shut down.
    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].gone)
            .collect()
    }

    /// `status sched` on node `i` (a pid shown is tracked).
    fn status(&mut self, i: usize) -> StatusLine {
        self.nodes[i].tm.status(SCHED)
    }

    /// One look at whether the nodes of `among` agree: exactly one RUNNING, with the pid of a
    /// run of the runs file, every other STOPPED and `standby: held by` it in one term, which
    /// is the run's token. Why not, when they do not.
    fn look_settled(&mut self, among: &[usize]) -> Result<Holding, String> {
        let statuses: Vec<(usize, StatusLine)> =
            among.iter().map(|&i| (i, self.status(i))).collect();
        let seen = || {
            statuses
                .iter()
                .map(|(i, s)| format!("{}: {} {}", self.nodes[*i].name, s.state, s.description))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let running: Vec<&(usize, StatusLine)> = statuses
            .iter()
            .filter(|(_, s)| s.state == "RUNNING")
            .collect();
        let [(holder, status)] = running[..] else {
            return Err(format!("not exactly one RUNNING: {}", seen()));
        };
        let pid = status
            .pid()
            .ok_or_else(|| format!("RUNNING without a pid: {}", seen()))?;
        let run = self
            .runs
            .read()
            .into_iter()
            .find(|run| run.pid == pid)
            .ok_or_else(|| format!("no run of pid {pid} in the runs file: {}", seen()))?;
        let term = run
            .token
            .ok_or_else(|| format!("run pid {pid} has no fencing token"))?;
        let name = self.nodes[*holder].name;
        if run.node != name {
            return Err(format!("pid {pid} is a run of {}, not {name}", run.node));
        }
        for (i, status) in &statuses {
            if i == holder {
                continue;
            }
            let held = held_by(&status.description);
            if status.state != "STOPPED" || held != Some((name.to_owned(), term)) {
                return Err(format!(
                    "{} does not say `standby: held by {name} ... (term {term})`: {}",
                    self.nodes[*i].name,
                    seen()
                ));
            }
        }
        Ok(Holding {
            node: *holder,
            pid,
            term,
        })
    }

    /// Waits until the nodes of `among` agree on who runs the singleton ([`Cluster::look_settled`]).
    fn wait_settled(&mut self, among: &[usize]) -> Holding {
        let mut last = String::new();
        let settled = wait_until_or_none(TIMEOUT, || match self.look_settled(among) {
            Ok(holding) => Some(holding),
            Err(why) => {
                last = why;
                None
            }
        });
        settled.unwrap_or_else(|| {
            panic!(
                "the nodes did not agree on a holder within {TIMEOUT:?}; last: {last}\n{}",
                self.runs.text()
            )
        })
    }

    /// Waits until node `i` says `standby: held by NODE` (any term), and returns that term.
    fn wait_standby_for(&mut self, i: usize, node: &str) -> i64 {
        let mut last = None;
        let term = wait_until_or_none(TIMEOUT, || {
            let status = self.status(i);
            let held = held_by(&status.description).filter(|(n, _)| n == node);
            last = Some(status);
            held.map(|(_, term)| term)
        });
        term.unwrap_or_else(|| {
            panic!(
                "{} never said `standby: held by {node}` within {TIMEOUT:?}; last: {last:?}",
                self.nodes[i].name
            )
        })
    }

    /// SIGKILLs node `i`'s daemon by its pid and reaps it; its children (the singleton, its
    /// guard) are tracked first, since they are orphans from then on.
    fn kill_daemon(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let pid = node.tm.daemon_pid();
        for child in descendants(pid) {
            node.tm.track(child);
        }
        node.tm.signal(Signal::KILL);
        node.tm.wait_exit(TIMEOUT);
        node.gone = true;
    }

    /// The create revision and lease of `key`, if it exists; read from a member that answers.
    fn key_record(&self, key: &str) -> Option<KeyRecord> {
        let body = json!({ "key": etcd::base64_encode(key.as_bytes()) });
        let mut last_error = String::new();
        let answer = wait_until_or_none(TIMEOUT, || {
            for i in self.etcd.running() {
                match self.etcd.gateway(i).call("kv/range", &body) {
                    Ok(answer) => return Some(answer),
                    Err(e) => last_error = e.to_string(),
                }
            }
            None
        })
        .unwrap_or_else(|| panic!("etcd did not answer a range of {key:?}: {last_error}"));
        let kv = answer.get("kvs")?.as_array()?.first()?;
        Some(KeyRecord {
            create_revision: gateway_number(kv.get("create_revision")?),
            lease: kv.get("lease").map_or(0, gateway_number),
        })
    }

    /// Node `name`'s presence key.
    fn presence_key(&self, name: &str) -> String {
        format!("{}/nodes/{name}", self.prefix)
    }

    /// The nodes that have a presence key now.
    fn present(&self) -> Vec<String> {
        let nodes = format!("{}/nodes/", self.prefix);
        self.etcd
            .get_prefix(&nodes)
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&nodes).map(str::to_owned))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.runs.text());
        }
        // Every daemon shuts down at once, from a network that works again; each is then
        // waited for as it drops.
        for node in &self.nodes {
            if let Some(proxy) = &node.proxy {
                proxy.heal();
            }
            if !node.gone {
                let pid = node.tm.daemon_pid();
                let _ = send_signal(pid, Signal::CONT);
                let _ = send_signal(pid, Signal::TERM);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn exactly_one_node_runs_the_singleton_and_all_statuses_agree() {
    let mut cluster = Cluster::three("agree", 1);
    let all = cluster.live();
    let holding = cluster.wait_settled(&all);
    let holder = cluster.nodes[holding.node].name;

    // `standby: held by b since 10:41:03 (term 7812)`, word for word.
    for i in all.iter().copied().filter(|&i| i != holding.node) {
        let status = cluster.status(i);
        let since = status
            .description
            .strip_prefix(&format!("standby: held by {holder} since "))
            .and_then(|rest| rest.strip_suffix(&format!(" (term {})", holding.term)))
            .unwrap_or_else(|| panic!("{}: {status:?}", cluster.nodes[i].name));
        let digits: Vec<&str> = since.split(':').collect();
        assert!(
            digits.len() == 3
                && digits
                    .iter()
                    .all(|d| d.len() == 2 && d.parse::<u8>().is_ok()),
            "`since` is not a time of day: {status:?}"
        );
    }

    // `ctl cluster` on each node: itself, the three nodes alive, the holder holding sched.
    for i in all.iter().copied() {
        let name = cluster.nodes[i].name;
        let mut last = String::new();
        let agreed = wait_until_or_none(TIMEOUT, || {
            let ran = cluster.nodes[i].sandbox.ctl(&["cluster"]);
            last = ran.output();
            let lines = ran.lines();
            let nodes: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|line| line.contains(" alive since "))
                .collect();
            let ok = ran.code == Some(0)
                && lines.first() == Some(&format!("node {name} (this taskmaster)").as_str())
                && nodes.len() == 3
                && ["a", "b", "c"].iter().all(|&node| {
                    let holds = if node == holder {
                        "holds sched"
                    } else {
                        "holds nothing"
                    };
                    nodes.iter().any(|line| {
                        line.split_whitespace().next() == Some(node) && line.ends_with(holds)
                    })
                })
                && lines.iter().any(|line| {
                    line.split_whitespace().next() == Some(SCHED)
                        && line.contains(&format!("held by {holder} since "))
                        && line.ends_with(&format!("(term {})", holding.term))
                });
            ok.then_some(())
        });
        assert!(
            agreed.is_some(),
            "`ctl cluster` on {name} never showed a, b, c alive and {holder} holding sched \
             (term {}); last:\n{last}",
            holding.term
        );
    }

    let runs = cluster.runs.check_never_twice();
    assert!(runs.iter().any(|run| run.pid == holding.pid), "{runs:?}");
}

#[test]
fn the_singletons_child_gets_the_term_status_shows_as_its_fencing_token() {
    let mut cluster = Cluster::new("token", 1);
    cluster.add_node("a", Link::Direct, "");
    cluster.add_node("b", Link::Direct, "");
    let holding = cluster.wait_settled(&[0, 1]);
    let standby = 1 - holding.node;

    // The term the standby's status shows (look_settled checked it is the child's token)...
    let (_, shown) = held_by(&cluster.status(standby).description).expect("a standby status");
    let run = cluster
        .runs
        .read()
        .into_iter()
        .find(|run| run.pid == holding.pid)
        .expect("the holder's run");
    assert_eq!(run.token, Some(shown), "{run:?}");
    // ... is the key's create revision in etcd.
    let key = format!("{}/singletons/{SCHED}", cluster.prefix);
    let record = cluster
        .key_record(&key)
        .expect("the singleton's key exists");
    assert_eq!(record.create_revision, shown, "{key}: {record:?}");
    // And the holder's `ctl cluster` says the same.
    let holder = cluster.nodes[holding.node].name;
    let ran = cluster.nodes[holding.node].sandbox.ctl(&["cluster"]);
    assert!(
        ran.lines().iter().any(|line| line.starts_with(SCHED)
            && line.contains(&format!("held by {holder} "))
            && line.ends_with(&format!("(term {shown})"))),
        "{ran:?}"
    );
    cluster.runs.check_never_twice();
}

#[test]
fn the_holder_killed_is_replaced_within_ttl_plus_a_renewal_and_never_twice() {
    let mut cluster = Cluster::three("killed", 1);
    let all = cluster.live();
    let holding = cluster.wait_settled(&all);
    let old = cluster.nodes[holding.node].name;
    let guard = descendants(cluster.nodes[holding.node].tm.daemon_pid())
        .into_iter()
        .find(|&pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let words: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            words.get(1) == Some(&&b"guard"[..])
                && words.get(2) == Some(&holding.pid.to_string().as_bytes())
        })
        .expect("the singleton's guard (`taskmaster guard PGID ...`), a child of its taskmaster");

    let killed_at = now_ns();
    cluster.kill_daemon(holding.node);
    let next = cluster
        .runs
        .wait_for("on another node after the kill", |run| {
            run.node != old && run.token > Some(holding.term)
        });
    println!(
        "failover after SIGKILL of the holder {old}: {} (to {}, term {} -> {:?})",
        ms(next.started - killed_at),
        next.node,
        holding.term,
        next.token
    );

    cluster.runs.check_never_twice();
    // The orphaned program is dead (nothing but its guard can have killed it), the guard too.
    assert!(
        !is_alive(holding.pid),
        "{old}'s sched (pid {}) outlived its taskmaster",
        holding.pid
    );
    wait_dead(guard, TIMEOUT);
    let live = cluster.live();
    let now = cluster.wait_settled(&live);
    assert_eq!(cluster.nodes[now.node].name, next.node);
    assert!(now.term > holding.term);
    cluster.runs.check_never_twice();
}

/// A holder cut off from etcd by `cut` (its proxy frozen, or resetting every connection):
/// it stops its program before another node starts it, and once the network heals it stands
/// by for the new holder and never runs the program again.
fn cut_off_holder(test: &str, cut: fn(&Proxy), how: &str) {
    let mut cluster = Cluster::three_linked(test, 1, Link::Proxy);
    let all = cluster.live();
    let holding = cluster.wait_settled(&all);
    let old = cluster.nodes[holding.node].name;

    let cut_at = now_ns();
    cut(cluster.nodes[holding.node].proxy());
    let next = cluster
        .runs
        .wait_for("on another node after the cut", |run| {
            run.node != old && run.token > Some(holding.term)
        });
    println!(
        "failover after {how} between the holder {old} and etcd: {} (to {})",
        ms(next.started - cut_at),
        next.node
    );
    cluster.nodes[holding.node].tm.wait_for_log(
        &format!("{SCHED}: {RENEW_DEADLINE_STOP}: stopping it"),
        TIMEOUT,
    );
    cluster.runs.check_never_twice();

    cluster.nodes[holding.node].proxy().heal();
    let term = cluster.wait_standby_for(holding.node, &next.node);
    assert_eq!(Some(term), next.token);
    let all = cluster.live();
    let now = cluster.wait_settled(&all);
    let runs = cluster.runs.check_never_twice();
    let again: Vec<&Run> = runs
        .iter()
        .filter(|run| run.node == old && run.started > cut_at)
        .collect();
    assert!(
        again.is_empty(),
        "{old} ran sched again after the cut: {again:?}"
    );
    assert_ne!(now.node, holding.node);
}

#[test]
fn a_holder_cut_off_from_etcd_stops_before_another_starts_and_rejoins_as_standby_frozen() {
    cut_off_holder(
        "cut-frozen",
        Proxy::freeze,
        "a partition (frozen connections)",
    );
}

#[test]
fn a_holder_cut_off_from_etcd_stops_before_another_starts_and_rejoins_as_standby_reset() {
    cut_off_holder("cut-reset", Proxy::reset, "connection resets");
}

#[test]
fn a_paused_holder_has_its_program_killed_before_another_starts_and_does_not_run_it_again() {
    let mut cluster = Cluster::three("paused", 1);
    let all = cluster.live();
    let holding = cluster.wait_settled(&all);
    let old = cluster.nodes[holding.node].name;
    let daemon = cluster.nodes[holding.node].tm.daemon_pid();
    for child in descendants(daemon) {
        cluster.nodes[holding.node].tm.track(child);
    }

    let paused_at = now_ns();
    cluster.nodes[holding.node].tm.signal(Signal::STOP);
    let next = cluster
        .runs
        .wait_for("on another node while the holder is paused", |run| {
            run.node != old && run.token > Some(holding.term)
        });
    cluster.runs.check_never_twice();
    // The paused taskmaster cannot have killed it: its guard did, at the kill deadline.
    assert!(
        !is_alive(holding.pid),
        "{old}'s sched (pid {}) outlived the pause",
        holding.pid
    );
    cluster.nodes[holding.node].tm.signal(Signal::CONT);
    println!(
        "failover while the holder {old} was paused: {} (to {})",
        ms(next.started - paused_at),
        next.node
    );

    cluster.wait_standby_for(holding.node, &next.node);
    let all = cluster.live();
    let now = cluster.wait_settled(&all);
    assert_ne!(now.node, holding.node);
    let runs = cluster.runs.check_never_twice();
    let again: Vec<&Run> = runs
        .iter()
        .filter(|run| run.node == old && run.pid != holding.pid)
        .collect();
    assert!(
        again.is_empty(),
        "{old} ran sched again after its pause: {again:?}"
    );
}

#[test]
fn a_clean_stop_and_a_clean_shutdown_hand_over_within_a_second() {
    let mut cluster = Cluster::three("handover", 1);
    let all = cluster.live();
    let first = cluster.wait_settled(&all);
    let x = cluster.nodes[first.node].name;
    let x_presence = cluster
        .key_record(&cluster.presence_key(x))
        .expect("x's presence key");

    // `stop` on the holder: the key is given up, and another node starts sched at once.
    let stop_at = now_ns();
    let ran = cluster.nodes[first.node].sandbox.ctl(&["stop", SCHED]);
    ran.expect_code(0);
    let next = cluster
        .runs
        .wait_for("on another node after `stop`", |run| {
            run.node != x && run.token > Some(first.term)
        });
    // Not by waiting for the lease to expire: x's lease, the one its presence key is on, is
    // still the same, still alive.
    let x_presence_now = cluster.key_record(&cluster.presence_key(x));
    let handover = next.started - stop_at;
    println!(
        "handover after `stop` on {x}: {} (to {})",
        ms(handover),
        next.node
    );
    assert_eq!(
        x_presence_now,
        Some(x_presence),
        "{x}'s presence key changed: its lease expired before the handover"
    );
    assert!(
        handover < HANDOVER_BOUND.as_nanos() as i128,
        "the handover after `stop` took {}",
        ms(handover)
    );
    let stopped = cluster
        .runs
        .read()
        .into_iter()
        .find(|run| run.pid == first.pid)
        .and_then(|run| run.stopped);
    assert!(stopped.is_some(), "{x}'s sched was not stopped by TERM");

    // `shutdown` of the new holder: its lease is revoked, and the third node starts sched
    // (x does not: a user stopped it there).
    let all = cluster.live();
    let second = cluster.wait_settled(&all);
    let y = cluster.nodes[second.node].name;
    let shutdown_at = now_ns();
    cluster.nodes[second.node].tm.shutdown();
    cluster.nodes[second.node].gone = true;
    let present = cluster.present();
    assert!(
        !present.iter().any(|node| node == y),
        "{y}'s presence key is still there after its clean shutdown: {present:?}"
    );
    let third = cluster
        .runs
        .wait_for("on the third node after the shutdown", |run| {
            run.node != y && run.token > Some(second.term)
        });
    println!(
        "handover after the shutdown of {y}: {} (to {})",
        ms(third.started - shutdown_at),
        third.node
    );
    assert_ne!(
        third.node, x,
        "{x} ran sched again though a user stopped it there"
    );
    assert!(
        third.started - shutdown_at < HANDOVER_BOUND.as_nanos() as i128,
        "the handover after the shutdown took {}",
        ms(third.started - shutdown_at)
    );
    let live = cluster.live();
    let now = cluster.wait_settled(&live);
    assert_eq!(cluster.nodes[now.node].name, third.node);
    cluster.runs.check_never_twice();
}

#[test]
fn an_etcd_leader_killed_in_a_three_member_cluster_keeps_the_singleton_running_or_moves_it_never_twice(
) {
    let mut cluster = Cluster::three("leader", 3);
    let all = cluster.live();
    let before = cluster.wait_settled(&all);

    let leader = cluster.etcd.wait_for_leader();
    cluster.etcd.kill(leader);
    let new_leader = cluster.etcd.wait_for_leader();
    assert_ne!(new_leader, leader);

    // A barrier: a presence key written after the election, which every node must list. Each
    // node then talks to the new cluster, its lease renewed or lost: what follows is where
    // the singleton settles.
    let probe = "probe-after-election";
    cluster
        .etcd
        .put(&cluster.presence_key(probe), r#"{"since": 0}"#);
    for i in cluster.live() {
        let name = cluster.nodes[i].name;
        let mut last = String::new();
        let listed = wait_until_or_none(TIMEOUT, || {
            let ran = cluster.nodes[i].sandbox.ctl(&["cluster"]);
            last = ran.output();
            ran.lines()
                .iter()
                .any(|line| line.split_whitespace().next() == Some(probe))
                .then_some(())
        });
        assert!(
            listed.is_some(),
            "{name} never listed a node put after the election; last:\n{last}"
        );
    }
    cluster.etcd.delete(&cluster.presence_key(probe));

    let all = cluster.live();
    let after = cluster.wait_settled(&all);
    println!(
        "after the etcd leader's death: sched on {} (term {}), before on {} (term {})",
        cluster.nodes[after.node].name, after.term, cluster.nodes[before.node].name, before.term
    );
    cluster.runs.check_never_twice();
}

#[test]
fn etcd_unreachable_at_start_supervises_the_rest_and_joins_when_etcd_answers() {
    let mut cluster = Cluster::new("unreachable", 1);
    let other = format!(
        "  other:\n    cmd: {}\n    starttime: 0\n",
        fixture_cmd(&["sleep", "forever"])
    );
    let a = cluster.add_node("a", Link::ProxyReset, &other);
    cluster.nodes[a].tm.running_pid("other");
    let mut last = None;
    let unreachable = wait_until_or_none(TIMEOUT, || {
        let status = cluster.status(a);
        let ok = status.state == "STOPPED"
            && status
                .description
                .starts_with("standby: etcd unreachable: ");
        last = Some(status);
        ok.then_some(())
    });
    assert!(
        unreachable.is_some(),
        "sched never showed `standby: etcd unreachable: ...`; last: {last:?}"
    );
    let ran = cluster.nodes[a].sandbox.ctl(&["cluster"]);
    assert!(
        ran.lines()
            .iter()
            .any(|line| line.starts_with("etcd unreachable: ")),
        "{ran:?}"
    );
    assert!(cluster.runs.read().is_empty());

    cluster.nodes[a].proxy().heal();
    let holding = cluster.wait_settled(&[a]);
    assert_eq!(holding.node, a);
    let status = cluster.nodes[a].tm.status("other");
    assert_eq!(status.state, "RUNNING", "{status:?}");
    cluster.runs.check_never_twice();
}

#[test]
fn check_refuses_a_stoptime_that_does_not_fit_the_lease() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "cluster:\n  etcd: [\"http://127.0.0.1:9\"]\n  node: a\n  ttl: {TTL}\n\
         programs:\n  {SCHED}:\n    cmd: sleep 1000\n    singleton: true\n    stoptime: 1s\n"
    ));
    let ran = crate::support::Ran::from(sandbox.check_config());
    assert_eq!(ran.code, Some(2), "{ran:?}");
    let output = ran.output();
    assert!(
        output.contains("programs.sched.singleton") && output.contains("at most 466ms"),
        "{output}"
    );
}

// ---------------------------------------------------------------------------------------------
// The rule itself: it must catch what it is there for
// ---------------------------------------------------------------------------------------------

fn run(node: &str, token: Option<i64>, started: i128, stopped: Option<i128>) -> Run {
    Run {
        token,
        node: node.to_owned(),
        pid: 1000 + started as u32,
        starttime: 1,
        pgid: 1000 + started as u32,
        started,
        alive_at_start: String::new(),
        stopped,
    }
}

#[test]
fn the_never_twice_rule_catches_overlaps_and_fencing_tokens_out_of_order() {
    // A stop, a kill (no stop line) and a restart on the same node in the same term (a lease
    // that outlived an outage), then new holders in growing terms: all fine.
    let fine = [
        run("a", Some(3), 0, Some(10)),
        run("a", Some(3), 20, None),
        run("b", Some(7), 30, Some(40)),
        run("c", Some(9), 50, None),
    ];
    assert_eq!(never_twice_problems(&fine), Vec::<String>::new());

    let mut alive = run("b", Some(7), 30, None);
    alive.alive_at_start = "1020".to_owned();
    let cases = [
        (
            vec![run("a", Some(3), 0, Some(31)), run("b", Some(7), 30, None)],
            "runs overlap",
        ),
        (
            vec![run("a", Some(7), 0, Some(10)), run("b", Some(3), 30, None)],
            "the fencing token went down",
        ),
        (
            vec![run("a", Some(7), 0, Some(10)), run("b", Some(7), 30, None)],
            "token 7 on two nodes",
        ),
        (vec![run("a", None, 0, None)], "no TASKMASTER_FENCING_TOKEN"),
        (
            vec![run("a", Some(3), 20, None), alive],
            "found earlier runs alive when it started: pids 1020",
        ),
    ];
    for (runs, expected) in cases {
        let problems = never_twice_problems(&runs);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected:?} not found in {problems:?} for {runs:?}"
        );
    }
    // Stops are found in the file, whatever the order of its lines.
    let text = "start token=3 node=a pid=10 starttime=5 pgid=10 at=100 alive=\n\
                start token=4 node=b pid=11 starttime=6 pgid=11 at=90 alive=\n\
                stop token=3 node=a pid=10 at=120\n\
                start token=5 node=c pid=12 starttime=7 pgid=12 at=110 alive=\n\
                stop token=5 node=c pid=12 at=1";
    let runs = parse_runs(text).expect("a runs file");
    assert_eq!(runs.len(), 3, "the last line is not complete yet: {runs:?}");
    assert_eq!(runs[0].stopped, Some(120));
    assert_eq!(runs[2].stopped, None);
    let problems = never_twice_problems(&runs);
    assert!(
        problems.iter().any(|p| p.contains("runs overlap"))
            && problems
                .iter()
                .any(|p| p.contains("the fencing token went down")),
        "{problems:?}"
    );
    assert!(parse_runs("stop token=3 node=a pid=10 at=120\n").is_err());
}

/// The singleton's script run by hand as node `node`, in a process group of its own as
/// taskmaster runs it.
fn spawn_singleton(sandbox: &Sandbox, node: &str, token: &str) -> Process {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(sandbox.file("singleton.sh"))
        .arg(sandbox.file("runs"))
        .arg(node)
        .env("TASKMASTER_FENCING_TOKEN", token)
        .stdin(Stdio::null())
        .process_group(0);
    Process::spawn(cmd)
}

#[test]
fn the_never_twice_check_catches_a_run_started_while_another_is_alive() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.file("singleton.sh"), SINGLETON_SH).expect("write singleton.sh");
    let runs = Runs::watch(sandbox.file("runs"));
    let first = spawn_singleton(&sandbox, "x", "1");
    runs.wait_for("of x", |run| run.node == "x");
    assert_eq!(runs.problems(), Vec::<String>::new(), "one run alone");

    let second = spawn_singleton(&sandbox, "y", "2");
    runs.wait_for("of y", |run| run.node == "y");
    let problems = wait_until("the watcher to see x and y alive together", TIMEOUT, || {
        let problems = runs.problems();
        let seen = problems
            .iter()
            .any(|p| p.starts_with("two runs alive at once"));
        seen.then_some(problems)
    });
    let expected = [
        format!(
            "found earlier runs alive when it started: pids {}",
            first.pid()
        ),
        format!(
            "of an earlier run's process group {} was alive",
            first.pid()
        ),
    ];
    for expected in &expected {
        assert!(
            problems.iter().any(|p| p.contains(expected.as_str())),
            "{expected:?} not found in {problems:?}"
        );
    }

    // x stopped now wrote its stop after y started: an overlap.
    send_signal(first.pid(), Signal::TERM).expect("TERM to x");
    let stopped = runs.wait_for("of x stopped", |run| {
        run.node == "x" && run.stopped.is_some()
    });
    assert!(
        runs.problems().iter().any(|p| p.contains("runs overlap")),
        "{stopped:?}"
    );
    drop(second);
}
