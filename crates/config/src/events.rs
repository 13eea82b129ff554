//! supervisord's event types, by the names listeners subscribe with (`events=PROCESS_STATE`):
//! the concrete ones taskmaster sends, and the abstract ones that stand for a family
//! (`PROCESS_STATE` is every `PROCESS_STATE_*`, `EVENT` is all of them).

use serde::{Deserialize, Serialize};

/// One event type, concrete or abstract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    Event,
    ProcessState,
    ProcessStateStopped,
    ProcessStateExited,
    ProcessStateStarting,
    ProcessStateStopping,
    ProcessStateBackoff,
    ProcessStateFatal,
    ProcessStateRunning,
    ProcessStateUnknown,
    ProcessCommunication,
    ProcessCommunicationStdout,
    ProcessCommunicationStderr,
    ProcessLog,
    ProcessLogStdout,
    ProcessLogStderr,
    RemoteCommunication,
    SupervisorStateChange,
    SupervisorStateChangeRunning,
    SupervisorStateChangeStopping,
    Tick,
    Tick5,
    Tick60,
    Tick3600,
    ProcessGroup,
    ProcessGroupAdded,
    ProcessGroupRemoved,
}

/// Each type's name and the abstract type it belongs to (`None` for `EVENT` itself).
const TYPES: &[(EventType, &str, Option<EventType>)] = {
    use EventType::*;
    &[
        (Event, "EVENT", None),
        (ProcessState, "PROCESS_STATE", Some(Event)),
        (
            ProcessStateStopped,
            "PROCESS_STATE_STOPPED",
            Some(ProcessState),
        ),
        (
            ProcessStateExited,
            "PROCESS_STATE_EXITED",
            Some(ProcessState),
        ),
        (
            ProcessStateStarting,
            "PROCESS_STATE_STARTING",
            Some(ProcessState),
        ),
        (
            ProcessStateStopping,
            "PROCESS_STATE_STOPPING",
            Some(ProcessState),
        ),
        (
            ProcessStateBackoff,
            "PROCESS_STATE_BACKOFF",
            Some(ProcessState),
        ),
        (ProcessStateFatal, "PROCESS_STATE_FATAL", Some(ProcessState)),
        (
            ProcessStateRunning,
            "PROCESS_STATE_RUNNING",
            Some(ProcessState),
        ),
        (
            ProcessStateUnknown,
            "PROCESS_STATE_UNKNOWN",
            Some(ProcessState),
        ),
        (ProcessCommunication, "PROCESS_COMMUNICATION", Some(Event)),
        (
            ProcessCommunicationStdout,
            "PROCESS_COMMUNICATION_STDOUT",
            Some(ProcessCommunication),
        ),
        (
            ProcessCommunicationStderr,
            "PROCESS_COMMUNICATION_STDERR",
            Some(ProcessCommunication),
        ),
        (ProcessLog, "PROCESS_LOG", Some(Event)),
        (ProcessLogStdout, "PROCESS_LOG_STDOUT", Some(ProcessLog)),
        (ProcessLogStderr, "PROCESS_LOG_STDERR", Some(ProcessLog)),
        (RemoteCommunication, "REMOTE_COMMUNICATION", Some(Event)),
        (
            SupervisorStateChange,
            "SUPERVISOR_STATE_CHANGE",
            Some(Event),
        ),
        (
            SupervisorStateChangeRunning,
            "SUPERVISOR_STATE_CHANGE_RUNNING",
            Some(SupervisorStateChange),
        ),
        (
            SupervisorStateChangeStopping,
            "SUPERVISOR_STATE_CHANGE_STOPPING",
            Some(SupervisorStateChange),
        ),
        (Tick, "TICK", Some(Event)),
        (Tick5, "TICK_5", Some(Tick)),
        (Tick60, "TICK_60", Some(Tick)),
        (Tick3600, "TICK_3600", Some(Tick)),
        (ProcessGroup, "PROCESS_GROUP", Some(Event)),
        (ProcessGroupAdded, "PROCESS_GROUP_ADDED", Some(ProcessGroup)),
        (
            ProcessGroupRemoved,
            "PROCESS_GROUP_REMOVED",
            Some(ProcessGroup),
        ),
    ]
};

impl EventType {
    /// supervisord's name: `PROCESS_STATE_EXITED`.
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(kind, ..)| *kind == self)
            .map_or("EVENT", |(_, name, _)| name)
    }

    /// The type named `name`, in any case, as supervisord reads `events=`.
    pub fn from_name(name: &str) -> Option<EventType> {
        TYPES
            .iter()
            .find(|(_, known, _)| known.eq_ignore_ascii_case(name))
            .map(|(kind, ..)| *kind)
    }

    /// Every name, for messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TYPES.iter().map(|(_, name, _)| *name)
    }

    /// Whether an event of this type is one of `subscribed`: the type itself or a family
    /// it belongs to.
    pub fn is_a(self, subscribed: EventType) -> bool {
        let mut kind = Some(self);
        while let Some(current) = kind {
            if current == subscribed {
                return true;
            }
            kind = TYPES
                .iter()
                .find(|(known, ..)| *known == current)
                .and_then(|(_, _, parent)| *parent);
        }
        false
    }
}

/// What makes a program an event listener (`[eventlistener:x]`, `eventlisteners:`): the events
/// it subscribes to, and how many wait for it at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub events: Vec<EventType>,
    /// Events kept for the pool while no listener is ready; beyond, the oldest is dropped
    /// (`buffer_size`, default 10).
    pub buffer_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_by_its_name_and_belongs_to_event() {
        for (kind, name, _) in TYPES {
            assert_eq!(EventType::from_name(name), Some(*kind));
            assert_eq!(kind.name(), *name);
            assert!(kind.is_a(EventType::Event), "{name}");
        }
        assert_eq!(
            EventType::from_name("process_state_exited"),
            Some(EventType::ProcessStateExited)
        );
        assert!(EventType::ProcessStateExited.is_a(EventType::ProcessState));
        assert!(!EventType::ProcessStateExited.is_a(EventType::Tick));
        assert!(!EventType::ProcessState.is_a(EventType::ProcessStateExited));
    }
}
