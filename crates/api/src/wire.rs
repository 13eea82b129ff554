//! The JSON of the API, and its mapping to and from the core's types.
//!
//! Times on the wire are Unix timestamps in seconds (with a fraction). The core measures time
//! on a monotonic clock; [`Clock`] converts a reply's monotonic times to wall-clock ones, and
//! the client converts back by using wall-clock nanoseconds as its monotonic origin (only
//! differences between times matter to the renderer).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use taskmaster_core::{
    Done, ExitCause, ExitStatus, Failure, Health, LastExit, Outcome, PairInfo, ProcessInfo,
    ReloadPlan, Reply, Signal, State, Time,
};

/// One process, as `GET /v1/processes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// `web`, or `workers:workers_00` in a group.
    pub name: String,
    /// The group it is addressed in (its program's name, or its `[group:x]`).
    pub group: String,
    /// Its program.
    #[serde(default)]
    pub program: String,
    /// supervisord's state name: `RUNNING`, `STOPPED`, ...
    pub state: String,
    pub pid: Option<u32>,
    /// supervisorctl's description column: `pid 4242, uptime 0:01:02`, a failure's reason...
    pub description: String,
    /// When the current or last child started (Unix time, seconds).
    pub start: Option<f64>,
    /// When the last child ended or the process was stopped (Unix time, seconds).
    pub stop: Option<f64>,
    pub spawn_error: Option<String>,
    pub last_exit: Option<Exit>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    /// Whether its stdout lines are sent to syslog (besides `stdout`'s file, if any).
    #[serde(default)]
    pub stdout_syslog: bool,
    /// Whether its stderr lines are sent to syslog.
    #[serde(default)]
    pub stderr_syslog: bool,
    /// The signal that paused the process (`SIGSTOP`), while it is paused; `null` otherwise.
    #[serde(default)]
    pub paused: Option<String>,
    /// The child's own status text (`STATUS=` on the notify socket).
    #[serde(default)]
    pub status_text: Option<String>,
    /// What its health checks say; `null` without a `healthcheck`.
    #[serde(default)]
    pub health: Option<HealthJson>,
    /// Why it is FATAL when that is not failed starts (the restart limit).
    #[serde(default)]
    pub gave_up: Option<String>,
    /// What its start waits for (`depends_on`): `["db (BACKOFF)"]`; empty when nothing.
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// For a cluster singleton: who holds it; `null` for other programs.
    #[serde(default)]
    pub cluster: Option<Singleton>,
}

/// Where a cluster singleton runs: `{"here": false, "holder": "web-1", "since": "10:41:03",
/// "since_unix": 1796672598, "term": 7812, "unreachable": null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Singleton {
    /// This taskmaster holds its key (and may run it).
    pub here: bool,
    /// The node holding its key; `null` when nobody does.
    pub holder: Option<String>,
    /// When the holder took it: local time of day, and Unix time.
    pub since: Option<String>,
    pub since_unix: Option<i64>,
    /// The key's create revision, the fencing token: larger for every new holder.
    pub term: Option<i64>,
    /// Why nothing is known: etcd cannot be reached.
    pub unreachable: Option<String>,
}

impl Singleton {
    fn of(info: &taskmaster_core::cluster::SingletonInfo) -> Singleton {
        let holder = &info.holder;
        Singleton {
            here: holder.here,
            holder: holder.node.clone(),
            since: holder.since.clone(),
            since_unix: holder.since_unix,
            term: holder.term,
            unreachable: info.unreachable.clone(),
        }
    }

    fn into_info(self) -> taskmaster_core::cluster::SingletonInfo {
        taskmaster_core::cluster::SingletonInfo {
            holder: taskmaster_core::cluster::Holder {
                here: self.here,
                node: self.holder,
                since: self.since,
                since_unix: self.since_unix,
                term: self.term,
            },
            unreachable: self.unreachable,
        }
    }
}

/// `GET /v1/cluster`: the cluster as this node knows it; `null` outside a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub cluster: Option<taskmaster_core::cluster::ClusterInfo>,
}

