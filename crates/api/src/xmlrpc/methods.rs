//! The methods: supervisord's `system` and `supervisor` namespaces (API version 3.0), each
//! done with the core's requests and answered with supervisord's values and faults.
//!
//! Names are supervisord's: `web` for a program with one process, `workers:workers_00` for one
//! of a group, `workers:*` (or `workers:`) for the whole group. A bare group name is a process
//! name, as in supervisord, so `workers` alone is `BAD_NAME` when the group has no process of
//! that name. Lists come back in supervisord's order (by group, then process name).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};
use std::sync::Arc;

use taskmaster_core::{
    AutoRestart, Config, Done, ExitStatus, Failure, Outcome, ProcessInfo, ProgramSpec, Reply,
    Request, Signal, State,
};
use taskmaster_runtime::Handle;

use super::fault::{Code, Fault};
use super::logs;
use super::value::{fault_struct, Value};
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

/// One published method, for `system.listMethods`, `methodHelp` and `methodSignature`.
struct Method {
    name: &'static str,
    /// The return type, then each parameter's.
    signature: &'static [&'static str],
    help: &'static str,
}

macro_rules! methods {
    ($($name:literal ($($ty:literal),*) $help:literal;)*) => {
        &[$(Method { name: $name, signature: &[$($ty),*], help: $help }),*]
    };
}

