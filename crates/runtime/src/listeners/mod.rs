//! Event listeners (supervisord's `[eventlistener:x]`): what happens becomes supervisord's
//! events, which wait in each subscribed pool's buffer until one of its listeners is ready,
//! and are written to that listener's stdin with supervisord's header line.
//!
//! Events come from the supervisor's actions (a process changed state, a group was added,
//! taskmaster runs or stops), from the clock (`TICK_*`) and from requests. This module holds
//! no descriptor and writes nothing: the daemon gives it what happened and what listeners
//! wrote on their stdout ([`Listeners::output`]), and writes the letters it returns
//! ([`Listeners::dispatch`]) and the lines it has to say. A slow or dead listener holds up
//! nobody: its pool's buffer keeps the newest `buffer_size` events, the oldest dropped with a
//! line in the event log, and an event sent to a listener that fails it, breaks the protocol
//! or dies before answering goes back to the head of its pool's buffer, serials unchanged.
//!
//! A listener's death is known twice: its exit (reaped by the loop) and the end of its stdout
//! (its capture thread read all of it). Its event is sent again only once both are known: a
//! listener that answers and exits at once has its answer read first, as supervisord drains a
//! dead listener's pipes before it looks at its event.

mod protocol;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use taskmaster_config::{Config, EventType, LogLevel};

use protocol::{ListenerState, Protocol, Step};

/// The event listeners' pools and processes.
#[derive(Default)]
pub(crate) struct Listeners {
    pools: BTreeMap<String, Pool>,
    /// Each live listener process, by pid.
    members: HashMap<u32, Member>,
    /// The serial of the last event, across every pool.
    serial: Option<u64>,
    /// The last tick sent of each period, by its length in seconds.
    ticks: BTreeMap<u64, u64>,
}

/// One listener program's processes share a pool and its buffer.
struct Pool {
    events: Vec<EventType>,
    buffer_size: usize,
    buffer: VecDeque<Queued>,
    /// The serial of its last event.
    serial: Option<u64>,
}

/// An event waiting in a pool, or sent to one of its listeners.
#[derive(Debug, Clone)]
struct Queued {
    kind: EventType,
    payload: String,
    serial: u64,
    pool_serial: u64,
}

struct Member {
    pool: String,
    /// Its name, as users address it (`listener` or `listeners:listener_01`).
    process: String,
    protocol: Protocol,
    /// The event it was sent and has not answered.
    event: Option<Queued>,
    /// Its process is gone (reaped).
    exited: bool,
    /// Its stdout ended: everything it wrote has been read.
    closed: bool,
}

/// Bytes to write to a listener's stdin.
pub(crate) struct Letter {
    pub pid: u32,
    pub process: String,
    pub bytes: Vec<u8>,
}

/// A line for the event log, at its level, about a process or not.
pub(crate) type Said = (LogLevel, Option<String>, String);

/// supervisord's tick periods, in seconds.
const TICKS: [(u64, EventType); 3] = [
    (5, EventType::Tick5),
    (60, EventType::Tick60),
    (3600, EventType::Tick3600),
];

impl Listeners {
    /// The pools of `config`'s listener programs, with their settings; a pool whose program
    /// is gone goes with its buffer.
    pub fn configure(&mut self, config: &Config) {
        let listeners: BTreeMap<&String, _> = config
            .programs
            .iter()
            .filter_map(|(name, spec)| Some((name, spec.listener.as_ref()?)))
            .collect();
        self.pools.retain(|name, _| listeners.contains_key(name));
        for (name, listener) in listeners {
            let pool = self.pools.entry(name.clone()).or_insert_with(|| Pool {
                events: Vec::new(),
                buffer_size: 1,
                buffer: VecDeque::new(),
                serial: None,
            });
            pool.events.clone_from(&listener.events);
            pool.buffer_size = usize::try_from(listener.buffer_size).unwrap_or(usize::MAX);
        }
    }

    /// Whether any pool listens to ticks: only then does the clock wake the loop for them.
    fn hears_ticks(&self) -> bool {
        self.pools.values().any(|pool| {
            pool.events.iter().any(|e| {
                EventType::Tick5.is_a(*e)
                    || EventType::Tick60.is_a(*e)
                    || EventType::Tick3600.is_a(*e)
            })
        })
    }