/// How a process last ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal's name (`SIGSEGV`), when a signal killed it.
    pub signal: Option<String>,
    pub core_dumped: bool,
    /// Whether `exitcodes` expected it.
    pub expected: bool,
    /// Why it ended: `exited`, `crashed`, `killed`, `hung`, `unhealthy`, `not_ready`,
    /// `spawn_failed`, `stopped`, `killed_after_stoptime`, `killed_by_request`, `lease_lost`.
    #[serde(default)]
    pub cause: String,
    /// More about the cause: how it was hung, why unhealthy, the spawn error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The whole story in words: `crashed: SIGSEGV (core dumped)`.
    #[serde(default)]
    pub text: String,
}

/// What the health checks of a process say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthJson {
    /// `unknown`, `healthy` or `failing`.
    pub state: String,
    /// Failed checks in a row.
    #[serde(default)]
    pub failures: u32,
    /// The last failure's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/processes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The server's time when the snapshot was taken (Unix time, seconds).
    pub now: f64,
    pub processes: Vec<Process>,
    /// Names that matched nothing.
    #[serde(default)]
    pub errors: Vec<Result_>,
    /// The process pair, when taskmaster runs as one (`run --pair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<Pair>,
}

/// `run --pair`: the primary, its hot backup, and the takeovers so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub primary_pid: u32,
    pub backup_pid: Option<u32>,
    /// Whether the backup has the state and the children, and so can take over.
    #[serde(default)]
    pub backup_connected: bool,
    pub takeovers: u32,
    /// When the last takeover happened (Unix time, seconds), and why.
    pub last_takeover: Option<f64>,
    pub last_takeover_reason: Option<String>,
}

/// What happened to one process: `{"process": "web", "ok": true, "result": "started"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Result")]
pub struct Result_ {
    pub process: String,
    pub ok: bool,
    pub result: Step,
    /// More about a failure (a spawn error's cause, why a stdin takes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a [`Result_`] says was done, or why not (`ok` tells which: `removed` is both a group
/// removed and a process a reload removed while the request waited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Started,
    Stopped,
    Signalled,
    Killed,
    Added,
    Removed,
    Sent,
    NoSuchProcess,
    AlreadyStarted,
    NotRunning,
    SpawnError,
    AbnormalTermination,
    ShuttingDown,
    AlreadyAdded,
    StillRunning,
    NoStdin,
    /// Waiting for its dependencies, which will not come unless someone acts.
    Blocked,
}

/// The answer to start, stop, restart and signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub results: Vec<Result_>,
}

/// `POST /v1/reload` and `POST /v1/reread` when the file was valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// For each program of `changed`, by name: the settings applied in place and those that
    /// restart it.
    #[serde(default)]
    pub settings: BTreeMap<String, ChangedSettings>,
}

/// What changed in one program (`Reloaded::settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedSettings {
    pub in_place: Vec<String>,
    pub restart: Vec<String>,
}

/// Any error: `{"error": "what went wrong"}`, with more fields where useful.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
    /// Every problem, one per line, for a rejected configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// `GET /v1/config`: the configuration in force, and the one a reread staged, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFiles {
    pub active: taskmaster_core::Config,
    pub staged: Option<taskmaster_core::Config>,
}

/// `GET /v1/pid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pid {
    pub pid: u32,
}

/// The pids of processes (`ctl --json pid NAME...`; the API answers them in
/// `GET /v1/processes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    pub pids: Vec<ProcessPid>,
    /// Names that matched nothing.
    #[serde(default)]
    pub errors: Vec<Result_>,
}

/// One process's pid; `null` when it has no child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessPid {
    pub process: String,
    pub pid: Option<u32>,
}

/// `GET /v1/state`, and `POST /v1/shutdown`'s answer: whether the daemon is on its way out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonState {
    pub shutting_down: bool,
}

/// `POST /v1/takeover` and `POST /v1/upgrade`: the backup that took over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedOver {
    pub handed_over_to: u32,
}