/// Every method, sorted by name; aliases supervisord keeps for old clients included.
const METHODS: &[Method] = methods! {
    "supervisor.addProcessGroup" ("boolean", "string")
        "Add a program of the configuration read by reloadConfig to the running ones.\n@param string name the program (process group)\n@return boolean true unless error";
    "supervisor.clearAllProcessLogs" ("array")
        "Empty the stdout and stderr files of every process.\n@return array one {name, group, status, description} per process";
    "supervisor.clearLog" ("boolean")
        "Empty taskmaster's event log.\n@return boolean true unless error";
    "supervisor.clearProcessLog" ("boolean", "string")
        "Alias of clearProcessLogs.\n@param string name the process (or group:name)\n@return boolean true unless error";
    "supervisor.clearProcessLogs" ("boolean", "string")
        "Empty a process's stdout and stderr files.\n@param string name the process (or group:name)\n@return boolean true unless error";
    "supervisor.getAPIVersion" ("string")
        "The version of this XML-RPC API.\n@return string version";
    "supervisor.getAllConfigInfo" ("array")
        "The configuration of every process, in use or available to add.\n@return array one struct per process";
    "supervisor.getAllProcessInfo" ("array")
        "The state of every process.\n@return array one struct per process, as getProcessInfo";
    "supervisor.getIdentification" ("string")
        "Return identifying string of supervisord (its configuration's identifier).\n@return string identifier";
    "supervisor.getPID" ("int")
        "taskmaster's own pid.\n@return int pid";
    "supervisor.getProcessInfo" ("struct", "string")
        "The state of one process.\n@param string name the process (or group:name)\n@return struct name, group, description, start, stop, now, state, statename, spawnerr, exitstatus, logfile, stdout_logfile, stderr_logfile, pid";
    "supervisor.getState" ("struct")
        "The supervisor's own state.\n@return struct statecode, statename";
    "supervisor.getSupervisorVersion" ("string")
        "The supervisor release whose interface this is.\n@return string version";
    "supervisor.getVersion" ("string")
        "Alias of getAPIVersion.\n@return string version";
    "supervisor.readLog" ("string", "int", "int")
        "Read the event log.\n@param int offset where to start; negative: from the end, with length 0\n@param int length how many bytes; 0: to the end\n@return string the bytes";
    "supervisor.readMainLog" ("string", "int", "int")
        "Alias of readLog.\n@param int offset where to start\n@param int length how many bytes\n@return string the bytes";
    "supervisor.readProcessLog" ("string", "string", "int", "int")
        "Alias of readProcessStdoutLog.\n@param string name the process (or group:name)\n@param int offset where to start\n@param int length how many bytes\n@return string the bytes";
    "supervisor.readProcessStderrLog" ("string", "string", "int", "int")
        "Read a process's stderr file.\n@param string name the process (or group:name)\n@param int offset where to start; negative: from the end, with length 0\n@param int length how many bytes; 0: to the end\n@return string the bytes";
    "supervisor.readProcessStdoutLog" ("string", "string", "int", "int")
        "Read a process's stdout file.\n@param string name the process (or group:name)\n@param int offset where to start; negative: from the end, with length 0\n@param int length how many bytes; 0: to the end\n@return string the bytes";
    "supervisor.reloadConfig" ("array")
        "Read the configuration file again and say what differs from the running one, changing nothing; addProcessGroup and removeProcessGroup then apply it.\n@return array [[added, changed, removed]]";
    "supervisor.removeProcessGroup" ("boolean", "string")
        "Remove a program whose processes are all stopped.\n@param string name the program (process group)\n@return boolean true unless error";
    "supervisor.restart" ("boolean")
        "Restart: stop every process, reload the configuration file, start the autostart programs.\n@return boolean true unless error";
    "supervisor.sendProcessStdin" ("boolean", "string", "string")
        "Write to a process's stdin: NO_FILE unless its stdin is a pipe (stdin: pipe, the default for programs from a supervisord configuration), or when it closed its stdin or has not read the last MiB sent.\n@param string name the process (or group:name)\n@param string chars what to write\n@return boolean true unless error";
    "supervisor.sendRemoteCommEvent" ("boolean", "string", "string")
        "Send a REMOTE_COMMUNICATION event. taskmaster records it in its event log (remote communication event \"TYPE\": \"DATA\", the data cut at 200 characters); it has no event listeners yet to pass it to.\n@param string type the event's type\n@param string data the event's body\n@return boolean true unless error";
    "supervisor.shutdown" ("boolean")
        "Stop every process, then exit.\n@return boolean true unless error";
    "supervisor.signalAllProcesses" ("array", "string")
        "Send a signal to every process that has a child.\n@param string signal a name (HUP) or a number (1)\n@return array one {name, group, status, description} per process";
    "supervisor.signalProcess" ("boolean", "string", "string")
        "Send a signal to a process.\n@param string name the process (or group:name, or group:*)\n@param string signal a name (HUP) or a number (1)\n@return boolean true unless error";
    "supervisor.signalProcessGroup" ("array", "string", "string")
        "Send a signal to every process of a group that has a child.\n@param string name the group\n@param string signal a name (HUP) or a number (1)\n@return array one {name, group, status, description} per process";
    "supervisor.startAllProcesses" ("array", "boolean")
        "Start every process that is not running.\n@param boolean wait wait until each is RUNNING or failed\n@return array one {name, group, status, description} per process";
    "supervisor.startProcess" ("boolean", "string", "boolean")
        "Start a process.\n@param string name the process (or group:name, or group:*)\n@param boolean wait wait until it is RUNNING or failed\n@return boolean true unless error";
    "supervisor.startProcessGroup" ("array", "string", "boolean")
        "Start every process of a group that is not running.\n@param string name the group\n@param boolean wait wait until each is RUNNING or failed\n@return array one {name, group, status, description} per process";
    "supervisor.stopAllProcesses" ("array", "boolean")
        "Stop every running process.\n@param boolean wait wait until each has stopped\n@return array one {name, group, status, description} per process";
    "supervisor.stopProcess" ("boolean", "string", "boolean")
        "Stop a process.\n@param string name the process (or group:name, or group:*)\n@param boolean wait wait until it has stopped\n@return boolean true unless error";
    "supervisor.stopProcessGroup" ("array", "string", "boolean")
        "Stop every running process of a group.\n@param string name the group\n@param boolean wait wait until each has stopped\n@return array one {name, group, status, description} per process";
    "supervisor.tailProcessLog" ("array", "string", "int", "int")
        "Alias of tailProcessStdoutLog.\n@param string name the process (or group:name)\n@param int offset where the last tail ended\n@param int length how many bytes at most\n@return array [string bytes, int offset, bool overflow]";
    "supervisor.tailProcessStderrLog" ("array", "string", "int", "int")
        "The end of a process's stderr file: length bytes from offset, or the last length bytes when the file has grown past offset + length (overflow).\n@param string name the process (or group:name)\n@param int offset where the last tail ended\n@param int length how many bytes at most\n@return array [string bytes, int offset, bool overflow]";
    "supervisor.tailProcessStdoutLog" ("array", "string", "int", "int")
        "The end of a process's stdout file: length bytes from offset, or the last length bytes when the file has grown past offset + length (overflow).\n@param string name the process (or group:name)\n@param int offset where the last tail ended\n@param int length how many bytes at most\n@return array [string bytes, int offset, bool overflow]";
    "system.listMethods" ("array")
        "The names of every method.\n@return array method names";
    "system.methodHelp" ("string", "string")
        "A method's documentation.\n@param string name the method\n@return string its documentation";
    "system.methodSignature" ("array", "string")
        "A method's types: [return type, parameter types...].\n@param string name the method\n@return array the types";
    "system.multicall" ("array", "array")
        "Make several calls at once, in order. Each call is {methodName, params}; each result is the call's value, or {faultCode, faultString}.\n@param array calls the calls\n@return array the results";
};

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
        let (namespace, name) = match method.split('.').collect::<Vec<_>>().as_slice() {
            [namespace, name] if !name.starts_with('_') => (*namespace, *name),
            _ => return Err(Fault::new(Code::UnknownMethod)),
        };
        match namespace {
            "system" => self.system(name, params).await,
            "supervisor" => {
                if !METHODS.iter().any(|m| m.name == method) {
                    return Err(Fault::new(Code::UnknownMethod));
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
                let result = self.supervisor(name, params).await;
                if matches!(&result, Err(f) if f.code == Code::ShutdownState) {
                    self.set_mood(Mood::Shutdown);
                }
                result
            }
            _ => Err(Fault::new(Code::UnknownMethod)),
        }
    }

    async fn system(&self, name: &str, params: Vec<Value>) -> Result<Value, Fault> {
        match name {
            "listMethods" => {
                arity(&params, 0, 0)?;
                Ok(Value::strings(
                    &METHODS.iter().map(|m| m.name).collect::<Vec<_>>(),
                ))
            }
            "methodHelp" => {
                arity(&params, 1, 1)?;
                let wanted = string(&params[0], "name")?;
                let method = find_method(&wanted)?;
                Ok(Value::string(method.help))
            }
            "methodSignature" => {
                arity(&params, 1, 1)?;
                let wanted = string(&params[0], "name")?;
                let method = find_method(&wanted)?;
                Ok(Value::strings(method.signature))
            }
            "multicall" => {
                arity(&params, 1, 1)?;
                let Value::Array(calls) = &params[0] else {
                    return Err(Fault::with(
                        Code::IncorrectParameters,
                        format!("calls must be an array, not {}", params[0].kind()),
                    ));
                };
                let mut results = Vec::with_capacity(calls.len());
                for call in calls {
                    let result = Box::pin(self.one_of_multicall(call)).await;
                    // supervisord's results are the values themselves, not wrapped in arrays.
                    results.push(result.unwrap_or_else(|fault| fault_struct(&fault)));
                }
                Ok(Value::Array(results))
            }
            _ => Err(Fault::new(Code::UnknownMethod)),
        }
    }

    async fn one_of_multicall(&self, call: &Value) -> Result<Value, Fault> {
        let Some(Value::String(method)) = call.member("methodName") else {
            return Err(Fault::with(Code::IncorrectParameters, "No methodName"));
        };
        if method == "system.multicall" {
            return Err(Fault::with(
                Code::IncorrectParameters,
                "Recursive system.multicall forbidden",
            ));
        }
        let params = match call.member("params") {
            None => Vec::new(),
            Some(Value::Array(params)) => params.clone(),
            Some(other) => {
                return Err(Fault::with(
                    Code::IncorrectParameters,
                    format!("params must be an array, not {}", other.kind()),
                ))
            }
        };
        self.call(method, params).await
    }

    async fn supervisor(&self, name: &str, params: Vec<Value>) -> Result<Value, Fault> {
        let p = &params;
        match name {
            "getAPIVersion" | "getVersion" => {
                arity(p, 0, 0)?;
                Ok(Value::string(API_VERSION))
            }
            "getSupervisorVersion" => {
                arity(p, 0, 0)?;
                Ok(Value::string(SUPERVISOR_VERSION))
            }
            "getIdentification" => {
                arity(p, 0, 0)?;
                // `identifier` ([supervisord] identifier), supervisord's `supervisor` by default.
                Ok(Value::string(self.config().await?.daemon.identifier))
            }
            "getState" => {
                arity(p, 0, 0)?;
                let mood = self.mood();
                let name = match mood {
                    Mood::Running => "RUNNING",
                    Mood::Restarting => "RESTARTING",
                    Mood::Shutdown => "SHUTDOWN",
                };
                Ok(Value::record([
                    ("statecode", Value::Int(i64::from(mood as i8))),
                    ("statename", Value::string(name)),
                ]))
            }
            "getPID" => {
                arity(p, 0, 0)?;
                match self.ask(Request::Pid(Vec::new())).await? {
                    Reply::DaemonPid(pid) => Ok(Value::Int(i64::from(pid))),
                    other => Err(unexpected(other)),
                }
            }
            "readLog" | "readMainLog" => {
                arity(p, 2, 2)?;
                let (offset, length) = (int(&p[0], "offset")?, int(&p[1], "length")?);
                let path = self.config().await?.logfile;
                read_file(path, offset, length).await
            }
            "clearLog" => {
                arity(p, 0, 0)?;
                let path = self.config().await?.logfile;
                if !path.exists() {
                    return Err(Fault::new(Code::NoFile));
                }
                blocking(move || logs::clear(&path))
                    .await?
                    .map_err(|_| Fault::new(Code::Failed))?;
                Ok(Value::Bool(true))
            }
            "shutdown" => {
                arity(p, 0, 0)?;
                self.set_mood(Mood::Shutdown);
                // The request goes once the answer is out: see `Rpc::take_shutdown`.
                self.shutdown_due.store(true, Ordering::SeqCst);
                Ok(Value::Bool(true))
            }
            "restart" => {
                arity(p, 0, 0)?;
                self.set_mood(Mood::Restarting);
                let rpc = self.clone();
                tokio::spawn(async move { rpc.restart().await });
                Ok(Value::Bool(true))
            }
            "reloadConfig" => {
                arity(p, 0, 0)?;
                match self.ask(Request::Reread).await? {
                    Reply::Compared(plan) => Ok(Value::Array(vec![Value::Array(vec![
                        Value::strings(&plan.added),
                        Value::strings(&plan.changed),
                        Value::strings(&plan.removed),
                    ])])),
                    Reply::ReloadRejected(errors) => {
                        Err(Fault::with(Code::CantReread, errors.join("\n")))
                    }
                    Reply::ShuttingDown => Err(Fault::new(Code::ShutdownState)),
                    other => Err(unexpected(other)),
                }
            }
            "addProcessGroup" => {
                arity(p, 1, 1)?;
                let group = string(&p[0], "name")?;
                self.one_outcome(Request::AddGroup(vec![group.clone()]), &group)
                    .await
            }
            "removeProcessGroup" => {
                arity(p, 1, 1)?;
                let group = string(&p[0], "name")?;
                self.one_outcome(Request::RemoveGroup(vec![group.clone()]), &group)
                    .await
            }
            "startProcess" => {
                arity(p, 1, 2)?;
                let name = string(&p[0], "name")?;
                let wait = optional_bool(p.get(1), "wait")?;
                self.start_or_stop(Action::Start, &name, wait).await
            }
            "startProcessGroup" => {
                arity(p, 1, 2)?;
                let group = string(&p[0], "name")?;
                let wait = optional_bool(p.get(1), "wait")?;
                self.snapshot().await?.group_exists(&group)?;
                self.start_or_stop_many(Action::Start, Some(&group), wait)
                    .await
            }
            "startAllProcesses" => {
                arity(p, 0, 1)?;
                let wait = optional_bool(p.first(), "wait")?;
                self.start_or_stop_many(Action::Start, None, wait).await
            }
            "stopProcess" => {
                arity(p, 1, 2)?;
                let name = string(&p[0], "name")?;
                let wait = optional_bool(p.get(1), "wait")?;
                self.start_or_stop(Action::Stop, &name, wait).await
            }
            "stopProcessGroup" => {
                arity(p, 1, 2)?;
                let group = string(&p[0], "name")?;
                let wait = optional_bool(p.get(1), "wait")?;
                self.snapshot().await?.group_exists(&group)?;
                self.start_or_stop_many(Action::Stop, Some(&group), wait)
                    .await
            }
            "stopAllProcesses" => {
                arity(p, 0, 1)?;
                let wait = optional_bool(p.first(), "wait")?;
                self.start_or_stop_many(Action::Stop, None, wait).await
            }
            "signalProcess" => {
                arity(p, 2, 2)?;
                let name = string(&p[0], "name")?;
                let signal = signal_text(&p[1])?;
                let snapshot = self.snapshot().await?;
                match snapshot.lookup(&name)? {
                    Target::Group(group) => self.signal_many(Some(&group), &signal).await,
                    Target::Process(info) => {
                        let signal: Signal = signal
                            .parse()
                            .map_err(|_| Fault::with(Code::BadSignal, &signal))?;
                        if info.pid.is_none() {
                            return Err(Fault::with(Code::NotRunning, &name));
                        }
                        let request = Request::Signal {
                            signal,
                            targets: vec![info.name.clone()],
                        };
                        self.one_outcome(request, &name).await
                    }
                }
            }
            "signalProcessGroup" => {
                arity(p, 2, 2)?;
                let group = string(&p[0], "name")?;
                let signal = signal_text(&p[1])?;
                self.snapshot().await?.group_exists(&group)?;
                self.signal_many(Some(&group), &signal).await
            }
            "signalAllProcesses" => {
                arity(p, 1, 1)?;
                let signal = signal_text(&p[0])?;
                self.signal_many(None, &signal).await
            }
            "getAllConfigInfo" => {
                arity(p, 0, 0)?;
                self.all_config_info().await
            }
            "getProcessInfo" => {
                arity(p, 1, 1)?;
                let name = string(&p[0], "name")?;
                let snapshot = self.snapshot().await?;
                let info = snapshot.process(&name)?;
                Ok(process_info(&snapshot.clock, snapshot.now, info))
            }
            "getAllProcessInfo" => {
                arity(p, 0, 0)?;
                let snapshot = self.snapshot().await?;
                Ok(Value::Array(
                    snapshot
                        .sorted()
                        .into_iter()
                        .map(|info| process_info(&snapshot.clock, snapshot.now, info))
                        .collect(),
                ))
            }
            "readProcessStdoutLog" | "readProcessLog" => {
                self.read_process_log(p, Stream::Stdout).await
            }
            "readProcessStderrLog" => self.read_process_log(p, Stream::Stderr).await,
            "tailProcessStdoutLog" | "tailProcessLog" => {
                self.tail_process_log(p, Stream::Stdout).await
            }
            "tailProcessStderrLog" => self.tail_process_log(p, Stream::Stderr).await,
            "clearProcessLogs" | "clearProcessLog" => {
                arity(p, 1, 1)?;
                let name = string(&p[0], "name")?;
                let snapshot = self.snapshot().await?;
                let info = snapshot.process(&name)?.clone();
                clear_logs(&info)
                    .await
                    .map_err(|_| Fault::with(Code::Failed, &name))?;
                Ok(Value::Bool(true))
            }
            "clearAllProcessLogs" => {
                arity(p, 0, 0)?;
                let snapshot = self.snapshot().await?;
                let mut results = Vec::new();
                for info in snapshot.sorted() {
                    let fault = match clear_logs(info).await {
                        Ok(()) => None,
                        Err(_) => Some(Fault::with(Code::Failed, &info.name)),
                    };
                    results.push(result_entry(&info.name, fault.as_ref()));
                }
                Ok(Value::Array(results))
            }
            "sendProcessStdin" => {
                arity(p, 2, 2)?;
                let name = string(&p[0], "name")?;
                let data = match &p[1] {
                    Value::String(text) => text.as_bytes().to_vec(),
                    Value::Base64(bytes) => bytes.clone(),
                    other => {
                        return Err(Fault::with(
                            Code::IncorrectParameters,
                            format!("chars must be a string, not {}", other.kind()),
                        ))
                    }
                };
                let snapshot = self.snapshot().await?;
                let info = snapshot.process(&name)?;
                let request = Request::SendStdin {
                    targets: vec![info.name.clone()],
                    data,
                };
                self.one_outcome(request, &name).await
            }
            "sendRemoteCommEvent" => {
                arity(p, 2, 2)?;
                let kind = string(&p[0], "type")?;
                let data = string(&p[1], "data")?;
                match self.ask(Request::RemoteCommEvent { kind, data }).await? {
                    Reply::Recorded => Ok(Value::Bool(true)),
                    other => Err(unexpected(other)),
                }
            }
            _ => Err(Fault::new(Code::UnknownMethod)),
        }
    }

    /// Sends `request` to the daemon.
    async fn ask(&self, request: Request) -> Result<Reply, Fault> {
        self.handle
            .request(request)
            .await
            .map_err(|_| Fault::new(Code::ShutdownState))
    }

    /// Every process, as the core sees it now.
    async fn snapshot(&self) -> Result<Snapshot, Fault> {
        match self.ask(Request::Status(Vec::new())).await? {
            Reply::Status { now, processes, .. } => Ok(Snapshot {
                clock: wire::Clock::new(now),
                now,
                processes,
            }),
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
    async fn one_outcome(&self, request: Request, name: &str) -> Result<Value, Fault> {
        match self.ask(request).await? {
            Reply::Outcomes(outcomes) => {
                let failure = outcomes.iter().find_map(|o| o.result.as_ref().err());
                match failure {
                    Some(failure) => Err(Fault::from_failure(failure, name)),
                    None => Ok(Value::Bool(true)),
                }
            }
            Reply::ShuttingDown => Err(Fault::new(Code::ShutdownState)),
            other => Err(unexpected(other)),
        }
    }

    /// `startProcess` and `stopProcess`: one process, or the group a `group:*` names.
    async fn start_or_stop(&self, action: Action, name: &str, wait: bool) -> Result<Value, Fault> {
        let snapshot = self.snapshot().await?;
        let info = match snapshot.lookup(name)? {
            Target::Group(group) => {
                return self.start_or_stop_many(action, Some(&group), wait).await
            }
            Target::Process(info) => info,
        };
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
            self.fire(action.request(vec![info.name.clone()]));
            return Ok(Value::Bool(true));
        }
        self.one_outcome(action.request(vec![info.name.clone()]), name)
            .await
    }

    /// `start*`/`stop*` of a group or of all: the processes with something to do (not running
    /// for a start, running for a stop), one result each.
    async fn start_or_stop_many(
        &self,
        action: Action,
        group: Option<&str>,
        wait: bool,
    ) -> Result<Value, Fault> {
        let target = group.map_or_else(|| "all".to_string(), |g| format!("{g}:*"));
        if !wait {
            let snapshot = self.snapshot().await?;
            let acted: Vec<Value> = snapshot
                .sorted()
                .into_iter()
                .filter(|info| group.is_none_or(|g| info.group == g))
                .filter(|info| is_running(info.state) == (action == Action::Stop))
                .map(|info| result_entry(&info.name, None))
                .collect();
            self.fire(action.request(vec![target]));
            return Ok(Value::Array(acted));
        }
        match self.ask(action.request(vec![target])).await? {
            Reply::Outcomes(outcomes) => Ok(outcome_entries(&outcomes)),
            other => Err(unexpected(other)),
        }
    }

    /// `signalProcessGroup` and `signalAllProcesses`: every process with a child.
    async fn signal_many(&self, group: Option<&str>, signal: &str) -> Result<Value, Fault> {
        let Ok(parsed) = signal.parse::<Signal>() else {
            // supervisord checks the signal per process: each signallable one gets BAD_SIGNAL.
            let snapshot = self.snapshot().await?;
            let fault = Fault::with(Code::BadSignal, signal);
            return Ok(Value::Array(
                snapshot
                    .sorted()
                    .into_iter()
                    .filter(|info| group.is_none_or(|g| info.group == g))
                    .filter(|info| info.pid.is_some())
                    .map(|info| result_entry(&info.name, Some(&fault)))
                    .collect(),
            ));
        };
        let target = group.map_or_else(|| "all".to_string(), |g| format!("{g}:*"));
        let request = Request::Signal {
            signal: parsed,
            targets: vec![target],
        };
        match self.ask(request).await? {
            Reply::Outcomes(outcomes) => Ok(outcome_entries(&outcomes)),
            other => Err(unexpected(other)),
        }
    }

    /// Sends `request` without waiting for its answer (`wait=False`).
    fn fire(&self, request: Request) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let _ = handle.request(request).await;
        });
    }

    async fn read_process_log(&self, p: &[Value], stream: Stream) -> Result<Value, Fault> {
        arity(p, 3, 3)?;
        let name = string(&p[0], "name")?;
        let (offset, length) = (int(&p[1], "offset")?, int(&p[2], "length")?);
        let snapshot = self.snapshot().await?;
        let Some(path) = stream.of(snapshot.process(&name)?) else {
            return Err(Fault::new(Code::NoFile));
        };
        read_file(path, offset, length).await
    }

    async fn tail_process_log(&self, p: &[Value], stream: Stream) -> Result<Value, Fault> {
        arity(p, 3, 3)?;
        let name = string(&p[0], "name")?;
        let (offset, length) = (int(&p[1], "offset")?, int(&p[2], "length")?);
        let snapshot = self.snapshot().await?;
        let nothing = || Value::Array(vec![Value::string(""), Value::Int(0), Value::Bool(false)]);
        let Some(path) = stream.of(snapshot.process(&name)?) else {
            return Ok(nothing());
        };
        if !path.exists() {
            return Ok(nothing());
        }
        let (bytes, offset, overflow) = blocking(move || logs::tail(&path, offset, length)).await?;
        Ok(Value::Array(vec![
            Value::String(logs::text(bytes)),
            Value::Int(offset),
            Value::Bool(overflow),
        ]))
    }

    async fn all_config_info(&self) -> Result<Value, Fault> {
        let (available, active) = self.configs().await?;
        let mut infos: Vec<(String, Value)> = Vec::new();
        for spec in available.programs.values() {
            let in_use = active.programs.contains_key(&spec.name);
            for process in &spec.processes {
                let info = config_info(&process.spec, &process.name, in_use);
                infos.push((process.name.clone(), info));
            }
        }
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Value::Array(infos.into_iter().map(|(_, v)| v).collect()))
    }

    /// supervisord's restart, on what taskmaster has: every process stops, the configuration
    /// file is read again and applied, and the autostart programs start. Calls made meanwhile
    /// are refused with SHUTDOWN_STATE, as supervisord's are while it restarts.
    async fn restart(&self) {
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

    /// Whether a `shutdown` (alone or in a multicall) is to be sent to the daemon once its
    /// answer is out: the daemon may exit as soon as it has the request, and take an unsent
    /// answer with it.
    pub fn take_shutdown(&self) -> bool {
        self.shutdown_due.swap(false, Ordering::SeqCst)
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

/// Every process at one moment.
struct Snapshot {
    clock: wire::Clock,
    now: taskmaster_core::Time,
    processes: Vec<ProcessInfo>,
}

/// What a supervisord name names.
enum Target<'a> {
    Process(&'a ProcessInfo),
    Group(String),
}

impl Snapshot {
    /// supervisord's `_getGroupAndProcess`: `group:process`, `group:*` or `group:`, or a bare
    /// name that is both the group and the process.
    fn lookup(&self, name: &str) -> Result<Target<'_>, Fault> {
        let (group, process) = match name.split_once(':') {
            Some((group, "" | "*")) => (group, None),
            Some((group, process)) => (group, Some(process)),
            None => (name, Some(name)),
        };
        self.group_exists(group)
            .map_err(|_| Fault::with(Code::BadName, name))?;
        let Some(process) = process else {
            return Ok(Target::Group(group.to_string()));
        };
        self.processes
            .iter()
            .find(|info| info.group == group && short_name(&info.name) == process)
            .map(Target::Process)
            .ok_or_else(|| Fault::with(Code::BadName, name))
    }

    /// The one process `name` names; a group is BAD_NAME here.
    fn process(&self, name: &str) -> Result<&ProcessInfo, Fault> {
        match self.lookup(name)? {
            Target::Process(info) => Ok(info),
            Target::Group(_) => Err(Fault::with(Code::BadName, name)),
        }
    }

    fn group_exists(&self, group: &str) -> Result<(), Fault> {
        if self.processes.iter().any(|info| info.group == group) {
            Ok(())
        } else {
            Err(Fault::with(Code::BadName, group))
        }
    }

    /// The processes by group, then by process name.
    fn sorted(&self) -> Vec<&ProcessInfo> {
        let mut sorted: Vec<&ProcessInfo> = self.processes.iter().collect();
        sorted
            .sort_by(|a, b| (&a.group, short_name(&a.name)).cmp(&(&b.group, short_name(&b.name))));
        sorted
    }
}

/// `workers_00` of `workers:workers_00`; `web` of `web`.
fn short_name(full: &str) -> &str {
    full.rsplit_once(':').map_or(full, |(_, short)| short)
}

/// The group of a process's full name.
fn group_of(full: &str) -> &str {
    full.split_once(':').map_or(full, |(group, _)| group)
}

/// supervisord's state codes.
fn state_code(state: State) -> i64 {
    match state {
        State::Stopped => 0,
        State::Starting => 10,
        State::Running => 20,
        State::Backoff => 30,
        State::Stopping => 40,
        State::Exited => 100,
        State::Fatal => 200,
        State::Unknown => 1000,
    }
}

/// A Unix time as supervisord sends it: whole seconds in an XML-RPC int.
fn seconds(unix: f64) -> Value {
    Value::Int((unix as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX)))
}