    /// An event of type `kind` happened: each pool that listens to it keeps it.
    pub fn publish(&mut self, kind: EventType, payload: String, said: &mut Vec<Said>) {
        let listening: Vec<&String> = self
            .pools
            .iter()
            .filter(|(_, pool)| pool.events.iter().any(|e| kind.is_a(*e)))
            .map(|(name, _)| name)
            .collect();
        if listening.is_empty() {
            return;
        }
        let serial = next_serial(&mut self.serial);
        for name in listening.into_iter().cloned().collect::<Vec<_>>() {
            if let Some(pool) = self.pools.get_mut(&name) {
                let queued = Queued {
                    kind,
                    payload: payload.clone(),
                    serial,
                    pool_serial: next_serial(&mut pool.serial),
                };
                pool.keep(&name, queued, false, said);
            }
        }
    }

    /// A listener process started: it begins ACKNOWLEDGED, waiting for its READY.
    pub fn started(&mut self, pid: u32, pool: &str, process: &str) {
        self.members.insert(
            pid,
            Member {
                pool: pool.to_string(),
                process: process.to_string(),
                protocol: Protocol::new(),
                event: None,
                exited: false,
                closed: false,
            },
        );
    }

    /// Listener `pid` wrote `bytes` on its stdout.
    pub fn output(&mut self, pid: u32, bytes: &[u8], said: &mut Vec<Said>) {
        let Some(member) = self.members.get_mut(&pid) else {
            return;
        };
        for step in member.protocol.feed(bytes) {
            let process = Some(member.process.clone());
            match step {
                Step::Ready => {}
                Step::Result { ok: true } => {
                    member.event = None;
                }
                Step::Result { ok: false } => {
                    said.push((LogLevel::Warn, process, "event was rejected".to_string()));
                    if let Some(event) = member.event.take() {
                        if let Some(pool) = self.pools.get_mut(&member.pool) {
                            pool.keep(&member.pool, event, true, said);
                        }
                    }
                }
                Step::Broke(why) => {
                    said.push((
                        LogLevel::Warn,
                        process,
                        format!(
                            "has entered the UNKNOWN state and will no longer receive events \
                             ({why}): it broke the event listener protocol"
                        ),
                    ));
                    if let Some(event) = member.event.take() {
                        if let Some(pool) = self.pools.get_mut(&member.pool) {
                            pool.keep(&member.pool, event, true, said);
                        }
                    }
                }
            }
        }
    }

    /// Listener `pid` exited. What it wrote last may still be on its way from its stdout:
    /// its unanswered event waits for that ([`Listeners::closed`]).
    pub fn exited(&mut self, pid: u32, said: &mut Vec<Said>) {
        let Some(member) = self.members.get_mut(&pid) else {
            return;
        };
        member.exited = true;
        if member.closed || member.event.is_none() {
            self.gone(pid, said);
        }
    }

    /// Listener `pid`'s stdout ended: all it wrote has been read.
    pub fn closed(&mut self, pid: u32, said: &mut Vec<Said>) {
        let Some(member) = self.members.get_mut(&pid) else {
            return;
        };
        member.closed = true;
        if member.exited {
            self.gone(pid, said);
        }
    }

    /// Listener `pid` is gone, and has said all it will: an event it had not answered goes
    /// back to its pool.
    fn gone(&mut self, pid: u32, said: &mut Vec<Said>) {
        let Some(member) = self.members.remove(&pid) else {
            return;
        };
        if let Some(event) = member.event {
            if let Some(pool) = self.pools.get_mut(&member.pool) {
                pool.keep(&member.pool, event, true, said);
            }
        }
    }

    /// Sends each pool's oldest events to its READY listeners that run (`running` says
    /// which, by name), one each: the letters to write, in order. `server` is taskmaster's
    /// identifier, for the header.
    pub fn dispatch(&mut self, running: impl Fn(&str) -> bool, server: &str) -> Vec<Letter> {
        let mut letters = Vec::new();
        for (name, pool) in &mut self.pools {
            let mut ready: Vec<(String, u32)> = self
                .members
                .iter()
                .filter(|(_, m)| &m.pool == name && m.protocol.state() == ListenerState::Ready)
                // A process that is gone or cannot answer gets nothing, whatever its name's
                // state (its successor may run already).
                .filter(|(_, m)| !m.exited && !m.closed)
                .filter(|(_, m)| running(&m.process))
                .map(|(pid, m)| (m.process.clone(), *pid))
                .collect();
            ready.sort();
            for (_, pid) in ready {
                let Some(event) = pool.buffer.pop_front() else {
                    break;
                };
                let Some(member) = self.members.get_mut(&pid) else {
                    continue;
                };
                letters.push(Letter {
                    pid,
                    process: member.process.clone(),
                    bytes: envelope(&event, name, server).into_bytes(),
                });
                member.protocol.sent();
                member.event = Some(event);
            }
        }
        letters
    }