/// `POST /v1/logrotate`: how many files were reopened, and one error per file that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsReopened {
    pub reopened: usize,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// `POST /v1/alerts/test`: what each alert destination answered to a test message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsTested {
    pub destinations: Vec<AlertTested>,
}

/// One destination's answer (`answer`), or why it failed (`error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTested {
    /// `webhook http://...`, `email smtp HOST:PORT`, `syslog`.
    pub destination: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AlertsTested {
    pub fn from_results(results: &[(String, Result<String, String>)]) -> AlertsTested {
        let destinations = results
            .iter()
            .map(|(destination, result)| AlertTested {
                destination: destination.clone(),
                ok: result.is_ok(),
                answer: result.as_ref().ok().cloned(),
                error: result.as_ref().err().cloned(),
            })
            .collect();
        AlertsTested { destinations }
    }

    pub fn into_results(self) -> Vec<(String, Result<String, String>)> {
        self.destinations
            .into_iter()
            .map(|tested| {
                let result = match (tested.ok, tested.answer, tested.error) {
                    (true, answer, _) => Ok(answer.unwrap_or_default()),
                    (false, _, error) => Err(error.unwrap_or_default()),
                };
                (tested.destination, result)
            })
            .collect()
    }
}

/// A remote communication event written to the event log (`ctl --json`; the API takes none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub recorded: bool,
}

/// `event: lagged` of `GET /v1/events`: how many events a slow reader missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lagged {
    pub missed: u64,
}

/// `POST /v1/processes/start`, `/stop` and `/restart`: the processes to act on, in one
/// request, named as everywhere (`web`, `workers:*`, `all`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub processes: Vec<String>,
}

/// `POST /v1/processes/signal`, and `POST /v1/processes/{name}/signal` (without `processes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRequest {
    /// `HUP`, `SIGHUP`, `hup` or `1`.
    pub signal: String,
    /// The processes, for the route that names none in its path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
}

/// One event of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    State {
        process: String,
        from: String,
        to: String,
        at: f64,
    },
    Log {
        process: Option<String>,
        message: String,
        at: f64,
    },
    /// An output line matched one of the program's `alerts`.
    Alert {
        program: String,
        stream: String,
        level: String,
        line: String,
        at: f64,
    },
}

/// `POST /v1/processes/kill`, and `POST /v1/processes/{name}/kill` (without `processes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillRequest {
    /// Whether the process is then restarted by its `autorestart` policy (default true).
    #[serde(default = "yes")]
    pub restart: bool,
    /// The processes, for the route that names none in its path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `POST /v1/logrotate` (the body is optional).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogrotateRequest {
    /// Reopen only these processes' files (names as everywhere: `web`, `workers`, `all`...);
    /// absent or empty: every log file, the event log included.
    #[serde(default)]
    pub processes: Vec<String>,
}

// ---- core -> wire (the server) ---------------------------------------------------------

/// Converts a reply's monotonic times to wall-clock ones.
pub struct Clock {
    /// The reply's `now` on the monotonic clock.
    now: Time,
    /// The same moment as Unix time, in seconds.
    wall: f64,
}

impl Clock {
    pub fn new(now: Time) -> Clock {
        Clock {
            now,
            wall: unix_now(),
        }
    }

