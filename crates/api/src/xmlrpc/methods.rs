//! The handlers of supervisord's `supervisor` namespace (API version 3.0), each done with the
//! core's requests and answered with supervisord's values and faults. [`super::table`] lists
//! them; each takes its parameters typed and returns its answer typed ([`super::typed`],
//! [`super::structs`]).
//!
//! Names are supervisord's: `web` for a program with one process, `workers:workers_00` for one
//! of a group, `workers:*` (or `workers:`) for the whole group. A bare name is the process of
//! that name in the group of that name (`web` is `web:web`), as in supervisord, so `workers`
//! alone is `BAD_NAME` when the group has no process of that name. Only the spelling is read
//! here ([`Namespec`]): what a name names is the core's resolver's answer, the one the shell
//! and the JSON API get. Lists come back in supervisord's order (by group, then process name).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};
use std::sync::Arc;

use taskmaster_core::{Config, Failure, ProcessInfo, Reply, Request, Signal, State};
use taskmaster_runtime::Handle;

use super::fault::{Code, Fault};
use super::logs;
use super::structs::{
    config_info, outcome_entries, process_status, result_entry, short_name, Changes, ConfigInfo,
    ProcessOrGroup, ProcessStatus, ResultEntry, SupervisorState, Tail,
};
use super::table;
use super::typed::{Chars, SignalText};
use super::value::Value;
use crate::wire;

/// The version of supervisord's XML-RPC API this implements; supervisorctl refuses any other.
pub const API_VERSION: &str = "3.0";

/// What `getSupervisorVersion` answers: the supervisor release whose interface this follows.
/// supervisorctl only shows it (`version`). `getIdentification` answers the configuration's
/// `identifier`, as supervisord does.
pub const SUPERVISOR_VERSION: &str = "4.3.0";

/// supervisord's states of itself (`getState`), and what gates every `supervisor.*` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Mood {
    Running = 1,
    Restarting = 0,
    Shutdown = -1,
}

impl Mood {
    fn from_code(code: i8) -> Mood {
        match code {
            1 => Mood::Running,
            0 => Mood::Restarting,
            _ => Mood::Shutdown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mood::Running => "RUNNING",
            Mood::Restarting => "RESTARTING",
            Mood::Shutdown => "SHUTDOWN",
        }
    }
}

/// The XML-RPC interface of one daemon; cheap to clone (one per request).
#[derive(Clone)]
pub struct Rpc {
    handle: Handle,
    /// Set by `shutdown` and `restart`, and when the core answers that it is shutting down.
    mood: Arc<AtomicI8>,
    /// A `shutdown` was answered but not yet sent to the daemon: see [`Rpc::take_shutdown`].
    shutdown_due: Arc<AtomicBool>,
}

impl Rpc {
    pub fn new(handle: Handle) -> Rpc {
        Rpc {
            handle,
            mood: Arc::new(AtomicI8::new(Mood::Running as i8)),
            shutdown_due: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn mood(&self) -> Mood {
        Mood::from_code(self.mood.load(Ordering::SeqCst))
    }

    fn set_mood(&self, mood: Mood) {
        self.mood.store(mood as i8, Ordering::SeqCst);
    }

    /// Calls `method` (`namespace.name`) with `params`.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
        let Some(method) = table::find(method) else {
            return Err(Fault::new(Code::UnknownMethod));
        };
        if !method.name.starts_with("supervisor.") {
            return method.call(self.clone(), params).await;
        }
        // A shutdown may have come another way (a signal, the shell, the JSON API).
        if self.mood() == Mood::Running {
            if let Ok(Reply::DaemonState {
                shutting_down: true,
            }) = self.handle.request(Request::DaemonState).await
            {
                self.set_mood(Mood::Shutdown);
            }
        }
        // As supervisord: once it is shutting down or restarting, nothing is answered.
        if self.mood() != Mood::Running {
            return Err(Fault::new(Code::ShutdownState));
        }
        let result = method.call(self.clone(), params).await;
        if matches!(&result, Err(f) if f.code == Code::ShutdownState) {
            self.set_mood(Mood::Shutdown);
        }
        result
    }

    /// Whether a `shutdown` (alone or in a multicall) is to be sent to the daemon once its
    /// answer is out: the daemon may exit as soon as it has the request, and take an unsent
    /// answer with it.
    pub fn take_shutdown(&self) -> bool {
        self.shutdown_due.swap(false, Ordering::SeqCst)
    }

    // ---- the supervisor itself ------------------------------------------------------------

    pub(super) async fn api_version(self, (): ()) -> Result<&'static str, Fault> {
        Ok(API_VERSION)
    }