/// getProcessInfo's struct, members in supervisord's order.
fn process_info(clock: &wire::Clock, now: taskmaster_core::Time, info: &ProcessInfo) -> Value {
    let path = |p: &Option<PathBuf>| {
        Value::string(
            p.as_deref()
                .map_or(String::new(), |p| p.display().to_string()),
        )
    };
    let exitstatus = match info.last_exit.as_ref().and_then(|e| e.status) {
        Some(ExitStatus::Code(code)) => i64::from(code),
        // supervisord's exit status for a death by signal.
        Some(ExitStatus::Signal { .. }) => -1,
        None => 0,
    };
    Value::record([
        ("name", Value::string(short_name(&info.name))),
        ("group", Value::string(info.group.clone())),
        (
            "start",
            seconds(info.started_at.map_or(0.0, |t| clock.wall(t))),
        ),
        (
            "stop",
            seconds(info.stopped_at.map_or(0.0, |t| clock.wall(t))),
        ),
        ("now", seconds(clock.wall(now))),
        ("state", Value::Int(state_code(info.state))),
        ("statename", Value::string(info.state.name())),
        (
            "spawnerr",
            Value::string(info.spawn_error.clone().unwrap_or_default()),
        ),
        ("exitstatus", Value::Int(exitstatus)),
        ("logfile", path(&info.stdout)),
        ("stdout_logfile", path(&info.stdout)),
        ("stderr_logfile", path(&info.stderr)),
        ("pid", Value::Int(info.pid.map_or(0, i64::from))),
        (
            "description",
            Value::string(wire::process(clock, info).description),
        ),
    ])
}