    pub fn wall(&self, at: Time) -> f64 {
        self.wall - self.now.since(at).as_secs_f64()
    }
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub fn unix(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub fn status(
    now: Time,
    processes: &[ProcessInfo],
    errors: &[Outcome],
    pair: Option<&PairInfo>,
) -> Status {
    let clock = Clock::new(now);
    Status {
        now: clock.wall,
        processes: processes.iter().map(|p| process(&clock, p)).collect(),
        errors: errors.iter().map(result).collect(),
        pair: pair.map(|pair| Pair {
            primary_pid: pair.primary_pid,
            backup_pid: pair.backup_pid,
            backup_connected: pair.backup_connected,
            takeovers: pair.takeovers,
            last_takeover: pair.last_takeover.as_ref().map(|(at, _)| clock.wall(*at)),
            last_takeover_reason: pair.last_takeover.as_ref().map(|(_, why)| why.clone()),
        }),
    }
}

pub fn process(clock: &Clock, info: &ProcessInfo) -> Process {
    Process {
        name: info.name.clone(),
        group: info.group.clone(),
        program: info.program.clone(),
        state: info.state.name().to_string(),
        pid: info.pid,
        description: info.description(clock.now, |ago| {
            // The server's local time, as supervisorctl shows stop times.
            let wall = clock.wall - ago.as_secs_f64();
            local_date(wall)
        }),
        start: info.started_at.map(|t| clock.wall(t)),
        stop: info.stopped_at.map(|t| clock.wall(t)),
        spawn_error: info.spawn_error.clone(),
        last_exit: info.last_exit.as_ref().map(exit),
        stdout: info.stdout.clone(),
        stderr: info.stderr.clone(),
        stdout_syslog: info.stdout_syslog,
        stderr_syslog: info.stderr_syslog,
        paused: info.paused.map(|signal| signal.to_string()),
        status_text: info.status_text.clone(),
        health: info.health.as_ref().map(|health| match health {
            Health::Unknown => HealthJson {
                state: "unknown".into(),
                failures: 0,
                detail: None,
            },
            Health::Healthy => HealthJson {
                state: "healthy".into(),
                failures: 0,
                detail: None,
            },
            Health::Failing { failures, detail } => HealthJson {
                state: "failing".into(),
                failures: *failures,
                detail: Some(detail.clone()),
            },
        }),
        gave_up: info.gave_up.clone(),
        waiting_for: info.waiting_for.clone(),
        cluster: info.cluster.as_ref().map(Singleton::of),
    }
}

fn exit(exit: &LastExit) -> Exit {
    let detail = match &exit.cause {
        ExitCause::Hung(text)
        | ExitCause::Unhealthy(text)
        | ExitCause::SpawnFailed(text)
        | ExitCause::LeaseLost(text) => Some(text.clone()),
        _ => None,
    };
    Exit {
        code: match exit.status {
            Some(ExitStatus::Code(code)) => Some(code),
            _ => None,
        },
        signal: match exit.status {
            Some(ExitStatus::Signal { signal, .. }) => Some(signal.to_string()),
            _ => None,
        },
        core_dumped: matches!(
            exit.status,
            Some(ExitStatus::Signal {
                core_dumped: true,
                ..
            })
        ),
        expected: exit.expected,
        cause: exit.cause.name().to_string(),
        detail,
        text: exit.to_string(),
    }
}

fn to_last_exit(exit: Exit) -> LastExit {
    let signal = exit
        .signal
        .as_deref()
        .and_then(|s| s.parse::<Signal>().ok());
    let status = match (exit.code, signal) {
        (Some(code), _) => Some(ExitStatus::Code(code)),
        (None, Some(signal)) => Some(ExitStatus::Signal {
            signal,
            core_dumped: exit.core_dumped,
        }),
        (None, None) => None,
    };
    let detail = exit.detail.unwrap_or_default();
    let cause = match exit.cause.as_str() {
        "crashed" => ExitCause::Crashed,
        "killed" => ExitCause::Killed,
        "hung" => ExitCause::Hung(detail),
        "unhealthy" => ExitCause::Unhealthy(detail),
        "not_ready" => ExitCause::NotReady,
        "spawn_failed" => ExitCause::SpawnFailed(detail),
        "stopped" => ExitCause::Stopped,
        "killed_after_stoptime" => ExitCause::KilledAfterStoptime,
        "killed_by_request" => ExitCause::KilledByRequest,
        "lease_lost" => ExitCause::LeaseLost(detail),
        _ => ExitCause::Exited,
    };
    LastExit {
        status,
        cause,
        expected: exit.expected,
    }
}

/// supervisorctl's stop-time format, `Nov 22 02:29 AM`, in the server's local time.
fn local_date(unix_seconds: f64) -> String {
    jiff::Timestamp::from_second(unix_seconds as i64)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()))
        .map_or_else(
            |_| String::new(),
            |t| t.strftime("%b %d %I:%M %p").to_string(),
        )
}