    pub(super) async fn supervisor_version(self, (): ()) -> Result<&'static str, Fault> {
        Ok(SUPERVISOR_VERSION)
    }

    /// `identifier` ([supervisord] identifier), supervisord's `supervisor` by default.
    pub(super) async fn identification(self, (): ()) -> Result<String, Fault> {
        Ok(self.config().await?.daemon.identifier)
    }

    pub(super) async fn state(self, (): ()) -> Result<SupervisorState, Fault> {
        let mood = self.mood();
        Ok(SupervisorState {
            statecode: i64::from(mood as i8),
            statename: mood.name(),
        })
    }

    pub(super) async fn pid(self, (): ()) -> Result<i64, Fault> {
        match self.ask(Request::Pid(Vec::new())).await? {
            Reply::DaemonPid(pid) => Ok(i64::from(pid)),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn read_log(self, (offset, length): (i64, i64)) -> Result<String, Fault> {
        let path = self.config().await?.logfile;
        read_file(path, offset, length).await
    }

    pub(super) async fn clear_log(self, (): ()) -> Result<bool, Fault> {
        let path = self.config().await?.logfile;
        if !path.exists() {
            return Err(Fault::new(Code::NoFile));
        }
        blocking(move || logs::clear(&path))
            .await?
            .map_err(|_| Fault::new(Code::Failed))?;
        Ok(true)
    }

    pub(super) async fn shutdown(self, (): ()) -> Result<bool, Fault> {
        self.set_mood(Mood::Shutdown);
        // The request goes once the answer is out: see `Rpc::take_shutdown`.
        self.shutdown_due.store(true, Ordering::SeqCst);
        Ok(true)
    }

    pub(super) async fn restart(self, (): ()) -> Result<bool, Fault> {
        self.set_mood(Mood::Restarting);
        let rpc = self.clone();
        tokio::spawn(async move { rpc.restart_everything().await });
        Ok(true)
    }

    pub(super) async fn reload_config(self, (): ()) -> Result<Vec<Changes>, Fault> {
        match self.ask(Request::Reread).await? {
            Reply::Compared(plan) => Ok(vec![Changes {
                added: plan.added,
                changed: plan.changed,
                removed: plan.removed,
            }]),
            Reply::ReloadRejected(errors) => Err(Fault::with(Code::CantReread, errors.join("\n"))),
            Reply::ShuttingDown => Err(Fault::new(Code::ShutdownState)),
            other => Err(unexpected(other)),
        }
    }

    pub(super) async fn add_process_group(self, (group,): (String,)) -> Result<bool, Fault> {
        self.one_outcome(Request::AddGroup(vec![group.clone()]), &group)
            .await
    }

    pub(super) async fn remove_process_group(self, (group,): (String,)) -> Result<bool, Fault> {
        self.one_outcome(Request::RemoveGroup(vec![group.clone()]), &group)
            .await
    }

    pub(super) async fn all_config_info(self, (): ()) -> Result<Vec<ConfigInfo>, Fault> {
        let (available, active) = self.configs().await?;
        let mut infos: Vec<(String, ConfigInfo)> = Vec::new();
        for spec in available.programs.values() {
            let in_use = active.programs.contains_key(&spec.name);
            for process in &spec.processes {
                let info = config_info(&process.spec, &process.name, in_use);
                infos.push((process.name.clone(), info));
            }
        }
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(infos.into_iter().map(|(_, info)| info).collect())
    }

    pub(super) async fn send_remote_comm_event(
        self,
        (kind, data): (String, String),
    ) -> Result<bool, Fault> {
        match self.ask(Request::RemoteCommEvent { kind, data }).await? {
            Reply::Recorded => Ok(true),
            other => Err(unexpected(other)),
        }
    }

    // ---- starting and stopping ------------------------------------------------------------

    pub(super) async fn start_process(
        self,
        (name, wait): (String, Option<bool>),
    ) -> Result<ProcessOrGroup, Fault> {
        self.start_or_stop(Action::Start, &name, wait.unwrap_or(true))
            .await
    }

    pub(super) async fn start_process_group(
        self,
        (group, wait): (String, Option<bool>),
    ) -> Result<Vec<ResultEntry>, Fault> {
        self.start_or_stop_group(Action::Start, &group, wait.unwrap_or(true))
            .await
    }

    pub(super) async fn start_all_processes(
        self,
        (wait,): (Option<bool>,),
    ) -> Result<Vec<ResultEntry>, Fault> {
        let everything = self.everything().await?;
        self.start_or_stop_many(Action::Start, "all", everything, wait.unwrap_or(true))
            .await
    }

    pub(super) async fn stop_process(
        self,
        (name, wait): (String, Option<bool>),
    ) -> Result<ProcessOrGroup, Fault> {
        self.start_or_stop(Action::Stop, &name, wait.unwrap_or(true))
            .await
    }

    pub(super) async fn stop_process_group(
        self,
        (group, wait): (String, Option<bool>),
    ) -> Result<Vec<ResultEntry>, Fault> {
        self.start_or_stop_group(Action::Stop, &group, wait.unwrap_or(true))
            .await
    }

    pub(super) async fn stop_all_processes(
        self,
        (wait,): (Option<bool>,),
    ) -> Result<Vec<ResultEntry>, Fault> {
        let everything = self.everything().await?;
        self.start_or_stop_many(Action::Stop, "all", everything, wait.unwrap_or(true))
            .await
    }

    /// `startProcess` and `stopProcess`: one process, or the group a `group:*` names.
    async fn start_or_stop(
        &self,
        action: Action,
        name: &str,
        wait: bool,
    ) -> Result<ProcessOrGroup, Fault> {
        if let Namespec::Group(group) = Namespec::read(name) {
            let members = self.group(&group, name).await?;
            let entries = self
                .start_or_stop_many(action, &format!("{group}:*"), members, wait)
                .await?;
            return Ok(ProcessOrGroup::Group(entries));
        }
        let (_, info) = self.process(name).await?;
        if action == Action::Start {
            self.check_command(&info.program).await?;
        }
        if !wait {
            // Refuse what supervisord refuses at once; the rest goes on without us.
            let refused = match action {
                Action::Start => is_running(info.state).then_some(Failure::AlreadyStarted),
                Action::Stop => (!is_running(info.state)).then_some(Failure::NotRunning),
            };
            if let Some(failure) = refused {
                return Err(Fault::from_failure(&failure, name));
            }
            self.fire(action.request(vec![info.name]));
            return Ok(ProcessOrGroup::Process);
        }
        self.one_outcome(action.request(vec![info.name]), name)
            .await?;
        Ok(ProcessOrGroup::Process)
    }

    async fn start_or_stop_group(
        &self,
        action: Action,
        group: &str,
        wait: bool,
    ) -> Result<Vec<ResultEntry>, Fault> {
        let members = self.group(group, group).await?;
        self.start_or_stop_many(action, &format!("{group}:*"), members, wait)
            .await
    }

    /// `start*`/`stop*` of the processes `target` names, `named` (a group or all): those with
    /// something to do (not running for a start, running for a stop), one result each.
    async fn start_or_stop_many(
        &self,
        action: Action,
        target: &str,
        named: Snapshot,
        wait: bool,
    ) -> Result<Vec<ResultEntry>, Fault> {
        if !wait {
            let acted = named
                .sorted()
                .into_iter()
                .filter(|info| is_running(info.state) == (action == Action::Stop))
                .map(|info| result_entry(&info.name, None))
                .collect();
            self.fire(action.request(vec![target.to_string()]));
            return Ok(acted);
        }
        match self.ask(action.request(vec![target.to_string()])).await? {
            Reply::Outcomes(outcomes) => Ok(outcome_entries(&outcomes)),
            other => Err(unexpected(other)),
        }
    }

    // ---- signals --------------------------------------------------------------------------

    /// As supervisord checks it: the name, then the signal, then whether it runs.
    pub(super) async fn signal_process(
        self,
        (name, signal): (String, SignalText),
    ) -> Result<ProcessOrGroup, Fault> {
        if let Namespec::Group(group) = Namespec::read(&name) {
            let members = self.group(&group, &name).await?;
            let entries = self
                .signal_many(&format!("{group}:*"), members, &signal.0)
                .await?;
            return Ok(ProcessOrGroup::Group(entries));
        }
        let (_, info) = self.process(&name).await?;
        let signal: Signal = signal
            .0
            .parse()
            .map_err(|_| Fault::with(Code::BadSignal, &signal.0))?;
        if info.pid.is_none() {
            return Err(Fault::with(Code::NotRunning, &name));
        }
        let request = Request::Signal {
            signal,
            targets: vec![info.name],
        };
        self.one_outcome(request, &name).await?;
        Ok(ProcessOrGroup::Process)
    }

    pub(super) async fn signal_process_group(
        self,
        (group, signal): (String, SignalText),
    ) -> Result<Vec<ResultEntry>, Fault> {
        let members = self.group(&group, &group).await?;
        self.signal_many(&format!("{group}:*"), members, &signal.0)
            .await
    }

    pub(super) async fn signal_all_processes(
        self,
        (signal,): (SignalText,),
    ) -> Result<Vec<ResultEntry>, Fault> {
        let everything = self.everything().await?;
        self.signal_many("all", everything, &signal.0).await
    }

    /// `signalProcessGroup` and `signalAllProcesses`: every process with a child of those
    /// `target` names, `named`.
    async fn signal_many(
        &self,
        target: &str,
        named: Snapshot,
        signal: &str,
    ) -> Result<Vec<ResultEntry>, Fault> {
        let Ok(parsed) = signal.parse::<Signal>() else {
            // supervisord checks the signal per process: each signallable one gets BAD_SIGNAL.
            let fault = Fault::with(Code::BadSignal, signal);
            return Ok(named
                .sorted()
                .into_iter()
                .filter(|info| info.pid.is_some())
                .map(|info| result_entry(&info.name, Some(&fault)))
                .collect());
        };
        let request = Request::Signal {
            signal: parsed,
            targets: vec![target.to_string()],
        };
        match self.ask(request).await? {
            Reply::Outcomes(outcomes) => Ok(outcome_entries(&outcomes)),
            other => Err(unexpected(other)),
        }
    }

    // ---- what processes are ---------------------------------------------------------------

    pub(super) async fn process_info(self, (name,): (String,)) -> Result<ProcessStatus, Fault> {
        let (snapshot, info) = self.process(&name).await?;
        Ok(process_status(&snapshot.clock, snapshot.now, &info))
    }

    pub(super) async fn all_process_info(self, (): ()) -> Result<Vec<ProcessStatus>, Fault> {
        let snapshot = self.everything().await?;
        Ok(snapshot
            .sorted()
            .into_iter()
            .map(|info| process_status(&snapshot.clock, snapshot.now, info))
            .collect())
    }

    pub(super) async fn send_process_stdin(
        self,
        (name, Chars(data)): (String, Chars),
    ) -> Result<bool, Fault> {
        let (_, info) = self.process(&name).await?;
        let request = Request::SendStdin {
            targets: vec![info.name],
            data,
        };
        self.one_outcome(request, &name).await
    }

    // ---- process logs ---------------------------------------------------------------------

    pub(super) async fn read_process_stdout_log(
        self,
        params: (String, i64, i64),
    ) -> Result<String, Fault> {
        self.read_process_log(Stream::Stdout, params).await
    }

    pub(super) async fn read_process_stderr_log(
        self,
        params: (String, i64, i64),
    ) -> Result<String, Fault> {
        self.read_process_log(Stream::Stderr, params).await
    }

    pub(super) async fn tail_process_stdout_log(
        self,
        params: (String, i64, i64),
    ) -> Result<Tail, Fault> {
        self.tail_process_log(Stream::Stdout, params).await
    }

    pub(super) async fn tail_process_stderr_log(
        self,
        params: (String, i64, i64),
    ) -> Result<Tail, Fault> {
        self.tail_process_log(Stream::Stderr, params).await
    }

    async fn read_process_log(
        &self,
        stream: Stream,
        (name, offset, length): (String, i64, i64),
    ) -> Result<String, Fault> {
        let (_, info) = self.process(&name).await?;
        let Some(path) = stream.of(&info) else {
            return Err(Fault::new(Code::NoFile));
        };
        read_file(path, offset, length).await
    }

    async fn tail_process_log(
        &self,
        stream: Stream,
        (name, offset, length): (String, i64, i64),
    ) -> Result<Tail, Fault> {
        let (_, info) = self.process(&name).await?;
        let Some(path) = stream.of(&info).filter(|path| path.exists()) else {
            return Ok(Tail::nothing());
        };
        let (bytes, offset, overflow) = blocking(move || logs::tail(&path, offset, length)).await?;
        Ok(Tail {
            bytes: logs::text(bytes),
            offset,
            overflow,
        })
    }

    pub(super) async fn clear_process_logs(self, (name,): (String,)) -> Result<bool, Fault> {
        let (_, info) = self.process(&name).await?;
        clear_logs(&info)
            .await
            .map_err(|_| Fault::with(Code::Failed, &name))?;
        Ok(true)
    }

    pub(super) async fn clear_all_process_logs(self, (): ()) -> Result<Vec<ResultEntry>, Fault> {
        let snapshot = self.everything().await?;
        let mut results = Vec::new();
        for info in snapshot.sorted() {
            let fault = match clear_logs(info).await {
                Ok(()) => None,
                Err(_) => Some(Fault::with(Code::Failed, &info.name)),
            };
            results.push(result_entry(&info.name, fault.as_ref()));
        }
        Ok(results)
    }

    // ---- asking the core ------------------------------------------------------------------

    /// Sends `request` to the daemon.
    async fn ask(&self, request: Request) -> Result<Reply, Fault> {
        self.handle
            .request(request)
            .await
            .map_err(|_| Fault::new(Code::ShutdownState))
    }

    /// Sends `request` without waiting for its answer (`wait=False`).
    fn fire(&self, request: Request) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let _ = handle.request(request).await;
        });
    }

    /// The processes `target` names, as the core resolves it (for every front end alike);
    /// `BAD_NAME: name` when it names nothing.
    async fn resolve(&self, target: String, name: &str) -> Result<Snapshot, Fault> {
        match self.ask(Request::Status(vec![target])).await? {
            Reply::Status {
                now,
                processes,
                errors,
                ..
            } => {
                if !errors.is_empty() || processes.is_empty() {
                    return Err(Fault::with(Code::BadName, name));
                }
                Ok(Snapshot::new(now, processes))
            }
            other => Err(unexpected(other)),
        }
    }

    /// The one process the supervisord name `name` names, and when it was seen; a group is
    /// `BAD_NAME` here.
    pub(super) async fn process(&self, name: &str) -> Result<(Snapshot, ProcessInfo), Fault> {
        let Namespec::Process(target) = Namespec::read(name) else {
            return Err(Fault::with(Code::BadName, name));
        };
        let mut snapshot = self.resolve(target, name).await?;
        match snapshot.processes.pop() {
            Some(info) if snapshot.processes.is_empty() => Ok((snapshot, info)),
            _ => Err(Fault::with(Code::BadName, name)),
        }
    }

    /// The processes of the group `group`; `BAD_NAME: name` when there is none.
    async fn group(&self, group: &str, name: &str) -> Result<Snapshot, Fault> {
        self.resolve(format!("{group}:*"), name).await
    }

    /// Every process, as the core sees it now.
    async fn everything(&self) -> Result<Snapshot, Fault> {
        match self.ask(Request::Status(Vec::new())).await? {
            Reply::Status { now, processes, .. } => Ok(Snapshot::new(now, processes)),
            other => Err(unexpected(other)),
        }
    }

    /// The configuration supervisord's `process_group_configs` would be: the one a reread
    /// staged, else the one in force; and the one in force.
    async fn configs(&self) -> Result<(Config, Config), Fault> {
        match self.ask(Request::Config).await? {
            Reply::Config { active, staged } => {
                let available = staged.map_or_else(|| (*active).clone(), |s| *s);
                Ok((available, *active))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn config(&self) -> Result<Config, Fault> {
        Ok(self.configs().await?.1)
    }

    /// supervisord's look at a program's command before a start ([`super::command`]), off the
    /// loop: it reads the file system.
    async fn check_command(&self, program: &str) -> Result<(), Fault> {
        let config = self.config().await?;
        let Some(spec) = config.programs.get(program).cloned() else {
            return Ok(()); // removed meanwhile: the start says so
        };
        tokio::task::spawn_blocking(move || super::command::check(&spec))
            .await
            .unwrap_or(Ok(()))
    }

    /// A request about one name whose answer is one outcome: `true`, or its fault.
    async fn one_outcome(&self, request: Request, name: &str) -> Result<bool, Fault> {
        match self.ask(request).await? {
            Reply::Outcomes(outcomes) => {
                let failure = outcomes.iter().find_map(|o| o.result.as_ref().err());
                match failure {
                    Some(failure) => Err(Fault::from_failure(failure, name)),
                    None => Ok(true),
                }
            }
            Reply::ShuttingDown => Err(Fault::new(Code::ShutdownState)),
            other => Err(unexpected(other)),
        }
    }

    /// supervisord's restart, on what taskmaster has: every process stops, the configuration
    /// file is read again and applied, and the autostart programs start. Calls made meanwhile
    /// are refused with SHUTDOWN_STATE, as supervisord's are while it restarts.
    async fn restart_everything(&self) {
        let _ = self.ask(Request::Stop(vec!["all".to_string()])).await;
        let _ = self.ask(Request::Reload).await;
        if let Ok(config) = self.config().await {
            let autostart: Vec<String> = config
                .programs
                .values()
                .filter(|spec| spec.autostart)
                .map(|spec| format!("{}:*", spec.name))
                .collect();
            if !autostart.is_empty() {
                let _ = self.ask(Request::Start(autostart)).await;
            }
        }
        let _ = self.mood.compare_exchange(
            Mood::Restarting as i8,
            Mood::Running as i8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// supervisord's reading of a name (its `split_namespec`), spelled as a target of the core.
/// Only the spelling is read here; the core says what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Namespec {
    /// `workers:*` or `workers:`: the group `workers`.
    Group(String),
    /// `workers:workers_00`; a bare `web` is `web:web`, the process `web` of the group `web`.
    Process(String),
}

impl Namespec {
    fn read(name: &str) -> Namespec {
        match name.split_once(':') {
            Some((group, "" | "*")) => Namespec::Group(group.to_string()),
            Some(_) => Namespec::Process(name.to_string()),
            None => Namespec::Process(format!("{name}:{name}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
}

impl Action {
    fn request(self, targets: Vec<String>) -> Request {
        match self {
            Action::Start => Request::Start(targets),
            Action::Stop => Request::Stop(targets),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn of(self, info: &ProcessInfo) -> Option<PathBuf> {
        match self {
            Stream::Stdout => info.stdout.clone(),
            Stream::Stderr => info.stderr.clone(),
        }
    }
}

/// supervisord's RUNNING_STATES: what a start refuses and a stop acts on.
fn is_running(state: State) -> bool {
    matches!(state, State::Starting | State::Running | State::Backoff)
}

/// Processes as the core saw them at one moment.
pub(super) struct Snapshot {
    clock: wire::Clock,
    now: taskmaster_core::Time,
    processes: Vec<ProcessInfo>,
}

impl Snapshot {
    fn new(now: taskmaster_core::Time, processes: Vec<ProcessInfo>) -> Snapshot {
        Snapshot {
            clock: wire::Clock::new(now),
            now,
            processes,
        }
    }

    /// The processes in supervisord's order: by group, then by process name.
    fn sorted(&self) -> Vec<&ProcessInfo> {
        let mut sorted: Vec<&ProcessInfo> = self.processes.iter().collect();
        sorted
            .sort_by(|a, b| (&a.group, short_name(&a.name)).cmp(&(&b.group, short_name(&b.name))));
        sorted
    }
}

async fn read_file(path: PathBuf, offset: i64, length: i64) -> Result<String, Fault> {
    if !path.exists() {
        return Err(Fault::with(Code::NoFile, path.display()));
    }
    let bytes = blocking(move || logs::read(&path, offset, length)).await??;
    Ok(logs::text(bytes))
}

/// Empties a process's stdout and stderr files, those that exist.
async fn clear_logs(info: &ProcessInfo) -> std::io::Result<()> {
    let paths: Vec<PathBuf> = [&info.stdout, &info.stderr]
        .into_iter()
        .flatten()
        .filter(|p| p.exists())
        .cloned()
        .collect();
    blocking(move || paths.iter().try_for_each(|p| logs::clear(Path::new(p))))
        .await
        .map_err(|_| std::io::Error::other("the clearing task failed"))?
}

/// Runs file work off the daemon's loop: a large log must not stall supervision.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fault> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Fault::new(Code::Failed))
}

fn unexpected(reply: Reply) -> Fault {
    Fault::with(
        Code::Failed,
        format!("unexpected reply from the supervisor: {reply:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_supervisord_spells_them() {
        let read = Namespec::read;
        assert_eq!(read("web"), Namespec::Process("web:web".to_string()));
        assert_eq!(
            read("workers:workers_01"),
            Namespec::Process("workers:workers_01".to_string())
        );
        assert_eq!(read("workers:*"), Namespec::Group("workers".to_string()));
        assert_eq!(read("workers:"), Namespec::Group("workers".to_string()));
        // A bare group name is a process name, which the core then finds or not.
        assert_eq!(
            read("workers"),
            Namespec::Process("workers:workers".to_string())
        );
    }
}
