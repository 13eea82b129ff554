//! Health checks and `on_exit` hooks, run as tasks on the loop.
//!
//! A command check or a hook is a child of taskmaster (`/bin/sh -c`, in its own process
//! group). The one reaper collects it with everything else and hands its wait status to the
//! task waiting for it ([`HelperExits`]); the task bounds the wait with the check's or hook's
//! timeout and kills the helper's whole group when it is over. A helper's group never outlives
//! it: what is left in it when the helper ends is killed at its reaping. Network checks are
//! plain tasks.

use std::collections::HashMap;
use std::time::Duration;

use taskmaster_config::{Probe, ProgramSpec};
use taskmaster_core::{ExitStatus, Signal};
use tokio::sync::oneshot;

use crate::{probe, sys};

/// The children that are helpers, not processes: what each one is (`web: its health check`),
/// and who waits for its end.
#[derive(Default)]
pub struct HelperExits(HashMap<u32, (String, oneshot::Sender<ExitStatus>)>);

impl HelperExits {
    /// Registers helper `pid`, which `what` names for the event log; the receiver gets its
    /// wait status once it is reaped.
    pub fn register(&mut self, pid: u32, what: String) -> oneshot::Receiver<ExitStatus> {
        let (sender, receiver) = oneshot::channel();
        self.0.insert(pid, (what, sender));
        receiver
    }

    /// Hands a reaped pid's status to its waiter, and says what the helper was; `None` when
    /// `pid` is no helper.
    pub fn reaped(&mut self, pid: u32, status: ExitStatus) -> Option<String> {
        let (what, waiter) = self.0.remove(&pid)?;
        let _ = waiter.send(status); // the waiter may have given up; nothing to do
        Some(what)
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.0.contains_key(&pid)
    }
}

/// Waits for helper `pid` to end, at most `timeout`; then kills its process group and still
/// waits, so that it is reaped. Ok when it exited with status 0; otherwise the text says how it
/// ended.
pub async fn wait_helper(
    pid: u32,
    mut exit: oneshot::Receiver<ExitStatus>,
    timeout: Duration,
) -> Result<(), String> {
    let status = match tokio::time::timeout(timeout, &mut exit).await {
        Ok(status) => status,
        Err(_) => {
            let _ = sys::kill_group(pid, Signal::KILL);
            let _ = exit.await;
            return Err(format!("timed out after {timeout:?}"));
        }
    };
    match status {
        Ok(ExitStatus::Code(0)) => Ok(()),
        Ok(ExitStatus::Code(code)) => Err(format!("exit status {code}")),
        Ok(status) => Err(status.to_string()),
        Err(_) => Err("lost track of it".to_string()),
    }
}

/// Runs the network check of `spec` (an `http` or `tcp` probe); `None` for a command check,
/// which the daemon starts as a helper child instead.
pub async fn network_probe(spec: &ProgramSpec) -> Option<Result<String, String>> {
    let check = spec.healthcheck.as_ref()?;
    match &check.probe {
        Probe::Cmd(_) => None,
        Probe::Http(http) => Some(probe::http(http, check.timeout).await),
        Probe::Tcp(address) => Some(probe::tcp(address, check.timeout).await),
    }
}