pub fn result(outcome: &Outcome) -> Result_ {
    let (result, detail) = match &outcome.result {
        Ok(Done::Started) => (Step::Started, None),
        Ok(Done::Stopped) => (Step::Stopped, None),
        Ok(Done::Signalled) => (Step::Signalled, None),
        Ok(Done::Killed) => (Step::Killed, None),
        Ok(Done::Added) => (Step::Added, None),
        Ok(Done::Removed) => (Step::Removed, None),
        Ok(Done::Sent) => (Step::Sent, None),
        Err(Failure::NoStdin(why)) => (Step::NoStdin, Some(why.clone())),
        Err(Failure::NoSuchProcess) => (Step::NoSuchProcess, None),
        Err(Failure::AlreadyStarted) => (Step::AlreadyStarted, None),
        Err(Failure::NotRunning) => (Step::NotRunning, None),
        Err(Failure::SpawnError(why)) => (Step::SpawnError, Some(why.clone())),
        Err(Failure::AbnormalTermination) => (Step::AbnormalTermination, None),
        Err(Failure::Removed) => (Step::Removed, None),
        Err(Failure::ShuttingDown) => (Step::ShuttingDown, None),
        Err(Failure::AlreadyAdded) => (Step::AlreadyAdded, None),
        Err(Failure::StillRunning) => (Step::StillRunning, None),
        Err(Failure::Blocked(why)) => (Step::Blocked, Some(why.clone())),
    };
    Result_ {
        process: outcome.process.clone(),
        ok: outcome.result.is_ok(),
        result,
        detail,
    }
}

/// The answer to an action: every process's result.
pub fn results(outcomes: &[Outcome]) -> Results {
    Results {
        results: outcomes.iter().map(result).collect(),
    }
}

/// `422`'s body for a configuration file with errors, listing every one.
pub fn rejected(errors: &[String]) -> Error {
    Error {
        error: "the configuration has errors; nothing was changed".to_string(),
        errors: errors.to_vec(),
    }
}

pub fn reloaded(plan: &ReloadPlan) -> Reloaded {
    Reloaded {
        added: plan.added.clone(),
        changed: plan.changed.clone(),
        removed: plan.removed.clone(),
        settings: plan
            .settings
            .iter()
            .map(|(name, settings)| {
                let wire = ChangedSettings {
                    in_place: settings.in_place.clone(),
                    restart: settings.restart.clone(),
                };
                (name.clone(), wire)
            })
            .collect(),
    }
}

// ---- wire -> core (the client) ---------------------------------------------------------

/// A Unix time in seconds as a core `Time` whose origin is the Unix epoch.
fn time(unix_seconds: f64) -> Time {
    Time::from_nanos((unix_seconds.max(0.0) * 1e9) as u64)
}

pub fn to_reply_status(status: Status) -> Reply {
    Reply::Status {
        now: time(status.now),
        processes: status.processes.into_iter().map(to_process_info).collect(),
        errors: status.errors.into_iter().map(to_outcome).collect(),
        pair: status.pair.map(|pair| PairInfo {
            primary_pid: pair.primary_pid,
            backup_pid: pair.backup_pid,
            backup_connected: pair.backup_connected,
            takeovers: pair.takeovers,
            last_takeover: pair
                .last_takeover
                .map(|at| (time(at), pair.last_takeover_reason.unwrap_or_default())),
        }),
    }
}

pub fn to_process_info(p: Process) -> ProcessInfo {
    ProcessInfo {
        name: p.name,
        program: if p.program.is_empty() {
            p.group.clone()
        } else {
            p.program
        },
        group: p.group,
        state: parse_state(&p.state),
        pid: p.pid,
        started_at: p.start.map(time),
        stopped_at: p.stop.map(time),
        spawn_error: p.spawn_error,
        last_exit: p.last_exit.map(to_last_exit),
        stdout: p.stdout,
        stderr: p.stderr,
        stdout_syslog: p.stdout_syslog,
        stderr_syslog: p.stderr_syslog,
        paused: p.paused.and_then(|signal| signal.parse().ok()),
        status_text: p.status_text,
        health: p.health.map(|health| match health.state.as_str() {
            "healthy" => Health::Healthy,
            "failing" => Health::Failing {
                failures: health.failures,
                detail: health.detail.unwrap_or_default(),
            },
            _ => Health::Unknown,
        }),
        gave_up: p.gave_up,
        waiting_for: p.waiting_for,
        cluster: p.cluster.map(Singleton::into_info),
    }
}

