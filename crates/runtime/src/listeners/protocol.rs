//! supervisord's event listener protocol, as one listener speaks it on its stdout: pure, fed
//! bytes, it says what the listener did.
//!
//! A listener starts ACKNOWLEDGED and says `READY\n`; it is then READY, and taskmaster may
//! send it one event (it is then BUSY); it answers `RESULT N\n` and N bytes, and is
//! ACKNOWLEDGED again. `OK` accepts the event; any other result (`FAIL`, as
//! `childutils.listener.fail` writes) rejects it, to be sent again, as supervisord's default
//! result handler does. Anything else breaks the protocol: the listener is UNKNOWN and gets no
//! more events until it is restarted, as under supervisord.

/// Where a listener is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerState {
    /// It has answered (or just started) and has not said READY yet.
    Acknowledged,
    /// It waits for an event.
    Ready,
    /// It has an event and has not answered yet.
    Busy,
    /// It broke the protocol.
    Unknown,
}

/// What a listener did, as its bytes tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// It said READY: it may get an event.
    Ready,
    /// It answered its event: `OK` (processed) or not (`FAIL` or anything else: send it
    /// again).
    Result { ok: bool },
    /// It broke the protocol (why, for the event log); a busy listener's event is to be sent
    /// again.
    Broke(String),
}

const READY: &[u8] = b"READY\n";
const RESULT: &[u8] = b"RESULT ";

/// The longest `RESULT N` line and result taskmaster reads: a listener that writes more breaks
/// the protocol, rather than growing taskmaster's memory without bound.
const MAX_LINE: usize = 1024;
const MAX_RESULT: usize = 64 << 10;

/// One listener's side of the protocol.
#[derive(Debug)]
pub(crate) struct Protocol {
    state: ListenerState,
    /// Bytes read and not yet understood.
    pending: Vec<u8>,
    /// While reading a result: how long it is, and what was read of it.
    result: Option<(usize, Vec<u8>)>,
}

impl Protocol {
    pub fn new() -> Protocol {
        Protocol {
            state: ListenerState::Acknowledged,
            pending: Vec::new(),
            result: None,
        }
    }

    pub fn state(&self) -> ListenerState {
        self.state
    }

    /// An event was written to it: it is BUSY until it answers.
    pub fn sent(&mut self) {
        self.state = ListenerState::Busy;
    }

    /// Reads what the listener wrote; what it did, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Step> {
        if self.state == ListenerState::Unknown {
            return Vec::new();
        }
        self.pending.extend_from_slice(bytes);
        let mut steps = Vec::new();
        while let Some(step) = self.next_step() {
            let broke = matches!(step, Step::Broke(_));
            steps.push(step);
            if broke {
                break;
            }
        }
        steps
    }

    /// The next thing the pending bytes say, if they say enough yet.
    fn next_step(&mut self) -> Option<Step> {
        if self.pending.is_empty() {
            return None;
        }
        match self.state {
            ListenerState::Unknown => None,
            ListenerState::Acknowledged => {
                if self.pending.len() < READY.len() {
                    return None;
                }
                if self.pending.starts_with(READY) {
                    self.pending.drain(..READY.len());
                    self.state = ListenerState::Ready;
                    Some(Step::Ready)
                } else {
                    Some(self.broke(format!(
                        "expected READY, found {}",
                        shown(&self.pending.clone())
                    )))
                }
            }
            // Strict, as supervisord: a ready listener has nothing to say.
            ListenerState::Ready => Some(self.broke(format!(
                "wrote {} while waiting for an event",
                shown(&self.pending.clone())
            ))),
            ListenerState::Busy => self.result_step(),
        }
    }

    /// While BUSY: the `RESULT N` line, then N bytes.
    fn result_step(&mut self) -> Option<Step> {
        let (length, mut body) = match self.result.take() {
            Some(partial) => partial,
            None => {
                let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                    if self.pending.len() > MAX_LINE {
                        return Some(
                            self.broke(format!("no result line in its first {MAX_LINE} bytes")),
                        );
                    }
                    return None;
                };
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = &line[..line.len() - 1];
                let length = line
                    .strip_prefix(RESULT)
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(|n| n.parse::<usize>().ok());
                match length {
                    Some(length) if length > MAX_RESULT => {
                        return Some(
                            self.broke(format!("a result of {length} bytes, over {MAX_RESULT}")),
                        )
                    }
                    Some(length) => (length, Vec::new()),
                    None => return Some(self.broke(format!("bad result line {}", shown(line)))),
                }
            }
        };
        let needed = length - body.len();
        let taken = needed.min(self.pending.len());
        body.extend(self.pending.drain(..taken));
        if body.len() < length {
            self.result = Some((length, body));
            return None;
        }
        self.state = ListenerState::Acknowledged;
        Some(Step::Result { ok: body == b"OK" })
    }

    fn broke(&mut self, why: String) -> Step {
        self.state = ListenerState::Unknown;
        self.pending.clear();
        self.result = None;
        Step::Broke(why)
    }
}

/// Bytes as a quoted string, cut short.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_then_result_ok_and_fail_come_back_to_acknowledged() {
        let mut p = Protocol::new();
        assert_eq!(p.feed(b"REA"), []);
        assert_eq!(p.feed(b"DY\n"), [Step::Ready]);
        assert_eq!(p.state(), ListenerState::Ready);
        p.sent();
        assert_eq!(p.feed(b"RESULT 2\nO"), []);
        assert_eq!(
            p.feed(b"KREADY\n"),
            [Step::Result { ok: true }, Step::Ready]
        );
        p.sent();
        assert_eq!(p.feed(b"RESULT 4\nFAIL"), [Step::Result { ok: false }]);
        assert_eq!(p.state(), ListenerState::Acknowledged);
    }

    #[test]
    fn anything_else_breaks_the_protocol_for_good() {
        let mut p = Protocol::new();
        assert!(matches!(p.feed(b"HELLO\n")[..], [Step::Broke(_)]));
        assert_eq!(p.state(), ListenerState::Unknown);
        assert_eq!(p.feed(b"READY\n"), []);

        let mut p = Protocol::new();
        p.feed(b"READY\n");
        assert!(matches!(p.feed(b"x")[..], [Step::Broke(_)]));

        let mut p = Protocol::new();
        p.feed(b"READY\n");
        p.sent();
        assert!(matches!(p.feed(b"RESULT two\n")[..], [Step::Broke(_)]));

        // Nothing it writes grows taskmaster's memory without bound.
        let mut p = Protocol::new();
        p.feed(b"READY\n");
        p.sent();
        assert!(matches!(p.feed(&[b'x'; 2000])[..], [Step::Broke(_)]));
        let mut p = Protocol::new();
        p.feed(b"READY\n");
        p.sent();
        assert!(matches!(p.feed(b"RESULT 99999999\n")[..], [Step::Broke(_)]));
    }

    #[test]
    fn a_result_other_than_ok_rejects_the_event_as_supervisords_default_handler() {
        let mut p = Protocol::new();
        p.feed(b"READY\n");
        p.sent();
        assert_eq!(
            p.feed(b"RESULT 3\nYESREADY\n"),
            [Step::Result { ok: false }, Step::Ready]
        );
        p.sent();
        assert_eq!(p.feed(b"RESULT 0\n"), [Step::Result { ok: false }]);
        assert_eq!(p.state(), ListenerState::Acknowledged);
    }
}
