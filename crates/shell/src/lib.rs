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

use taskmaster_core::{Reply, Request};

pub use command::{parse, Parsed, COMMANDS};
pub use repl::{history_path, run_interactive, run_script};

/// Where the shell's requests go.
pub trait Backend {
    /// Sends one request and waits for its reply; the error says why there is none.
    fn call(&self, request: Request) -> Result<Reply, String>;
}

/// Whether the shell goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `quit`, or a `shutdown` that was accepted.
    Quit,
}

/// What one command line produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The lines to print.
    pub lines: Vec<String>,
    pub flow: Flow,
    /// supervisorctl's convention: false when a process named is not RUNNING (for status) or
    /// an action did not reach its goal.
    pub success: bool,
}

/// Parses and runs one command line against `backend`.
pub fn execute(backend: &dyn Backend, line: &str) -> Executed {
    let done = |lines, flow, success| Executed {
        lines,
        flow,
        success,
    };
    match parse(line) {
        Ok(Parsed::Empty) => done(Vec::new(), Flow::Continue, true),
        Ok(Parsed::Help(topic)) => done(command::help(topic.as_deref()), Flow::Continue, true),
        Ok(Parsed::Quit) => done(Vec::new(), Flow::Quit, true),
        Ok(Parsed::Run(request)) => {
            let shutting_down = request == Request::Shutdown;
            match backend.call(request) {
                Ok(reply) => {
                    let flow = if shutting_down && reply == Reply::ShuttingDown {
                        Flow::Quit
                    } else {
                        Flow::Continue
                    };
                    done(render::render(&reply), flow, render::succeeded(&reply))
                }
                Err(error) => done(vec![format!("error: {error}")], Flow::Continue, false),
            }
        }
        Err(error) => done(vec![error], Flow::Continue, false),
    }
}