/// The state named `name` (`RUNNING`); UNKNOWN for a name supervisord does not have.
pub fn parse_state(name: &str) -> State {
    [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Backoff,
        State::Stopping,
        State::Exited,
        State::Fatal,
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .unwrap_or(State::Unknown)
}

pub fn to_outcome(r: Result_) -> Outcome {
    let detail = || r.detail.clone().unwrap_or_default();
    let result = match (r.ok, r.result) {
        (true, Step::Removed) => Ok(Done::Removed),
        (false, Step::Removed) => Err(Failure::Removed),
        (_, Step::Started) => Ok(Done::Started),
        (_, Step::Stopped) => Ok(Done::Stopped),
        (_, Step::Signalled) => Ok(Done::Signalled),
        (_, Step::Killed) => Ok(Done::Killed),
        (_, Step::Added) => Ok(Done::Added),
        (_, Step::Sent) => Ok(Done::Sent),
        (_, Step::NoStdin) => Err(Failure::NoStdin(detail())),
        (_, Step::NoSuchProcess) => Err(Failure::NoSuchProcess),
        (_, Step::AlreadyStarted) => Err(Failure::AlreadyStarted),
        (_, Step::NotRunning) => Err(Failure::NotRunning),
        (_, Step::SpawnError) => Err(Failure::SpawnError(detail())),
        (_, Step::AbnormalTermination) => Err(Failure::AbnormalTermination),
        (_, Step::ShuttingDown) => Err(Failure::ShuttingDown),
        (_, Step::AlreadyAdded) => Err(Failure::AlreadyAdded),
        (_, Step::StillRunning) => Err(Failure::StillRunning),
        (_, Step::Blocked) => Err(Failure::Blocked(detail())),
    };
    Outcome {
        process: r.process,
        result,
    }
}

pub fn to_plan(reloaded: Reloaded) -> ReloadPlan {
    ReloadPlan {
        added: reloaded.added,
        changed: reloaded.changed,
        removed: reloaded.removed,
        unchanged: Vec::new(),
        settings: reloaded
            .settings
            .into_iter()
            .map(|(name, settings)| {
                let core = taskmaster_core::ChangedSettings {
                    in_place: settings.in_place,
                    restart: settings.restart,
                };
                (name, core)
            })
            .collect(),
    }
}

/// Any reply as the JSON the API would answer with (for `ctl --json`).
pub fn reply_json(reply: &Reply) -> serde_json::Value {
    let value = match reply {
        Reply::Status {
            now,
            processes,
            errors,
            pair,
        } => serde_json::to_value(status(*now, processes, errors, pair.as_ref())),
        Reply::Outcomes(outcomes) => serde_json::to_value(results(outcomes)),
        Reply::Pids { pids, errors } => serde_json::to_value(Pids {
            pids: pids
                .iter()
                .map(|(process, pid)| ProcessPid {
                    process: process.clone(),
                    pid: *pid,
                })
                .collect(),
            errors: errors.iter().map(result).collect(),
        }),
        Reply::DaemonPid(pid) => serde_json::to_value(Pid { pid: *pid }),
        Reply::Reloaded(plan) | Reply::Compared(plan) => serde_json::to_value(reloaded(plan)),
        Reply::Config { active, staged } => serde_json::to_value(ConfigFiles {
            active: (**active).clone(),
            staged: staged.as_deref().cloned(),
        }),
        Reply::ReloadRejected(errors) => serde_json::to_value(rejected(errors)),
        Reply::ShuttingDown => serde_json::to_value(DaemonState {
            shutting_down: true,
        }),
        Reply::HandedOver(pid) => serde_json::to_value(HandedOver {
            handed_over_to: *pid,
        }),
        Reply::LogsReopened { files, errors } => serde_json::to_value(LogsReopened {
            reopened: *files,
            errors: errors.clone(),
        }),
        Reply::HandoverRefused(why) => serde_json::to_value(Error {
            error: why.clone(),
            errors: Vec::new(),
        }),
        Reply::DaemonState { shutting_down } => serde_json::to_value(DaemonState {
            shutting_down: *shutting_down,
        }),
        Reply::Recorded => serde_json::to_value(Recorded { recorded: true }),
        Reply::Metrics(metrics) => serde_json::to_value(&**metrics),
        Reply::Cluster(cluster) => serde_json::to_value(Cluster {
            cluster: cluster.as_deref().cloned(),
        }),
        Reply::AlertsTested(results) => serde_json::to_value(AlertsTested::from_results(results)),
    };
    value.unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_as_itself() {
        let done = [
            Done::Started,
            Done::Stopped,
            Done::Signalled,
            Done::Killed,
            Done::Added,
            Done::Removed,
            Done::Sent,
        ];
        let failures = [
            Failure::NoSuchProcess,
            Failure::AlreadyStarted,
            Failure::NotRunning,
            Failure::SpawnError("cannot execute /x: No such file or directory".into()),
            Failure::AbnormalTermination,
            Failure::Removed,
            Failure::ShuttingDown,
            Failure::AlreadyAdded,
            Failure::StillRunning,
            Failure::NoStdin("the process closed its stdin".into()),
        ];
        let outcomes: Vec<Outcome> = done
            .into_iter()
            .map(Ok)
            .chain(failures.into_iter().map(Err))
            .map(|result| Outcome {
                process: "web".into(),
                result,
            })
            .collect();
        let json = reply_json(&Reply::Outcomes(outcomes.clone()));
        let read: Results = serde_json::from_value(json).expect("the shape of Results");
        let back: Vec<Outcome> = read.results.into_iter().map(to_outcome).collect();
        assert_eq!(back, outcomes);
    }

    #[test]
    fn results_keep_their_json() {
        let started = Outcome {
            process: "web".into(),
            result: Ok(Done::Started),
        };
        let spawn_error = Outcome {
            process: "api".into(),
            result: Err(Failure::SpawnError("no such file".into())),
        };
        assert_eq!(
            reply_json(&Reply::Outcomes(vec![started, spawn_error])).to_string(),
            r#"{"results":[{"ok":true,"process":"web","result":"started"},{"detail":"no such file","ok":false,"process":"api","result":"spawn_error"}]}"#
        );
        assert!(serde_json::from_str::<Result_>(
            r#"{"process": "web", "ok": true, "result": "frobnicated"}"#
        )
        .is_err());
    }

    #[test]
    fn the_daemons_answers_are_typed_both_ways() {
        let json = |reply: Reply| reply_json(&reply).to_string();
        assert_eq!(
            json(Reply::DaemonState {
                shutting_down: false
            }),
            r#"{"shutting_down":false}"#
        );
        assert_eq!(json(Reply::ShuttingDown), r#"{"shutting_down":true}"#);
        assert_eq!(json(Reply::HandedOver(4263)), r#"{"handed_over_to":4263}"#);
        let reopened = json(Reply::LogsReopened {
            files: 3,
            errors: vec!["x: cannot open".into()],
        });
        assert_eq!(reopened, r#"{"errors":["x: cannot open"],"reopened":3}"#);
        let read: LogsReopened = serde_json::from_str(&reopened).expect("LogsReopened");
        assert_eq!((read.reopened, read.errors.len()), (3, 1));
        let pids = json(Reply::Pids {
            pids: vec![("web".into(), Some(42)), ("idle".into(), None)],
            errors: Vec::new(),
        });
        assert_eq!(
            pids,
            r#"{"errors":[],"pids":[{"pid":42,"process":"web"},{"pid":null,"process":"idle"}]}"#
        );
        assert_eq!(json(Reply::Recorded), r#"{"recorded":true}"#);
    }
}
