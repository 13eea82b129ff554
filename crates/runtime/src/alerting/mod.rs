//! Alerts that reach people (`alerting:`): webhooks, mail and syslog.
//!
//! The loop decides what is worth a message (`events.rs`, from each `StateChanged` and the
//! process's record, and the output matches of `alerts:`) and pushes it into a channel; that
//! is all it does. A dispatcher task owns the rest: the batching window (`batch.rs`), the
//! message (`message.rs`: a versioned JSON body, a mail, syslog lines; the stderr tail read
//! on the blocking pool), and one delivery task per destination and message (`deliver.rs`:
//! bounded attempts with exponential backoff). Each delivery's result comes back to the loop
//! as a [`TaskEvent::AlertDelivered`]: an event-log line, and `Event::AlertDelivered` for the
//! supervisor's counters. A reload's new `alerting:` applies at once; what waits in a batch
//! goes with the new settings.

mod batch;
mod deliver;
mod events;
mod message;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use taskmaster_config::{AlertEvent, AlertingSpec, LogLevel};
use taskmaster_core::{Event, Notice, State, Ticket};
use tokio::sync::mpsc;

use crate::daemon::Daemon;
use crate::tasks::TaskEvent;
use batch::Batch;
use deliver::Destination;
use message::{Message, Occurrence};

/// The loop's side: the settings in force, and the way to the dispatcher.
#[derive(Default)]
pub(crate) struct Alerting {
    spec: Option<Box<AlertingSpec>>,
    commands: Option<mpsc::UnboundedSender<Command>>,
}

/// The stderr file to read an event's tail from, and its length when the event happened.
type StderrAt = Option<(PathBuf, u64)>;

/// An event waiting for its message.
type Waiting = (Box<Occurrence>, StderrAt);

/// What the loop tells the dispatcher.
enum Command {
    /// An event, with the stderr file to read its tail from.
    Event(Box<Occurrence>, StderrAt),
    /// New settings (a reload); `None`: alerting is gone.
    Configure(Option<Arc<Settings>>),
    /// `alerts test`: a test message to every destination now, past the batch.
    Test(Option<Ticket>),
}

/// What the dispatcher needs of `alerting:`.
struct Settings {
    batch: Duration,
    destinations: Vec<Destination>,
    host: String,
}

impl Settings {
    fn of(spec: &AlertingSpec, syslog_socket: &std::path::Path) -> Settings {
        let ca_file = &spec.ca_file;
        let mut destinations: Vec<Destination> = spec
            .webhooks
            .iter()
            .map(|webhook| Destination::Webhook {
                webhook: webhook.clone(),
                ca_file: ca_file.clone(),
            })
            .collect();
        destinations.extend(spec.email.iter().map(|route| Destination::Email {
            route: route.clone(),
            ca_file: ca_file.clone(),
        }));
        if spec.syslog {
            destinations.push(Destination::Syslog(syslog_socket.to_path_buf()));
        }
        Settings {
            batch: spec.batch,
            destinations,
            host: host_name(),
        }
    }
}

/// This machine's name, as `uname -n` says it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Daemon {
    /// Follows the configuration's `alerting:`: at start, and after every turn (a reload may
    /// have changed it). The dispatcher starts with the first settings.
    pub(crate) fn configure_alerting(&mut self) {
        let config = self.supervisor.config();
        let wanted = &config.daemon.alerting;
        if *wanted == self.alerting.spec {
            return;
        }
        let settings = wanted
            .as_deref()
            .map(|spec| Arc::new(Settings::of(spec, &config.syslog_socket)));
        self.alerting.spec = wanted.clone();
        match (&self.alerting.commands, settings) {
            (Some(commands), settings) => {
                let _ = commands.send(Command::Configure(settings));
            }
            (None, Some(settings)) => {
                let (commands, received) = mpsc::unbounded_channel();
                tokio::spawn(dispatch(received, self.task_events.clone(), settings));
                self.alerting.commands = Some(commands);
            }
            (None, None) => {}
        }
    }

    /// A process changed state: the events it is worth, to the dispatcher.
    pub(crate) fn alert_state_change(&mut self, process: &str, from: State, to: State) {
        let Some(spec) = &self.alerting.spec else {
            return;
        };
        let Some(p) = self.supervisor.process(process) else {
            return;
        };
        let facts = events::Facts {
            last_exit: p.last_exit.as_ref(),
            restarts_in_row: p.restarts_in_row(),
        };
        let decided = events::decide(from, to, &facts);
        for event in decided.into_iter().filter(|event| spec.sends(*event)) {
            let exit = p.last_exit.as_ref();
            let message = match event {
                AlertEvent::Fatal => match (&p.gave_up, exit) {
                    (Some(why), _) => format!("FATAL: {why}"),
                    (None, Some(exit)) => format!("FATAL: gave up starting it; last: {exit}"),
                    (None, None) => "FATAL: gave up starting it".to_string(),
                },
                AlertEvent::RestartStorm => format!(
                    "restarted {} times in a row, each time soon after its start{}",
                    p.restarts_in_row(),
                    exit.map(|exit| format!("; last exit: {exit}"))
                        .unwrap_or_default()
                ),
                _ => exit.map_or_else(|| event.name().to_string(), ToString::to_string),
            };
            let stderr = p.spec.stderr.as_ref().map(|path| {
                let length = std::fs::metadata(path).map_or(0, |m| m.len());
                (path.clone(), length)
            });
            let occurrence = Occurrence {
                event,
                program: p.program().to_string(),
                process: p.name.clone(),
                pid: p.last_pid,
                cause: exit.map(|exit| exit.cause.name().to_string()),
                exit: exit.map(ToString::to_string),
                message,
                stderr_tail: Vec::new(),
                at: SystemTime::now(),
                level: None,
            };
            self.alert_send(Command::Event(Box::new(occurrence), stderr));
        }
    }

    /// An output line matched one of `program`'s `alerts`.
    pub(crate) fn alert_output(&mut self, matched: &crate::alerts::Matched) {
        if !self
            .alerting
            .spec
            .as_ref()
            .is_some_and(|spec| spec.sends(AlertEvent::Alert))
        {
            return;
        }
        let occurrence = Occurrence {
            event: AlertEvent::Alert,
            program: matched.program.clone(),
            process: matched.program.clone(),
            pid: None,
            cause: None,
            exit: None,
            message: format!(
                "alert ({}) on {}: {}",
                matched.level.name(),
                matched.stream.name(),
                matched.line
            ),
            stderr_tail: Vec::new(),
            at: SystemTime::now(),
            level: Some(matched.level),
        };
        self.alert_send(Command::Event(Box::new(occurrence), None));
    }

    /// `alerts test`: answered with [`Event::AlertsTested`] once every destination answered.
    pub(crate) fn test_alerts(&mut self, ticket: Option<Ticket>) -> Option<Event> {
        match &self.alerting.commands {
            Some(commands) if self.alerting.spec.is_some() => {
                let _ = commands.send(Command::Test(ticket));
                None
            }
            _ => Some(Event::AlertsTested {
                ticket,
                results: Vec::new(),
            }),
        }
    }

    fn alert_send(&self, command: Command) {
        if let Some(commands) = &self.alerting.commands {
            let _ = commands.send(command);
        }
    }

    /// A delivery is done: said in the event log, counted by the supervisor.
    pub(crate) fn alert_delivered(
        &mut self,
        destination: String,
        result: Result<String, String>,
        attempts: u32,
        events: usize,
    ) {
        let ok = result.is_ok();
        match result {
            Ok(answer) => self.log.write_at(
                LogLevel::Info,
                &Notice {
                    process: None,
                    message: format!("alert ({events} event(s)) sent to {destination}: {answer}"),
                },
            ),
            Err(why) => self.log.warn(format!(
                "alert ({events} event(s)) to {destination} failed after {attempts} attempt(s): {why}"
            )),
        }
        self.dispatch(Event::AlertDelivered { destination, ok });
    }
}