/// getAllConfigInfo's struct for one process. Settings taskmaster does not have get
/// supervisord's defaults for them.
fn config_info(spec: &ProgramSpec, process: &str, in_use: bool) -> Value {
    let none_or = |p: &Option<PathBuf>| {
        Value::string(
            p.as_deref()
                .map_or("none".to_string(), |p| p.display().to_string()),
        )
    };
    let secs = |d: std::time::Duration| {
        if d.subsec_nanos() == 0 {
            Value::Int(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        } else {
            Value::Double(d.as_secs_f64())
        }
    };
    Value::record([
        ("autostart", Value::Bool(spec.autostart)),
        (
            "autorestart",
            match spec.autorestart {
                AutoRestart::Always => Value::Bool(true),
                AutoRestart::Never => Value::Bool(false),
                AutoRestart::Unexpected => Value::string("unexpected"),
            },
        ),
        ("directory", none_or(&spec.workingdir)),
        // supervisord's: the uid of `user`, none without it.
        (
            "uid",
            spec.user.as_ref().map_or(Value::string("none"), |user| {
                Value::Int(i64::from(user.uid))
            }),
        ),
        ("command", Value::string(spec.cmd.clone())),
        (
            "exitcodes",
            Value::Array(
                spec.exitcodes
                    .iter()
                    .map(|c| Value::Int(i64::from(*c)))
                    .collect(),
            ),
        ),
        ("group", Value::string(spec.name.clone())),
        ("group_prio", Value::Int(i64::from(spec.priority))),
        ("inuse", Value::Bool(in_use)),
        // A stop signals the whole process group, and so does the SIGKILL after stoptime.
        ("killasgroup", Value::Bool(true)),
        ("name", Value::string(process)),
        ("process_prio", Value::Int(i64::from(spec.priority))),
        ("redirect_stderr", Value::Bool(false)),
        ("startretries", Value::Int(i64::from(spec.startretries))),
        ("startsecs", secs(spec.starttime)),
        ("stdout_capture_maxbytes", Value::Int(0)),
        ("stdout_events_enabled", Value::Bool(false)),
        ("stdout_logfile", none_or(&spec.stdout)),
        (
            "stdout_logfile_backups",
            Value::Int(i64::from(spec.stdout_rotation.backups)),
        ),
        (
            "stdout_logfile_maxbytes",
            xml_int(spec.stdout_rotation.maxbytes),
        ),
        ("stdout_syslog", Value::Bool(spec.stdout_syslog.is_some())),
        (
            "stopsignal",
            Value::Int(i64::from(spec.stopsignal.number())),
        ),
        ("stopwaitsecs", secs(spec.stoptime)),
        ("stderr_capture_maxbytes", Value::Int(0)),
        ("stderr_events_enabled", Value::Bool(false)),
        ("stderr_logfile", none_or(&spec.stderr)),
        (
            "stderr_logfile_backups",
            Value::Int(i64::from(spec.stderr_rotation.backups)),
        ),
        (
            "stderr_logfile_maxbytes",
            xml_int(spec.stderr_rotation.maxbytes),
        ),
        ("stderr_syslog", Value::Bool(spec.stderr_syslog.is_some())),
        // supervisord's AUTO is its None, which it answers as "none".
        (
            "serverurl",
            Value::string(spec.serverurl.as_deref().unwrap_or("none")),
        ),
    ])
}

/// One entry of a group or all call: `{name, group, status, description}`.
fn result_entry(full_name: &str, fault: Option<&Fault>) -> Value {
    let (status, description) = match fault {
        None => (Code::Success.number(), "OK".to_string()),
        Some(fault) => (fault.code.number(), fault.text.clone()),
    };
    Value::record([
        ("name", Value::string(short_name(full_name))),
        ("group", Value::string(group_of(full_name))),
        ("status", Value::Int(i64::from(status))),
        ("description", Value::String(description)),
    ])
}

/// The core's outcomes as group or all entries; a restart's intermediate "stopped" is not one.
fn outcome_entries(outcomes: &[Outcome]) -> Value {
    Value::Array(
        outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(
                    Done::Started
                    | Done::Stopped
                    | Done::Signalled
                    | Done::Killed
                    | Done::Added
                    | Done::Removed
                    | Done::Sent,
                ) => result_entry(&o.process, None),
                Err(failure) => {
                    result_entry(&o.process, Some(&Fault::from_failure(failure, &o.process)))
                }
            })
            .collect(),
    )
}

