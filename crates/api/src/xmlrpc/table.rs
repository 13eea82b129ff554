//! The method table: every method's name, signature, help and handler, in one place.
//!
//! A handler is an ordinary `async fn` of [`Rpc`] from typed parameters to a typed answer
//! ([`super::typed`]). [`method`] wraps it: the call's values are read into the parameters
//! once, the answer is written back, and the signature and the help's `@param` and `@return`
//! lines are made from the same types, so that `system.methodSignature`, `system.methodHelp`
//! and what the handler takes cannot disagree. `system.listMethods` lists the table, whose
//! methods are sorted by name; supervisord's aliases for old clients are entries of their own
//! (their own help) with the same handler.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use super::fault::{Code, Fault};
use super::methods::Rpc;
use super::typed::{Answer, Params};
use super::value::Value;

/// What a handler's future is, once its types are erased.
type Pending = Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send>>;

/// One published method.
pub struct Method {
    pub name: &'static str,
    /// The return type, then each parameter's.
    pub signature: Vec<&'static str>,
    pub help: String,
    handler: Box<dyn Fn(Rpc, Vec<Value>) -> Pending + Send + Sync>,
}

impl Method {
    /// Reads `params` into the handler's parameters and runs it.
    pub fn call(&self, rpc: Rpc, params: Vec<Value>) -> Pending {
        (self.handler)(rpc, params)
    }
}

/// The documentation of a method: what it does, each parameter's name and meaning, and the
/// meaning of its answer. The types come from the handler.
struct Doc {
    what: &'static str,
    params: &'static [(&'static str, &'static str)],
    returns: &'static str,
}

