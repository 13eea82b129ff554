//! supervisord's answers as types: the structs and arrays its methods return, and how each is
//! made from the core's view of a process or a program. Numbers are XML-RPC ints (32 bits on
//! the wire), saturated where taskmaster's may be larger.

use std::path::PathBuf;

use taskmaster_core::{AutoRestart, Done, ExitStatus, Outcome, ProcessInfo, ProgramSpec, State};

use super::fault::{Code, Fault};
use super::typed::{xml_struct, Answer};
use super::value::Value;
use crate::wire;

xml_struct! {
    /// `getProcessInfo`: one process, members in supervisord's order.
    pub struct ProcessStatus {
        name: String,
        group: String,
        start: i64,
        stop: i64,
        now: i64,
        state: i64,
        statename: &'static str,
        spawnerr: String,
        exitstatus: i64,
        logfile: String,
        stdout_logfile: String,
        stderr_logfile: String,
        pid: i64,
        description: String,
    }
}

xml_struct! {
    /// One entry of a group or all call (`startProcessGroup`, `stopAllProcesses`...).
    pub struct ResultEntry {
        name: String,
        group: String,
        status: i64,
        description: String,
    }
}

xml_struct! {
    /// `getState`: the supervisor's own state.
    pub struct SupervisorState {
        statecode: i64,
        statename: &'static str,
    }
}

xml_struct! {
    /// `getAllConfigInfo`: one process's settings. Those taskmaster does not have get
    /// supervisord's defaults; those whose type supervisord varies are plain values.
    pub struct ConfigInfo {
        autostart: bool,
        /// `true`, `false` or `"unexpected"`.
        autorestart: Value,
        directory: String,
        /// The uid of `user`, or `"none"`.
        uid: Value,
        command: String,
        exitcodes: Vec<i64>,
        group: String,
        group_prio: i64,
        inuse: bool,
        killasgroup: bool,
        name: String,
        process_prio: i64,
        redirect_stderr: bool,
        startretries: i64,
        /// Whole seconds as an int, else a double.
        startsecs: Value,
        stdout_capture_maxbytes: i64,
        stdout_events_enabled: bool,
        stdout_logfile: String,
        stdout_logfile_backups: i64,
        stdout_logfile_maxbytes: i64,
        stdout_syslog: bool,
        stopsignal: i64,
        stopwaitsecs: Value,
        stderr_capture_maxbytes: i64,
        stderr_events_enabled: bool,
        stderr_logfile: String,
        stderr_logfile_backups: i64,
        stderr_logfile_maxbytes: i64,
        stderr_syslog: bool,
        serverurl: String,
    }
}

/// `tailProcessStdoutLog`'s answer: `[bytes, offset, overflow]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    pub bytes: String,
    /// Where the next tail starts: the file's size.
    pub offset: i64,
    /// Whether the file grew past what was asked, so that bytes were skipped.
    pub overflow: bool,
}

impl Tail {
    /// Nothing to show: no file, or none written yet.
    pub fn nothing() -> Tail {
        Tail {
            bytes: String::new(),
            offset: 0,
            overflow: false,
        }
    }
}

impl Answer for Tail {
    const TYPE: &'static str = "array";
    fn into_value(self) -> Value {
        Value::Array(vec![
            self.bytes.into_value(),
            self.offset.into_value(),
            self.overflow.into_value(),
        ])
    }
}

/// `reloadConfig`'s answer, one of: `[added, changed, removed]`, program names.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Answer for Changes {
    const TYPE: &'static str = "array";
    fn into_value(self) -> Value {
        Value::Array(vec![
            self.added.into_value(),
            self.changed.into_value(),
            self.removed.into_value(),
        ])
    }
}

/// What `startProcess`, `stopProcess` and `signalProcess` answer: `true` for a process, and,
/// as supervisord, the group call's entries for a `group:*` name.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessOrGroup {
    Process,
    Group(Vec<ResultEntry>),
}

impl Answer for ProcessOrGroup {
    const TYPE: &'static str = "boolean";
    fn into_value(self) -> Value {
        match self {
            ProcessOrGroup::Process => true.into_value(),
            ProcessOrGroup::Group(entries) => entries.into_value(),
        }
    }
}

