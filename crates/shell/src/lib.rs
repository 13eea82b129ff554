//! # The command language and the control shell
//!
//! Theory of operation. Everything a user can type is defined once, in [`command`]: the words
//! of a command line become a [`Request`] (or a shell-only action such as `help`), and a
//! [`Reply`] becomes the lines printed for it ([`render`]). The interactive shell of
//! `taskmaster run`, a script fed on stdin, and (later) `taskmaster ctl` all go through
//! [`execute`], so they cannot disagree.
//!
//! Where requests go is a [`Backend`]: the daemon in the same process, or one reached over a
//! socket. The shell neither knows nor cares.
//!
//! [`repl`] is the interactive front end: line editing, history kept across runs, and tab
//! completion of commands and process names (asked of the backend as you type).

pub mod command;
pub mod render;
pub mod repl;

use std::io::Write;

use taskmaster_core::{Reply, Request};

pub use command::{parse, Parsed, TailAmount, COMMANDS};
pub use repl::{history_path, run_interactive, run_script};

/// Where the shell's requests go.
pub trait Backend {
    /// Sends one request and waits for its reply; the error says why there is none.
    fn call(&self, request: Request) -> Result<Reply, String>;

    /// Writes the end of a process's `stream` (stdout or stderr) to `out`, its last `amount`
    /// of bytes or lines, and with `follow` everything written next, until interrupted.
    fn tail(
        &self,
        name: &str,
        stream: &str,
        amount: TailAmount,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), String>;

    /// Writes the last `bytes` bytes of the event log to `out`, and with `follow` everything
    /// written next, until interrupted.
    fn maintail(&self, bytes: u64, follow: bool, out: &mut dyn Write) -> Result<(), String>;

    /// Connects this terminal to process `name` (`attach`) until the user detaches or it
    /// exits; the text says how it ended.
    fn attach(&self, name: &str, out: &mut dyn Write) -> Result<String, String>;
}

/// Whether the shell goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `quit`, or a `shutdown` that was accepted.
    Quit,
}

/// How a command went, by supervisorctl's convention for exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done (exit status 0).
    Success,
    /// A process named is not RUNNING (for status), or an action did not reach its goal
    /// (exit status 3).
    NotReached,
    /// The command was wrong, or taskmaster could not be reached (exit status 1).
    Error,
}

impl Verdict {
    pub fn exit_status(self) -> u8 {
        match self {
            Verdict::Success => 0,
            Verdict::Error => 1,
            Verdict::NotReached => 3,
        }
    }
}

/// What one command line produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The lines to print.
    pub lines: Vec<String>,
    pub flow: Flow,
    pub verdict: Verdict,
    /// The reply the lines were rendered from, for output in another form (`--json`).
    pub reply: Option<Reply>,
}

/// Parses and runs one command line against `backend`. `tail` writes to `out` as it goes.
pub fn execute(backend: &dyn Backend, line: &str, out: &mut dyn Write) -> Executed {
    let done = |lines, flow, verdict| Executed {
        lines,
        flow,
        verdict,
        reply: None,
    };
    match parse(line) {
        Ok(Parsed::Empty) => done(Vec::new(), Flow::Continue, Verdict::Success),
        Ok(Parsed::Help(topic)) => done(
            command::help(topic.as_deref()),
            Flow::Continue,
            Verdict::Success,
        ),
        Ok(Parsed::Quit) => done(Vec::new(), Flow::Quit, Verdict::Success),
        Ok(Parsed::Tail {
            name,
            stream,
            follow,
            amount,
        }) => match backend.tail(&name, &stream, amount, follow, out) {
            Ok(()) => done(Vec::new(), Flow::Continue, Verdict::Success),
            Err(error) => done(
                vec![format!("error: {error}")],
                Flow::Continue,
                Verdict::Error,
            ),
        },
        Ok(Parsed::Attach { name }) => match backend.attach(&name, out) {
            Ok(ended) => done(vec![ended], Flow::Continue, Verdict::Success),
            Err(error) => done(
                vec![format!("error: {error}")],
                Flow::Continue,
                Verdict::Error,
            ),
        },
        Ok(Parsed::MainTail { follow }) => match backend.maintail(TAIL_BYTES, follow, out) {
            Ok(()) => done(Vec::new(), Flow::Continue, Verdict::Success),
            Err(error) => done(
                vec![format!("error: {error}")],
                Flow::Continue,
                Verdict::Error,
            ),
        },
        Ok(Parsed::Run(request)) => {
            let shutting_down = request == Request::Shutdown;
            match backend.call(request) {
                Ok(reply) => {
                    let flow = if shutting_down && reply == Reply::ShuttingDown {
                        Flow::Quit
                    } else {
                        Flow::Continue
                    };
                    let verdict = if render::succeeded(&reply) {
                        Verdict::Success
                    } else {
                        Verdict::NotReached
                    };
                    Executed {
                        lines: render::render(&reply),
                        flow,
                        verdict,
                        reply: Some(reply),
                    }
                }
                Err(error) => done(
                    vec![format!("error: {error}")],
                    Flow::Continue,
                    Verdict::Error,
                ),
            }
        }
        Err(error) => done(vec![error], Flow::Continue, Verdict::Error),
    }
}

/// How much of a log `tail` shows before following: supervisorctl's 1600 bytes.
pub const TAIL_BYTES: u64 = 1600;