    /// When the next tick is due, if any pool hears ticks.
    pub fn next_tick(&self, now: SystemTime) -> Option<SystemTime> {
        if !self.hears_ticks() {
            return None;
        }
        let seconds = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
        let next = TICKS
            .iter()
            .map(|(period, _)| seconds - seconds % period + period)
            .min()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(next))
    }

    /// The ticks due at `now`, published: a period's tick each time its boundary is
    /// crossed (not at start, as supervisord).
    pub fn tick(&mut self, now: SystemTime, said: &mut Vec<Said>) {
        if !self.hears_ticks() {
            return;
        }
        let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return;
        };
        let seconds = since_epoch.as_secs();
        for (period, kind) in TICKS {
            let this_tick = seconds - seconds % period;
            match self.ticks.insert(period, this_tick) {
                Some(last) if last != this_tick => {
                    self.publish(kind, format!("when:{this_tick}"), said);
                }
                _ => {}
            }
        }
    }
}

impl Pool {
    /// Keeps `event`, at the head when it comes back from a listener; a full buffer drops
    /// its oldest first.
    fn keep(&mut self, name: &str, event: Queued, head: bool, said: &mut Vec<Said>) {
        if self.buffer.len() >= self.buffer_size {
            if let Some(dropped) = self.buffer.pop_front() {
                said.push((
                    LogLevel::Error,
                    None,
                    format!(
                        "pool {name} event buffer overflowed, discarding event {}",
                        dropped.serial
                    ),
                ));
            }
        }
        if head {
            self.buffer.push_front(event);
        } else {
            self.buffer.push_back(event);
        }
    }
}

/// A protocol reader for the fuzz target: fed bytes, it sends an event at every READY.
pub(crate) fn fuzzing_protocol() -> impl FnMut(&[u8]) {
    let mut protocol = Protocol::new();
    move |bytes| {
        for step in protocol.feed(bytes) {
            if step == Step::Ready {
                protocol.sent();
            }
        }
    }
}

/// The next serial after `last` (the first is 0).
fn next_serial(last: &mut Option<u64>) -> u64 {
    let serial = last.map_or(0, |last| last.wrapping_add(1));
    *last = Some(serial);
    serial
}