/// The dispatcher: batches events, and starts a delivery per destination for each message.
async fn dispatch(
    mut commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedSender<TaskEvent>,
    settings: Arc<Settings>,
) {
    let mut settings = Some(settings);
    let mut batch: Batch<Waiting> = Batch::default();
    loop {
        let window = settings.as_ref().map_or(Duration::ZERO, |s| s.batch);
        let due = batch.due(window).map(tokio::time::Instant::from_std);
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Event(occurrence, stderr)) => {
                    batch.push((occurrence, stderr), Instant::now());
                }
                Some(Command::Configure(new)) => settings = new,
                Some(Command::Test(ticket)) => {
                    if let Some(settings) = &settings {
                        tokio::spawn(test(Arc::clone(settings), ticket, reports.clone()));
                    }
                }
            },
            () = sleep_until(due) => {}
        }
        let window = settings.as_ref().map_or(Duration::ZERO, |s| s.batch);
        if batch.is_due(window, Instant::now()) {
            let events = batch.take();
            if let Some(settings) = &settings {
                tokio::spawn(send(Arc::clone(settings), events, reports.clone()));
            }
        }
    }
}

/// One message of `events` to every destination, each delivery on a task of its own.
async fn send(
    settings: Arc<Settings>,
    events: Vec<Waiting>,
    reports: mpsc::UnboundedSender<TaskEvent>,
) {
    let mut occurrences = Vec::with_capacity(events.len());
    for (occurrence, stderr) in events {
        let mut occurrence = *occurrence;
        if let Some((path, length)) = stderr {
            let tail = tokio::task::spawn_blocking(move || deliver::stderr_tail(&path, length));
            occurrence.stderr_tail = tail.await.unwrap_or_default();
        }
        occurrences.push(occurrence);
    }
    let count = occurrences.len();
    let message = Arc::new(Message::new(&settings.host, occurrences));
    for destination in settings.destinations.clone() {
        let message = Arc::clone(&message);
        let reports = reports.clone();
        let host = settings.host.clone();
        tokio::spawn(async move {
            let (result, attempts) =
                deliver::with_retries(&destination, &message, &host, deliver::POLICY).await;
            let _ = reports.send(TaskEvent::AlertDelivered {
                destination: destination.name(),
                result,
                attempts,
                events: count,
            });
        });
    }
}

/// `alerts test`: one attempt per destination, at once; every answer in one reply.
async fn test(
    settings: Arc<Settings>,
    ticket: Option<Ticket>,
    reports: mpsc::UnboundedSender<TaskEvent>,
) {
    let message = Message::test(&settings.host);
    let attempts = settings.destinations.iter().map(|destination| {
        let message = &message;
        let host = &settings.host;
        async move {
            let result = deliver::once(destination, message, host, deliver::POLICY.timeout)
                .await
                .map_err(|failed| failed.reason);
            (destination.name(), result)
        }
    });
    let mut results = Vec::new();
    // One after another: a handful of destinations, each bounded by its timeout.
    for attempt in attempts {
        results.push(attempt.await);
    }
    let _ = reports.send(TaskEvent::Core(Box::new(Event::AlertsTested {
        ticket,
        results,
    })));
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