/// `workers_00` of `workers:workers_00`; `web` of `web`.
pub fn short_name(full: &str) -> &str {
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
fn seconds(unix: f64) -> i64 {
    (unix as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// An XML-RPC integer (32 bits in the protocol), saturated.
fn xml_int(n: u64) -> i64 {
    i64::from(i32::try_from(n).unwrap_or(i32::MAX))
}

/// A path as supervisord shows it, `none_as` when there is none.
fn path_or(path: &Option<PathBuf>, none_as: &str) -> String {
    path.as_deref()
        .map_or(none_as.to_string(), |p| p.display().to_string())
}

/// `getProcessInfo`'s struct of a process seen at `now`.
pub fn process_status(
    clock: &wire::Clock,
    now: taskmaster_core::Time,
    info: &ProcessInfo,
) -> ProcessStatus {
    let exitstatus = match info.last_exit.as_ref().and_then(|e| e.status) {
        Some(ExitStatus::Code(code)) => i64::from(code),
        // supervisord's exit status for a death by signal.
        Some(ExitStatus::Signal { .. }) => -1,
        None => 0,
    };
    ProcessStatus {
        name: short_name(&info.name).to_string(),
        group: info.group.clone(),
        start: seconds(info.started_at.map_or(0.0, |t| clock.wall(t))),
        stop: seconds(info.stopped_at.map_or(0.0, |t| clock.wall(t))),
        now: seconds(clock.wall(now)),
        state: state_code(info.state),
        statename: info.state.name(),
        spawnerr: info.spawn_error.clone().unwrap_or_default(),
        exitstatus,
        logfile: path_or(&info.stdout, ""),
        stdout_logfile: path_or(&info.stdout, ""),
        stderr_logfile: path_or(&info.stderr, ""),
        pid: info.pid.map_or(0, i64::from),
        description: wire::process(clock, info).description,
    }
}

/// `getAllConfigInfo`'s struct for the process `process` of a program.
pub fn config_info(spec: &ProgramSpec, process: &str, in_use: bool) -> ConfigInfo {
    let secs = |d: std::time::Duration| {
        if d.subsec_nanos() == 0 {
            Value::Int(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        } else {
            Value::Double(d.as_secs_f64())
        }
    };
    ConfigInfo {
        autostart: spec.autostart,
        autorestart: match spec.autorestart {
            AutoRestart::Always => Value::Bool(true),
            AutoRestart::Never => Value::Bool(false),
            AutoRestart::Unexpected => Value::string("unexpected"),
        },
        directory: path_or(&spec.workingdir, "none"),
        // supervisord's: the uid of `user`, none without it.
        uid: spec.user.as_ref().map_or(Value::string("none"), |user| {
            Value::Int(i64::from(user.uid))
        }),
        command: spec.cmd.clone(),
        exitcodes: spec.exitcodes.iter().map(|c| i64::from(*c)).collect(),
        group: spec.name.clone(),
        group_prio: i64::from(spec.priority),
        inuse: in_use,
        // A stop signals the whole process group, and so does the SIGKILL after stoptime.
        killasgroup: true,
        name: process.to_string(),
        process_prio: i64::from(spec.priority),
        redirect_stderr: false,
        startretries: i64::from(spec.startretries),
        startsecs: secs(spec.starttime),
        stdout_capture_maxbytes: xml_int(spec.stdout_events.capture_maxbytes),
        stdout_events_enabled: spec.stdout_events.log,
        stdout_logfile: path_or(&spec.stdout, "none"),
        stdout_logfile_backups: i64::from(spec.stdout_rotation.backups),
        stdout_logfile_maxbytes: xml_int(spec.stdout_rotation.maxbytes),
        stdout_syslog: spec.stdout_syslog.is_some(),
        stopsignal: i64::from(spec.stopsignal.number()),
        stopwaitsecs: secs(spec.stoptime),
        stderr_capture_maxbytes: xml_int(spec.stderr_events.capture_maxbytes),
        stderr_events_enabled: spec.stderr_events.log,
        stderr_logfile: path_or(&spec.stderr, "none"),
        stderr_logfile_backups: i64::from(spec.stderr_rotation.backups),
        stderr_logfile_maxbytes: xml_int(spec.stderr_rotation.maxbytes),
        stderr_syslog: spec.stderr_syslog.is_some(),
        // supervisord's AUTO is its None, which it answers as "none".
        serverurl: spec.serverurl.clone().unwrap_or_else(|| "none".to_string()),
    }
}

/// One entry of a group or all call: `OK`, or the fault's code and string.
pub fn result_entry(full_name: &str, fault: Option<&Fault>) -> ResultEntry {
    let (status, description) = match fault {
        None => (Code::Success.number(), "OK".to_string()),
        Some(fault) => (fault.code.number(), fault.text.clone()),
    };
    ResultEntry {
        name: short_name(full_name).to_string(),
        group: group_of(full_name).to_string(),
        status: i64::from(status),
        description,
    }
}

/// The core's outcomes as group or all entries; a restart's intermediate "stopped" is not one.
pub fn outcome_entries(outcomes: &[Outcome]) -> Vec<ResultEntry> {
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
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn config_info_tells_what_the_program_tells_event_listeners() {
        let yaml = "programs:\n  web:\n    cmd: /bin/web\n    stdout_events_enabled: true\n    \
                    stderr_capture_maxbytes: 1KB\n";
        let config = taskmaster_core::Config::parse(yaml, Path::new("/tmp/t.yaml"))
            .expect("a configuration");
        let spec = config.programs.get("web").expect("web");
        let info = config_info(spec, "web", true);
        assert!(info.stdout_events_enabled);
        assert_eq!(info.stdout_capture_maxbytes, 0);
        assert!(!info.stderr_events_enabled);
        assert_eq!(info.stderr_capture_maxbytes, 1024);
    }
}