/// supervisord's header line and the payload. `len` counts characters, as Python's `len` of
/// a string does: what `childutils.listener` reads from a text stream.
fn envelope(event: &Queued, pool: &str, server: &str) -> String {
    format!(
        "ver:3.0 server:{server} serial:{} pool:{pool} poolserial:{} eventname:{} len:{}\n{}",
        event.serial,
        event.pool_serial,
        event.kind.name(),
        event.payload.chars().count(),
        event.payload
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(events: &str, buffer_size: u32) -> Listeners {
        let text = format!(
            "eventlisteners:\n  l: {{cmd: x, events: [{events}], buffer_size: {buffer_size}}}\n"
        );
        let config = Config::parse(&text, std::path::Path::new("/t.yaml")).expect("config");
        let mut listeners = Listeners::default();
        listeners.configure(&config);
        listeners
    }

    #[test]
    fn an_event_waits_for_a_ready_listener_and_comes_with_its_header() {
        let mut l = listeners("PROCESS_STATE", 10);
        let mut said = Vec::new();
        l.publish(EventType::Tick5, "when:5".into(), &mut said);
        l.publish(
            EventType::ProcessStateRunning,
            "processname:é groupname:é from_state:STARTING pid:7".into(),
            &mut said,
        );
        l.started(42, "l", "l");
        assert!(l.dispatch(|_| true, "supervisor").is_empty());
        l.output(42, b"READY\n", &mut said);
        assert!(l.dispatch(|_| false, "supervisor").is_empty());
        let letters = l.dispatch(|_| true, "supervisor");
        let text = String::from_utf8(letters[0].bytes.clone()).expect("text");
        // 51 characters (53 bytes): Python reads 51 from a text stream.
        assert_eq!(
            text,
            "ver:3.0 server:supervisor serial:0 pool:l poolserial:0 eventname:PROCESS_STATE_RUNNING len:51\nprocessname:é groupname:é from_state:STARTING pid:7"
        );
        assert!(said.is_empty());
    }

    #[test]
    fn a_failed_or_orphaned_event_comes_back_first_with_its_serials() {
        let mut l = listeners("TICK", 10);
        let mut said = Vec::new();
        for n in 0..3 {
            l.publish(EventType::Tick5, format!("when:{n}"), &mut said);
        }
        l.started(1, "l", "l");
        l.output(1, b"READY\n", &mut said);
        let first = l.dispatch(|_| true, "s");
        assert!(String::from_utf8_lossy(&first[0].bytes).contains("serial:0 "));
        l.output(1, b"RESULT 4\nFAILREADY\n", &mut said);
        let again = l.dispatch(|_| true, "s");
        assert!(String::from_utf8_lossy(&again[0].bytes).contains("serial:0 pool:l poolserial:0 "));
        l.exited(1, &mut said);
        l.closed(1, &mut said);
        l.started(2, "l", "l");
        l.output(2, b"READY\n", &mut said);
        let third = l.dispatch(|_| true, "s");
        assert!(String::from_utf8_lossy(&third[0].bytes).contains("serial:0 "));
    }

    #[test]
    fn a_dead_listeners_event_waits_for_the_end_of_its_stdout() {
        let mut l = listeners("TICK", 10);
        let mut said = Vec::new();
        l.publish(EventType::Tick5, "when:0".into(), &mut said);
        // It answers, and exits before its answer is read: the answer counts.
        l.started(1, "l", "l");
        l.output(1, b"READY\n", &mut said);
        assert_eq!(l.dispatch(|_| true, "s").len(), 1);
        l.exited(1, &mut said);
        l.started(2, "l", "l");
        l.output(2, b"READY\n", &mut said);
        assert!(l.dispatch(|_| true, "s").is_empty(), "serial 0 is pid 1's");
        l.output(1, b"RESULT 2\nOK", &mut said);
        l.closed(1, &mut said);
        assert!(
            l.dispatch(|_| true, "s").is_empty(),
            "serial 0 was answered"
        );
        l.publish(EventType::Tick5, "when:5".into(), &mut said);
        let next = l.dispatch(|_| true, "s");
        assert_eq!(next[0].pid, 2);
        assert!(String::from_utf8_lossy(&next[0].bytes).contains("serial:1 "));
        // It dies without answering: its event comes back once its stdout has ended, not
        // before, and never to the dead one.
        l.exited(2, &mut said);
        l.started(3, "l", "l");
        l.output(3, b"READY\n", &mut said);
        assert!(l.dispatch(|_| true, "s").is_empty());
        l.closed(2, &mut said);
        let again = l.dispatch(|_| true, "s");
        assert_eq!(again[0].pid, 3);
        assert!(String::from_utf8_lossy(&again[0].bytes).contains("serial:1 "));
        assert!(said.is_empty(), "{said:?}");
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_and_says_so() {
        let mut l = listeners("TICK_5", 2);
        let mut said = Vec::new();
        for n in 0..3 {
            l.publish(EventType::Tick5, format!("when:{n}"), &mut said);
        }
        assert_eq!(said.len(), 1);
        assert!(said[0]
            .2
            .contains("pool l event buffer overflowed, discarding event 0"));
    }

    #[test]
    fn ticks_come_on_each_periods_boundary_and_not_at_start() {
        let mut l = listeners("TICK", 100);
        let mut said = Vec::new();
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        l.tick(at(3599), &mut said);
        assert_eq!(l.next_tick(at(3599)), Some(at(3600)));
        l.tick(at(3600), &mut said);
        l.tick(at(3601), &mut said);
        l.tick(at(3605), &mut said);
        l.started(1, "l", "l");
        let mut whens = Vec::new();
        for _ in 0..5 {
            l.output(1, b"READY\n", &mut said);
            for letter in l.dispatch(|_| true, "s") {
                let text = String::from_utf8_lossy(&letter.bytes).into_owned();
                let name = text
                    .split("eventname:")
                    .nth(1)
                    .and_then(|r| r.split(' ').next());
                whens.push(format!(
                    "{} {}",
                    name.unwrap_or(""),
                    text.lines().last().unwrap_or("")
                ));
            }
            l.output(1, b"RESULT 2\nOK", &mut said);
        }
        assert_eq!(
            whens,
            [
                "TICK_5 when:3600",
                "TICK_60 when:3600",
                "TICK_3600 when:3600",
                "TICK_5 when:3605"
            ]
        );
        // Nobody hears ticks: the clock never wakes the loop for them.
        assert_eq!(listeners("PROCESS_STATE", 1).next_tick(at(0)), None);
    }
}
