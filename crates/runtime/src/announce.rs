//! What happens, told to the event listeners ([`crate::listeners`]): the supervisor's state
//! changes and announcements become supervisord's events with supervisord's payloads, the
//! clock's ticks too, and at the end of every turn each pool's events go to its ready
//! listeners, through their stdin pipes.

use std::time::SystemTime;

use taskmaster_config::{EventType, Stream};
use taskmaster_core::{Announcement, Notice, State};

use crate::capture::Heard;
use crate::daemon::Daemon;
use crate::listeners::Said;

/// What a process's state change says of it, as supervisord's event.
pub(crate) struct StateChange<'a> {
    pub process: &'a str,
    pub from: State,
    pub to: State,
    pub pid: Option<u32>,
    pub tries: u32,
    pub expected: bool,
}

impl Daemon {
    /// A process changed state: `PROCESS_STATE_<TO>`, its payload as supervisord's
    /// (`processname:web_00 groupname:web from_state:STARTING pid:4242`).
    pub(crate) fn publish_state_change(&mut self, change: &StateChange) {
        let (group, name) = change
            .process
            .split_once(':')
            .unwrap_or((change.process, change.process));
        let mut payload = format!(
            "processname:{name} groupname:{group} from_state:{}",
            change.from.name()
        );
        let pid = change.pid.unwrap_or(0);
        let kind = match change.to {
            State::Stopped => EventType::ProcessStateStopped,
            State::Starting => EventType::ProcessStateStarting,
            State::Running => EventType::ProcessStateRunning,
            State::Backoff => EventType::ProcessStateBackoff,
            State::Stopping => EventType::ProcessStateStopping,
            State::Exited => EventType::ProcessStateExited,
            State::Fatal => EventType::ProcessStateFatal,
            State::Unknown => EventType::ProcessStateUnknown,
        };
        match change.to {
            State::Starting | State::Backoff => payload += &format!(" tries:{}", change.tries),
            State::Exited => {
                payload += &format!(" expected:{} pid:{pid}", u8::from(change.expected));
            }
            State::Running | State::Stopping | State::Stopped => {
                payload += &format!(" pid:{pid}");
            }
            State::Fatal | State::Unknown => {}
        }
        self.publish(kind, payload);
    }

    /// Something happened to the supervisor as a whole.
    pub(crate) fn publish_announcement(&mut self, announcement: Announcement) {
        let (kind, payload) = match announcement {
            Announcement::GroupAdded(group) => {
                (EventType::ProcessGroupAdded, format!("groupname:{group}\n"))
            }
            Announcement::GroupRemoved(group) => (
                EventType::ProcessGroupRemoved,
                format!("groupname:{group}\n"),
            ),
            Announcement::Running => (EventType::SupervisorStateChangeRunning, String::new()),
            Announcement::Stopping => (EventType::SupervisorStateChangeStopping, String::new()),
            Announcement::RemoteCommunication { kind, data } => (
                EventType::RemoteCommunication,
                format!("type:{kind}\n{data}"),
            ),
        };
        self.publish(kind, payload);
    }

    /// Every pool listening to `kind` keeps the event (the pools are those of the
    /// configuration in force: a listener added by this very reload hears of its group).
    fn publish(&mut self, kind: EventType, payload: String) {
        // Once per configuration, not once per event: it looks at every program.
        let generation = self.supervisor.config_generation();
        if self.listeners_configured != Some(generation) {
            self.listeners.configure(self.supervisor.config());
            self.listeners_configured = Some(generation);
        }
        let mut said = Vec::new();
        self.listeners.publish(kind, payload, &mut said);
        self.say(said);
    }

    /// What child `pid`'s observed streams said since the last time: `PROCESS_LOG_*` and
    /// `PROCESS_COMMUNICATION_*` events, with supervisord's payloads.
    pub(crate) fn publish_output(&mut self, pid: u32) {
        let heard = self.children.take_heard(pid);
        if heard.is_empty() {
            return;
        }
        let Some(process) = self
            .supervisor
            .processes()
            .find(|p| p.pid == Some(pid))
            .map(|p| p.name.clone())
        else {
            return;
        };
        let (group, name) = process.split_once(':').unwrap_or((&process, &process));
        for (stream, heard) in heard {
            let (kind, payload) = match (heard, stream) {
                (Heard::Log(bytes), stream) => (
                    match stream {
                        Stream::Stdout => EventType::ProcessLogStdout,
                        Stream::Stderr => EventType::ProcessLogStderr,
                    },
                    format!(
                        "processname:{name} groupname:{group} pid:{pid} channel:{}\n{}",
                        stream.name(),
                        text(&bytes)
                    ),
                ),
                (Heard::Communication(bytes), stream) => (
                    match stream {
                        Stream::Stdout => EventType::ProcessCommunicationStdout,
                        Stream::Stderr => EventType::ProcessCommunicationStderr,
                    },
                    format!(
                        "processname:{name} groupname:{group} pid:{pid}\n{}",
                        text(&bytes)
                    ),
                ),
            };
            self.publish(kind, payload);
        }
    }

    /// Listener `pid` wrote `bytes` on its stdout.
    pub(crate) fn listener_output(&mut self, pid: u32, bytes: &[u8]) {
        let mut said = Vec::new();
        self.listeners.output(pid, bytes, &mut said);
        self.say(said);
    }

    /// Listener `pid` exited: the event it had not answered goes back to its pool once its
    /// stdout has ended too.
    pub(crate) fn listener_exited(&mut self, pid: u32) {
        let mut said = Vec::new();
        self.listeners.exited(pid, &mut said);
        self.say(said);
    }

    /// Listener `pid`'s stdout ended: all it wrote has been read.
    pub(crate) fn listener_closed(&mut self, pid: u32) {
        let mut said = Vec::new();
        self.listeners.closed(pid, &mut said);
        self.say(said);
    }

    /// The end of a turn: the ticks due, then each pool's events to its ready listeners.
    pub(crate) fn deliver_events(&mut self) {
        let mut said = Vec::new();
        self.listeners.tick(SystemTime::now(), &mut said);
        let supervisor = &self.supervisor;
        let running = |name: &str| {
            supervisor
                .process(name)
                .is_some_and(|p| p.state == State::Running)
        };
        let identifier = supervisor.config().daemon.identifier.clone();
        let letters = self.listeners.dispatch(running, &identifier);
        for letter in letters {
            let sent = match self.children.stdin(letter.pid) {
                Some(pipe) => pipe.send(letter.bytes),
                None => Err("taskmaster holds no stdin pipe for it".to_string()),
            };
            if let Err(why) = sent {
                said.push((
                    taskmaster_config::LogLevel::Warn,
                    Some(letter.process),
                    format!("cannot send it its event: {why}"),
                ));
            }
        }
        self.say(said);
    }

    fn say(&mut self, said: Vec<Said>) {
        for (level, process, message) in said {
            self.log.write_at(level, &Notice { process, message });
        }
    }
}

/// Output as text, as supervisord shows it: UTF-8, else `Undecodable: b'...'`.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => format!("Undecodable: {:?}", String::from_utf8_lossy(bytes)),
    }
}