async fn read_file(path: PathBuf, offset: i64, length: i64) -> Result<Value, Fault> {
    if !path.exists() {
        return Err(Fault::with(Code::NoFile, path.display()));
    }
    let bytes = blocking(move || logs::read(&path, offset, length)).await??;
    Ok(Value::String(logs::text(bytes)))
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

fn find_method(name: &str) -> Result<&'static Method, Fault> {
    METHODS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Fault::new(Code::SignatureUnsupported))
}

fn unexpected(reply: Reply) -> Fault {
    Fault::with(
        Code::Failed,
        format!("unexpected reply from the supervisor: {reply:?}"),
    )
}

// ---- parameters ------------------------------------------------------------------------

/// Between `min` and `max` parameters, or INCORRECT_PARAMETERS as supervisord answers a call
/// with the wrong number of arguments.
fn arity(params: &[Value], min: usize, max: usize) -> Result<(), Fault> {
    if (min..=max).contains(&params.len()) {
        Ok(())
    } else {
        Err(Fault::new(Code::IncorrectParameters))
    }
}

fn wrong_type(what: &str, expected: &str, value: &Value) -> Fault {
    Fault::with(
        Code::IncorrectParameters,
        format!("{what} must be {expected}, not {}", value.kind()),
    )
}

fn string(value: &Value, what: &str) -> Result<String, Fault> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Base64(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        other => Err(wrong_type(what, "a string", other)),
    }
}

