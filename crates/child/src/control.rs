//! The control API from inside a supervised program: the requests `taskmaster ctl` sends, with
//! answers a program can use. taskmaster tells its children where its control socket is in
//! `TASKMASTER_SOCKET`.
//!
//! This is a thin layer over the API's own blocking client ([`taskmaster_api::Client`]): it
//! picks the socket, and turns each core `Reply` into a plain result, with an error when a
//! request did not do everything it was asked.

use std::fmt::Write as _;
use std::path::Path;

use taskmaster_api::client::Events as ClientEvents;
use taskmaster_api::{Client, ClientError};
use taskmaster_core::{Failure, Outcome, ProcessInfo, ReloadPlan, Reply, Request};

pub use taskmaster_api::client::Event;

/// The variable that names taskmaster's control socket.
pub const TASKMASTER_SOCKET: &str = "TASKMASTER_SOCKET";

/// Why a request to taskmaster did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "{TASKMASTER_SOCKET} is not set: this program was not started by taskmaster (or by one \
         that does not tell its children where its control socket is)"
    )]
    NotSupervised,
    /// taskmaster could not be reached, refused the request, or answered something unreadable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Some processes did not reach their goal. Every outcome is here, the successful ones
    /// too; the message names the failures.
    #[error("{}", failures(.0))]
    Failed(Vec<Outcome>),
    /// The configuration file has errors (reread); one message per error.
    #[error("the configuration has errors; nothing was changed:\n{}", .0.join("\n"))]
    Rejected(Vec<String>),
    #[error("taskmaster gave an answer that does not fit the request: {0}")]
    Unexpected(String),
}

/// The failed outcomes, one `name: ERROR (why)` per line.
fn failures(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    for outcome in outcomes.iter().filter(|o| o.result.is_err()) {
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = write!(text, "{outcome}");
        if let Err(Failure::SpawnError(why)) = &outcome.result {
            let _ = write!(text, ": {why}");
        }
    }
    text
}

/// A connection point to the taskmaster that supervises this program. Each request opens a
/// connection of its own, so a `Control` can be kept for the life of the program.
pub struct Control {
    client: Client,
}

impl Control {
    /// The taskmaster whose socket `TASKMASTER_SOCKET` names; see [`Control::connect`].
    pub fn from_env() -> Result<Control, ControlError> {
        match std::env::var_os(TASKMASTER_SOCKET) {
            Some(socket) if !socket.is_empty() => Control::connect(socket),
            _ => Err(ControlError::NotSupervised),
        }
    }

    /// The taskmaster listening on `socket`. It is asked for its pid once, so that a wrong
    /// socket is an error here rather than at the first real request.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Control, ControlError> {
        let client = Client::new(socket.as_ref())?;
        match client.call(Request::Pid(Vec::new()))? {
            Reply::DaemonPid(_) => Ok(Control { client }),
            other => Err(unexpected(other)),
        }
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        self.client.socket()
    }

    /// The API's client, for requests this type does not offer (`signal`, `reload`, ...).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every process.
    pub fn status(&self) -> Result<Vec<ProcessInfo>, ControlError> {
        self.status_of(Vec::<String>::new())
    }

    /// The processes `names` name (`web`, `workers:*`, `workers:workers_00`); an error when a
    /// name matches nothing.
    pub fn status_of(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<ProcessInfo>, ControlError> {
        match self.client.call(Request::Status(owned(names)))? {
            Reply::Status { errors, .. } if !errors.is_empty() => Err(ControlError::Failed(errors)),
            Reply::Status { processes, .. } => Ok(processes),
            other => Err(unexpected(other)),
        }
    }

    /// Starts what `names` name, and answers once each process is RUNNING or has failed to
    /// start: the outcomes, or [`ControlError::Failed`] when any failed.
    pub fn start(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<Outcome>, ControlError> {
        self.outcomes(Request::Start(owned(names)))
    }

    /// Stops what `names` name, and answers once each process has stopped. A process that was
    /// not running is a failure (`not running`).
    pub fn stop(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<Outcome>, ControlError> {
        self.outcomes(Request::Stop(owned(names)))
    }

    /// Stops, then starts, what `names` name.
    pub fn restart(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<Outcome>, ControlError> {
        self.outcomes(Request::Restart(owned(names)))
    }

    /// Re-reads the configuration file and says what a reload would change, changing
    /// nothing; the file read is kept for [`Control::add`].
    pub fn reread(&self) -> Result<ReloadPlan, ControlError> {
        match self.client.call(Request::Reread)? {
            Reply::Compared(plan) => Ok(plan),
            Reply::ReloadRejected(errors) => Err(ControlError::Rejected(errors)),
            other => Err(unexpected(other)),
        }
    }

    /// Adds programs from the file the last [`Control::reread`] read (supervisord's `add`),
    /// and starts those with `autostart`.
    pub fn add(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<Outcome>, ControlError> {
        self.outcomes(Request::AddGroup(owned(names)))
    }

    /// Removes programs whose processes have all stopped (supervisord's `remove`).
    pub fn remove(
        &self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Vec<Outcome>, ControlError> {
        self.outcomes(Request::RemoveGroup(owned(names)))
    }

    /// Every state change and event-log line that happens after this returns, as they happen.
    /// The stream has a connection of its own: read it on another thread while this `Control`
    /// sends requests.
    pub fn events(&self) -> Result<Events, ControlError> {
        Ok(Events {
            stream: self.client.events()?,
        })
    }

    fn outcomes(&self, request: Request) -> Result<Vec<Outcome>, ControlError> {
        match self.client.call(request)? {
            Reply::Outcomes(outcomes) if outcomes.iter().any(|o| o.result.is_err()) => {
                Err(ControlError::Failed(outcomes))
            }
            Reply::Outcomes(outcomes) => Ok(outcomes),
            other => Err(unexpected(other)),
        }
    }
}

/// taskmaster's events as they come: a blocking iterator that ends when taskmaster exits.
pub struct Events {
    stream: ClientEvents,
}

impl Iterator for Events {
    type Item = Result<Event, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.stream
            .next()
            .map(|event| event.map_err(ControlError::from))
    }
}

fn owned(names: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    names.into_iter().map(Into::into).collect()
}

fn unexpected(reply: Reply) -> ControlError {
    ControlError::Unexpected(format!("{reply:?}"))
}
