//! Which state changes are worth a message: pure, from what the supervisor's records say.
//!
//! The runtime sees every `Action::StateChanged`; right after it, the process's record holds
//! the exit that caused it (`last_exit`) and its crash-loop row (`restarts_in_row`). The rules:
//!
//! - an exit that took effect (the process is now EXITED, or BACKOFF after a failed start)
//!   whose cause is `crashed`, `hung` or `unhealthy` is that event;
//! - a process that became FATAL is `fatal` (its failed starts, or `restart_limit`);
//! - a process that became EXITED with its row of automatic restarts after short runs at
//!   exactly [`RESTART_STORM`] is a `restart_storm`: once per row, since a row only grows
//!   until the process stays up for `backoff`'s `max`, which starts a new one.

use taskmaster_config::{AlertEvent, RESTART_STORM};
use taskmaster_core::{ExitCause, LastExit, State};

/// What the record says right after a state change.
pub struct Facts<'a> {
    pub last_exit: Option<&'a LastExit>,
    pub restarts_in_row: u32,
}

/// The events a change from `from` to `to` is, in the order they are sent.
pub fn decide(from: State, to: State, facts: &Facts) -> Vec<AlertEvent> {
    let mut events = Vec::new();
    let exit_took_effect = matches!(to, State::Exited | State::Backoff)
        && matches!(from, State::Starting | State::Running | State::Stopping);
    if exit_took_effect {
        match facts.last_exit.map(|exit| &exit.cause) {
            Some(ExitCause::Crashed) => events.push(AlertEvent::Crashed),
            Some(ExitCause::Hung(_)) => events.push(AlertEvent::Hung),
            Some(ExitCause::Unhealthy(_)) => events.push(AlertEvent::Unhealthy),
            _ => {}
        }
    }
    if to == State::Exited && facts.restarts_in_row == RESTART_STORM {
        events.push(AlertEvent::RestartStorm);
    }
    if to == State::Fatal && from != State::Fatal {
        events.push(AlertEvent::Fatal);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskmaster_core::{ExitStatus, Signal};

    fn exit(cause: ExitCause) -> LastExit {
        LastExit {
            status: Some(ExitStatus::Signal {
                signal: Signal::SEGV,
                core_dumped: false,
            }),
            cause,
            expected: false,
        }
    }

    fn decided(from: State, to: State, cause: Option<ExitCause>, row: u32) -> Vec<AlertEvent> {
        let last_exit = cause.map(exit);
        decide(
            from,
            to,
            &Facts {
                last_exit: last_exit.as_ref(),
                restarts_in_row: row,
            },
        )
    }

    #[test]
    fn a_crash_is_crashed_whether_it_was_running_or_starting() {
        let crash = Some(ExitCause::Crashed);
        assert_eq!(
            decided(State::Running, State::Exited, crash.clone(), 1),
            [AlertEvent::Crashed]
        );
        assert_eq!(
            decided(State::Starting, State::Backoff, crash.clone(), 0),
            [AlertEvent::Crashed]
        );
        // The record still says "crashed" when a later start moves it on: not again.
        assert_eq!(decided(State::Exited, State::Starting, crash, 1), []);
    }

    #[test]
    fn hung_and_unhealthy_come_with_the_exit_their_stop_caused() {
        let hung = Some(ExitCause::Hung("no heartbeat for 1.0s".into()));
        assert_eq!(
            decided(State::Running, State::Stopping, hung.clone(), 0),
            []
        );
        assert_eq!(
            decided(State::Stopping, State::Exited, hung, 0),
            [AlertEvent::Hung]
        );
        let sick = Some(ExitCause::Unhealthy("HTTP 503".into()));
        assert_eq!(
            decided(State::Stopping, State::Exited, sick, 0),
            [AlertEvent::Unhealthy]
        );
    }

    #[test]
    fn plain_exits_and_stops_are_no_events() {
        assert_eq!(
            decided(State::Running, State::Exited, Some(ExitCause::Exited), 1),
            []
        );
        assert_eq!(
            decided(State::Stopping, State::Stopped, Some(ExitCause::Stopped), 0),
            []
        );
        assert_eq!(
            decided(State::Running, State::Exited, Some(ExitCause::Killed), 2),
            []
        );
    }

    #[test]
    fn fatal_and_the_storm_once_per_row() {
        assert_eq!(
            decided(
                State::Backoff,
                State::Fatal,
                Some(ExitCause::SpawnFailed("x".into())),
                0
            ),
            [AlertEvent::Fatal]
        );
        let exited = Some(ExitCause::Exited);
        assert_eq!(
            decided(State::Running, State::Exited, exited.clone(), RESTART_STORM),
            [AlertEvent::RestartStorm]
        );
        assert_eq!(
            decided(State::Running, State::Exited, exited, RESTART_STORM + 1),
            []
        );
        assert_eq!(
            decided(
                State::Running,
                State::Exited,
                Some(ExitCause::Crashed),
                RESTART_STORM
            ),
            [AlertEvent::Crashed, AlertEvent::RestartStorm]
        );
    }
}