/// An integer, or text that is one (supervisord applies Python's `int()`).
fn int(value: &Value, what: &str) -> Result<i64, Fault> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| wrong_type(what, "an integer", value)),
        other => Err(wrong_type(what, "an integer", other)),
    }
}

/// `wait`, true when absent.
fn optional_bool(value: Option<&Value>, what: &str) -> Result<bool, Fault> {
    match value {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Int(i)) => Ok(*i != 0),
        Some(other) => Err(wrong_type(what, "a boolean", other)),
    }
}

/// A signal as given: a name (`HUP`, `SIGHUP`) or a number, as text or an int.
fn signal_text(value: &Value) -> Result<String, Fault> {
    match value {
        Value::Int(i) => Ok(i.to_string()),
        other => string(other, "signal"),
    }
}

/// An XML-RPC integer (32 bits in the protocol), saturated.
fn xml_int(n: u64) -> Value {
    Value::Int(i64::from(i32::try_from(n).unwrap_or(i32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_sorted_and_documented_with_their_signature() {
        let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for method in METHODS {
            let params = method.help.matches("@param").count();
            assert_eq!(params + 1, method.signature.len(), "{}", method.name);
            assert!(method.help.contains("@return"), "{}", method.name);
        }
    }

    #[test]
    fn names_resolve_as_in_supervisord() {
        let info = |name: &str, program: &str| ProcessInfo {
            name: name.to_string(),
            program: program.to_string(),
            group: program.to_string(),
            state: State::Stopped,
            pid: None,
            started_at: None,
            stopped_at: None,
            spawn_error: None,
            last_exit: None,
            stdout: None,
            stderr: None,
            stdout_syslog: false,
            stderr_syslog: false,
            paused: None,
            status_text: None,
            health: None,
            gave_up: None,
        };
        let now = taskmaster_core::Time::from_nanos(1);
        let snapshot = Snapshot {
            clock: wire::Clock::new(now),
            now,
            processes: vec![
                info("web", "web"),
                info("workers:workers_00", "workers"),
                info("workers:workers_01", "workers"),
            ],
        };
        let process = |name: &str| snapshot.process(name).map(|i| i.name.clone());
        assert_eq!(process("web"), Ok("web".to_string()));
        assert_eq!(process("web:web"), Ok("web".to_string()));
        assert_eq!(
            process("workers:workers_01"),
            Ok("workers:workers_01".to_string())
        );
        assert_eq!(process("workers").unwrap_err().text, "BAD_NAME: workers");
        assert_eq!(
            process("workers_00").unwrap_err().text,
            "BAD_NAME: workers_00"
        );
        assert_eq!(process("nope:x").unwrap_err().text, "BAD_NAME: nope:x");
        assert!(matches!(snapshot.lookup("workers:*"), Ok(Target::Group(g)) if g == "workers"));
        assert!(matches!(snapshot.lookup("workers:"), Ok(Target::Group(g)) if g == "workers"));
        assert_eq!(process("workers:*").unwrap_err().code, Code::BadName);
    }
}