/// The entry for the method `name` done by `handler`.
fn method<P, R, F, Fut>(name: &'static str, doc: Doc, handler: F) -> Method
where
    P: Params + 'static,
    R: Answer + 'static,
    F: Fn(Rpc, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Fault>> + Send + 'static,
{
    let types = P::types();
    let mut help = doc.what.to_string();
    for ((param, meaning), ty) in doc.params.iter().zip(&types) {
        let _ = write!(help, "\n@param {ty} {param} {meaning}");
    }
    let _ = write!(help, "\n@return {} {}", R::TYPE, doc.returns);
    let mut signature = vec![R::TYPE];
    signature.extend(types);
    let names: Vec<&'static str> = doc.params.iter().map(|(name, _)| *name).collect();
    Method {
        name,
        signature,
        help,
        handler: Box::new(move |rpc, values| match P::read(values, &names) {
            Ok(params) => {
                let answer = handler(rpc, params);
                Box::pin(async move { answer.await.map(Answer::into_value) })
            }
            Err(fault) => Box::pin(std::future::ready(Err(fault))),
        }),
    }
}

/// The method called `name`.
pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// `system.methodHelp` and `system.methodSignature` of a method that is not one.
fn unsupported() -> Fault {
    Fault::new(Code::SignatureUnsupported)
}

// The meanings shared by several entries.
const PROCESS: (&str, &str) = ("name", "the process (or group:name)");
const PROCESS_OR_GROUP: (&str, &str) = ("name", "the process (or group:name, or group:*)");
const GROUP: (&str, &str) = ("name", "the group");
const PROGRAM: (&str, &str) = ("name", "the program (process group)");
const SIGNAL: (&str, &str) = ("signal", "a name (HUP) or a number (1)");
const READ: [(&str, &str); 2] = [
    (
        "offset",
        "where to start; negative: from the end, with length 0",
    ),
    ("length", "how many bytes; 0: to the end"),
];
const TAIL: [(&str, &str); 2] = [
    ("offset", "where the last tail ended"),
    ("length", "how many bytes at most"),
];
const TRUE: &str = "true unless error";
const ENTRIES: &str = "one {name, group, status, description} per process";
const BYTES: &str = "the bytes";
const TAILED: &str = "[string bytes, int offset, bool overflow]";

/// Every method, sorted by name.
static METHODS: LazyLock<Vec<Method>> = LazyLock::new(|| {
    let doc = |what, params, returns| Doc {
        what,
        params,
        returns,
    };
    vec![
        method(
            "supervisor.addProcessGroup",
            doc("Add a program of the configuration read by reloadConfig to the running ones.", &[PROGRAM], TRUE),
            Rpc::add_process_group,
        ),
        method(
            "supervisor.clearAllProcessLogs",
            doc("Empty the stdout and stderr files of every process.", &[], ENTRIES),
            Rpc::clear_all_process_logs,
        ),
        method(
            "supervisor.clearLog",
            doc("Empty taskmaster's event log.", &[], TRUE),
            Rpc::clear_log,
        ),
        method(
            "supervisor.clearProcessLog",
            doc("Alias of clearProcessLogs.", &[PROCESS], TRUE),
            Rpc::clear_process_logs,
        ),
        method(
            "supervisor.clearProcessLogs",
            doc("Empty a process's stdout and stderr files.", &[PROCESS], TRUE),
            Rpc::clear_process_logs,
        ),
        method(
            "supervisor.getAPIVersion",
            doc("The version of this XML-RPC API.", &[], "version"),
            Rpc::api_version,
        ),
        method(
            "supervisor.getAllConfigInfo",
            doc("The configuration of every process, in use or available to add.", &[], "one struct per process"),
            Rpc::all_config_info,
        ),
        method(
            "supervisor.getAllProcessInfo",
            doc("The state of every process.", &[], "one struct per process, as getProcessInfo"),
            Rpc::all_process_info,
        ),
        method(
            "supervisor.getIdentification",
            doc("Return identifying string of supervisord (its configuration's identifier).", &[], "identifier"),
            Rpc::identification,
        ),
        method(
            "supervisor.getPID",
            doc("taskmaster's own pid.", &[], "pid"),
            Rpc::pid,
        ),
        method(
            "supervisor.getProcessInfo",
            doc("The state of one process.", &[PROCESS], "name, group, description, start, stop, now, state, statename, spawnerr, exitstatus, logfile, stdout_logfile, stderr_logfile, pid"),
            Rpc::process_info,
        ),
        method(
            "supervisor.getState",
            doc("The supervisor's own state.", &[], "statecode, statename"),
            Rpc::state,
        ),
        method(
            "supervisor.getSupervisorVersion",
            doc("The supervisor release whose interface this is.", &[], "version"),
            Rpc::supervisor_version,
        ),
        method(
            "supervisor.getVersion",
            doc("Alias of getAPIVersion.", &[], "version"),
            Rpc::api_version,
        ),
        method(
            "supervisor.readLog",
            doc("Read the event log.", &READ, BYTES),
            Rpc::read_log,
        ),
        method(
            "supervisor.readMainLog",
            doc("Alias of readLog.", &READ, BYTES),
            Rpc::read_log,
        ),
        method(
            "supervisor.readProcessLog",
            doc("Alias of readProcessStdoutLog.", &[PROCESS, READ[0], READ[1]], BYTES),
            Rpc::read_process_stdout_log,
        ),
        method(
            "supervisor.readProcessStderrLog",
            doc("Read a process's stderr file.", &[PROCESS, READ[0], READ[1]], BYTES),
            Rpc::read_process_stderr_log,
        ),
        method(
            "supervisor.readProcessStdoutLog",
            doc("Read a process's stdout file.", &[PROCESS, READ[0], READ[1]], BYTES),
            Rpc::read_process_stdout_log,
        ),
        method(
            "supervisor.reloadConfig",
            doc("Read the configuration file again and say what differs from the running one, changing nothing; addProcessGroup and removeProcessGroup then apply it.", &[], "[[added, changed, removed]]"),
            Rpc::reload_config,
        ),
        method(
            "supervisor.removeProcessGroup",
            doc("Remove a program whose processes are all stopped.", &[PROGRAM], TRUE),
            Rpc::remove_process_group,
        ),
        method(
            "supervisor.restart",
            doc("Restart: stop every process, reload the configuration file, start the autostart programs.", &[], TRUE),
            Rpc::restart,
        ),
        method(
            "supervisor.sendProcessStdin",
            doc("Write to a process's stdin: NO_FILE unless its stdin is a pipe (stdin: pipe, the default for programs from a supervisord configuration), or when it closed its stdin or has not read the last MiB sent.", &[PROCESS, ("chars", "what to write")], TRUE),
            Rpc::send_process_stdin,
        ),
        method(
            "supervisor.sendRemoteCommEvent",
            doc("Send a REMOTE_COMMUNICATION event to the event listeners that take it; taskmaster also records it in its event log (remote communication event \"TYPE\": \"DATA\", the data cut at 200 characters).", &[("type", "the event's type"), ("data", "the event's body")], TRUE),
            Rpc::send_remote_comm_event,
        ),
        method(
            "supervisor.shutdown",
            doc("Stop every process, then exit.", &[], TRUE),
            Rpc::shutdown,
        ),
        method(
            "supervisor.signalAllProcesses",
            doc("Send a signal to every process that has a child.", &[SIGNAL], ENTRIES),
            Rpc::signal_all_processes,
        ),
        method(
            "supervisor.signalProcess",
            doc("Send a signal to a process.", &[PROCESS_OR_GROUP, SIGNAL], TRUE),
            Rpc::signal_process,
        ),
        method(
            "supervisor.signalProcessGroup",
            doc("Send a signal to every process of a group that has a child.", &[GROUP, SIGNAL], ENTRIES),
            Rpc::signal_process_group,
        ),
        method(
            "supervisor.startAllProcesses",
            doc("Start every process that is not running.", &[("wait", "wait until each is RUNNING or failed")], ENTRIES),
            Rpc::start_all_processes,
        ),
        method(
            "supervisor.startProcess",
            doc("Start a process.", &[PROCESS_OR_GROUP, ("wait", "wait until it is RUNNING or failed")], TRUE),
            Rpc::start_process,
        ),
        method(
            "supervisor.startProcessGroup",
            doc("Start every process of a group that is not running.", &[GROUP, ("wait", "wait until each is RUNNING or failed")], ENTRIES),
            Rpc::start_process_group,
        ),
        method(
            "supervisor.stopAllProcesses",
            doc("Stop every running process.", &[("wait", "wait until each has stopped")], ENTRIES),
            Rpc::stop_all_processes,
        ),
        method(
            "supervisor.stopProcess",
            doc("Stop a process.", &[PROCESS_OR_GROUP, ("wait", "wait until it has stopped")], TRUE),
            Rpc::stop_process,
        ),
        method(
            "supervisor.stopProcessGroup",
            doc("Stop every running process of a group.", &[GROUP, ("wait", "wait until each has stopped")], ENTRIES),
            Rpc::stop_process_group,
        ),
        method(
            "supervisor.tailProcessLog",
            doc("Alias of tailProcessStdoutLog.", &[PROCESS, TAIL[0], TAIL[1]], TAILED),
            Rpc::tail_process_stdout_log,
        ),
        method(
            "supervisor.tailProcessStderrLog",
            doc("The end of a process's stderr file: length bytes from offset, or the last length bytes when the file has grown past offset + length (overflow).", &[PROCESS, TAIL[0], TAIL[1]], TAILED),
            Rpc::tail_process_stderr_log,
        ),
        method(
            "supervisor.tailProcessStdoutLog",
            doc("The end of a process's stdout file: length bytes from offset, or the last length bytes when the file has grown past offset + length (overflow).", &[PROCESS, TAIL[0], TAIL[1]], TAILED),
            Rpc::tail_process_stdout_log,
        ),
        method(
            "system.listMethods",
            doc("The names of every method.", &[], "method names"),
            Rpc::list_methods,
        ),
        method(
            "system.methodHelp",
            doc("A method's documentation.", &[("name", "the method")], "its documentation"),
            Rpc::method_help,
        ),
        method(
            "system.methodSignature",
            doc("A method's types: [return type, parameter types...].", &[("name", "the method")], "the types"),
            Rpc::method_signature,
        ),
        method(
            "system.multicall",
            doc("Make several calls at once, in order. Each call is {methodName, params}; each result is the call's value, or {faultCode, faultString}.", &[("calls", "the calls")], "the results"),
            Rpc::multicall,
        ),
    ]
});

// ---- system.* --------------------------------------------------------------------------

impl Rpc {
    async fn list_methods(self, (): ()) -> Result<Vec<&'static str>, Fault> {
        Ok(METHODS.iter().map(|m| m.name).collect())
    }

    async fn method_help(self, (name,): (String,)) -> Result<String, Fault> {
        find(&name).map(|m| m.help.clone()).ok_or_else(unsupported)
    }

    async fn method_signature(self, (name,): (String,)) -> Result<Vec<&'static str>, Fault> {
        find(&name)
            .map(|m| m.signature.clone())
            .ok_or_else(unsupported)
    }

    /// Each call in order; supervisord's results are the values themselves, not wrapped in
    /// arrays, and a fault is its struct.
    async fn multicall(self, (calls,): (Vec<Value>,)) -> Result<Vec<Result<Value, Fault>>, Fault> {
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            results.push(Box::pin(self.one_of_multicall(call)).await);
        }
        Ok(results)
    }

    async fn one_of_multicall(&self, call: Value) -> Result<Value, Fault> {
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
                return Err(super::typed::wrong_type("params", "an array", other));
            }
        };
        self.call(method, params).await
    }
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
        for method in METHODS.iter() {
            let params = method.help.matches("@param").count();
            assert_eq!(params + 1, method.signature.len(), "{}", method.name);
            assert!(method.help.contains("@return"), "{}", method.name);
        }
    }

    #[test]
    fn signatures_and_help_come_from_the_handlers_types() {
        let signature = |name: &str| find(name).map(|m| m.signature.clone());
        assert_eq!(
            signature("supervisor.startProcess"),
            Some(vec!["boolean", "string", "boolean"])
        );
        assert_eq!(
            signature("supervisor.tailProcessLog"),
            Some(vec!["array", "string", "int", "int"])
        );
        assert_eq!(
            signature("supervisor.getProcessInfo"),
            Some(vec!["struct", "string"])
        );
        assert_eq!(signature("supervisor.getPID"), Some(vec!["int"]));
        assert_eq!(
            find("supervisor.startProcess").map(|m| m.help.as_str()),
            Some(
                "Start a process.\n@param string name the process (or group:name, or group:*)\n\
                 @param boolean wait wait until it is RUNNING or failed\n\
                 @return boolean true unless error"
            )
        );
        assert!(find("supervisor._update").is_none());
    }
}
