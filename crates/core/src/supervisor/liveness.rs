//! Alive is not enough: what the supervisor does with a child's own words (sd_notify), its
//! heartbeats (the watchdog), its health checks, and the `on_exit` hook after it ends.
//!
//! The watchdog and the health checks run only while a process is RUNNING: [`change_state`]
//! drops their timers whenever a process leaves RUNNING, and [`Supervisor::arm_liveness`]
//! sets them when it enters. While an outside signal pauses the process, health checks wait
//! and, unless `watchdog_paused: restart`, so does the watchdog: paused is not hung.
//!
//! [`change_state`]: super::change_state

use taskmaster_config::WatchdogPaused;

use super::{log, Supervisor};
use crate::notify::Notification;
use crate::process::{AfterStop, Deadline, ExitCause, ExitStatus, Health, LastExit, State};
use crate::time::Time;
use crate::Action;

impl Supervisor {
    /// Sets the watchdog and the first health check of a process that has just become RUNNING.
    pub(super) fn arm_liveness(&mut self, name: &str, now: Time) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        let period = p.liveness.watchdog.or(p.spec.watchdog);
        p.liveness.watchdog = period;
        p.liveness.watchdog_due = period.map(|period| now + period);
        if let Some(check) = &p.spec.healthcheck {
            p.health = Some(Health::Unknown);
            p.liveness.probe_due = Some(now + check.interval);
        }
        if p.paused.is_some() {
            self.pause_liveness(name, true, now);
        }
    }

    /// Suspends health checks (and, by default, the watchdog) while an outside signal pauses a
    /// RUNNING process, and resumes them when it continues.
    pub(super) fn pause_liveness(&mut self, name: &str, paused: bool, now: Time) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        if p.state != State::Running {
            return;
        }
        let live = &mut p.liveness;
        if paused {
            if p.spec.watchdog_paused == WatchdogPaused::Ignore {
                if let Some(due) = live.watchdog_due.take() {
                    live.watchdog_left = Some(due.since(now));
                }
            }
            live.probe_due = None;
        } else {
            if let Some(left) = live.watchdog_left.take() {
                live.watchdog_due = Some(now + left);
            }
            if let (Some(check), false) = (&p.spec.healthcheck, live.probing) {
                live.probe_due = Some(now + check.interval);
            }
        }
    }

    /// Acts on the watchdog and health-check timers that are due.
    /// `due` are the processes whose timers were due when the event came; those changed since
    /// are looked at too.
    pub(super) fn liveness_timers(&mut self, due: Vec<String>, now: Time, out: &mut Vec<Action>) {
        let mut hung = Vec::new();
        let mut names: std::collections::BTreeSet<String> = due.into_iter().collect();
        names.extend(self.processes.touched().cloned());
        for name in names {
            let Some(p) = self.processes.get_mut(&name) else {
                continue;
            };
            if p.state != State::Running {
                continue;
            }
            if p.liveness.watchdog_due.is_some_and(|due| due <= now) {
                p.liveness.watchdog_due = None;
                let period = p.liveness.watchdog.unwrap_or_default();
                hung.push((
                    p.name.clone(),
                    format!("no heartbeat for {:.1}s", period.as_secs_f64()),
                ));
            }
            if let (Some(due), Some(pid)) = (p.liveness.probe_due, p.pid) {
                if due <= now {
                    p.liveness.probe_due = None;
                    p.liveness.probing = true;
                    out.push(Action::Probe {
                        process: p.name.clone(),
                        pid,
                        spec: p.spec.clone(),
                    });
                }
            }
        }
        for (name, how) in hung {
            self.declare_hung(&name, how, now, out);
        }
    }

    /// Stops a hung process; its exit is then handled as `autorestart` says.
    fn declare_hung(&mut self, name: &str, how: String, now: Time, out: &mut Vec<Action>) {
        log(out, name, format!("hung: {how}"));
        self.stop_for(name, ExitCause::Hung(how), AfterStop::Policy, now, out);
    }

    /// What a child said on the notify socket.
    pub(super) fn notified(
        &mut self,
        pid: u32,
        notifications: Vec<Notification>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(name) = self
            .processes
            .values()
            .find(|p| p.pid == Some(pid))
            .map(|p| p.name.clone())
        else {
            return; // it exited since it spoke
        };
        for notification in notifications {
            self.notification(&name, notification, now, out);
        }
    }

    fn notification(
        &mut self,
        name: &str,
        notification: Notification,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        let alive = matches!(p.state, State::Starting | State::Running);
        match notification {
            Notification::Ready => {
                let waiting = p
                    .deadline
                    .is_some_and(|(_, kind)| kind == Deadline::ReadyTime);
                if p.state == State::Starting && waiting {
                    self.enter_running(name, now, out);
                }
            }
            Notification::Heartbeat => {
                let live = &mut p.liveness;
                if let (State::Running, Some(period)) = (p.state, live.watchdog) {
                    if live.watchdog_left.is_some() {
                        live.watchdog_left = Some(period);
                    } else {
                        live.watchdog_due = Some(now + period);
                    }
                }
            }
            Notification::WatchdogTrigger if alive => {
                let how = "the program triggered its watchdog (WATCHDOG=trigger)".to_string();
                self.declare_hung(name, how, now, out);
            }
            Notification::WatchdogTrigger => {}
            Notification::WatchdogPeriod(period) => {
                p.liveness.watchdog = Some(period);
                if p.state == State::Running && p.liveness.watchdog_left.is_none() {
                    p.liveness.watchdog_due = Some(now + period);
                }
                log(
                    out,
                    name,
                    format!("watchdog period is now {period:?} (WATCHDOG_USEC)"),
                );
            }
            Notification::Status(text) => {
                p.status_text = (!text.is_empty()).then_some(text);
            }
            Notification::ExtendTimeout(extra) => {
                if let Some((at, kind)) = p.deadline {
                    if matches!(
                        kind,
                        Deadline::StartTime | Deadline::ReadyTime | Deadline::Kill
                    ) {
                        p.deadline = Some((at.max(now + extra), kind));
                        log(
                            out,
                            name,
                            format!("asks for {extra:?} more (EXTEND_TIMEOUT_USEC)"),
                        );
                    }
                }
            }
            Notification::Reloading => log(out, name, "reloading (RELOADING=1)".to_string()),
            Notification::Stopping => log(out, name, "stopping (STOPPING=1)".to_string()),
            Notification::MainPid(main) => {
                log(out, name, format!("says its main pid is {main} (MAINPID)"))
            }
            Notification::Errno(errno) => {
                log(out, name, format!("reports error number {errno} (ERRNO)"))
            }
            Notification::Barrier => {}
        }
    }

    /// The result of a health check of `pid`.
    pub(super) fn probe_done(
        &mut self,
        name: &str,
        pid: u32,
        result: Result<String, String>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        let Some(check) = p.spec.healthcheck.clone() else {
            return;
        };
        // A check of an earlier child, or of one that is stopping, says nothing of this one.
        if p.pid != Some(pid) || p.state != State::Running {
            return;
        }
        p.liveness.probing = false;
        let in_start_period = p
            .started_at
            .is_some_and(|at| now.since(at) < check.start_period);
        match result {
            Ok(detail) => {
                if p.health != Some(Health::Healthy) {
                    let again = matches!(p.health, Some(Health::Failing { .. }));
                    let word = if again { "healthy again" } else { "healthy" };
                    log(out, name, format!("{word} ({detail})"));
                }
                p.health = Some(Health::Healthy);
            }
            // Paused is not dead: a check of a paused process cannot succeed and says nothing.
            Err(_) if p.paused.is_some() => {}
            Err(detail) if in_start_period && p.health == Some(Health::Unknown) => {
                log(
                    out,
                    name,
                    format!("health check failed within its start_period, not counted: {detail}"),
                );
            }
            Err(detail) => {
                let failures = match &p.health {
                    Some(Health::Failing { failures, .. }) => failures + 1,
                    _ => 1,
                };
                log(
                    out,
                    name,
                    format!(
                        "health check failed ({failures} of {} in a row): {detail}",
                        check.retries
                    ),
                );
                p.health = Some(Health::Failing {
                    failures,
                    detail: detail.clone(),
                });
                if failures >= check.retries {
                    log(out, name, format!("unhealthy: {detail}"));
                    self.stop_for(
                        name,
                        ExitCause::Unhealthy(detail),
                        AfterStop::Policy,
                        now,
                        out,
                    );
                    return;
                }
            }
        }
        if p.paused.is_none() {
            p.liveness.probe_due = Some(now + check.interval);
        }
    }

    /// Runs the program's `on_exit` hook, if it has one, for the exit just recorded. Until it
    /// is done no new child starts.
    pub(super) fn run_exit_hook(&mut self, name: &str, exit: &LastExit, out: &mut Vec<Action>) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        if p.spec.on_exit.is_none() {
            return;
        }
        p.hook_running = true;
        let mut env = vec![(
            "TASKMASTER_EXIT_CAUSE".to_string(),
            exit.cause.name().into(),
        )];
        match exit.status {
            Some(ExitStatus::Code(code)) => {
                env.push(("TASKMASTER_EXIT_CODE".to_string(), code.to_string()));
            }
            Some(ExitStatus::Signal { signal, .. }) => {
                env.push(("TASKMASTER_EXIT_SIGNAL".to_string(), signal.to_string()));
            }
            None => {}
        }
        out.push(Action::RunHook {
            process: name.to_string(),
            spec: p.spec.clone(),
            env,
        });
    }

    /// The `on_exit` hook is done: a start that waited for it goes ahead.
    pub(super) fn hook_done(
        &mut self,
        name: &str,
        result: Result<(), String>,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        p.hook_running = false;
        match result {
            Ok(()) => log(out, name, "on_exit hook done".to_string()),
            Err(why) => log(out, name, format!("on_exit hook failed: {why}")),
        }
        if std::mem::take(&mut p.start_after_hook) && !self.shutting_down && !p.is_retiring() {
            self.spawn(name, now, out);
        }
    }
}
