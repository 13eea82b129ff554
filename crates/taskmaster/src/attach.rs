//! `taskmaster ctl attach NAME`: the terminal's side of an attach session (the client's side,
//! output and input over the API, is `taskmaster_api::client::Client::attach`).
//!
//! The terminal stays in line mode: the child reads a pipe, not a terminal, and expects
//! lines, so the user edits a line before it is sent, and sees what they type. Ctrl-] and
//! Ctrl-C are made line ends too (VEOL and VEOL2, with the signal keys off), so that either
//! arrives at once and detaches, and neither kills `ctl` with the terminal left changed.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use taskmaster_api::client::Detached;
use taskmaster_api::Client;
use tokio::sync::mpsc;

/// Ctrl-] (as telnet's escape) and Ctrl-C.
const DETACH_KEYS: &[u8] = &[0x1d, 0x03];

/// How often the key reader looks whether the session is over, so that it never takes a
/// keystroke meant for what comes after.
const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Runs a session on this terminal: how it ended, in words, or the error.
pub fn attach(client: &Client, name: &str, out: &mut dyn Write) -> Result<String, String> {
    let _line_mode = LineMode::enter();
    let greeting = format!(
        "attached to {name}: its output follows, lines you type go to its stdin; \
         Ctrl-] or Ctrl-C detaches (the process keeps running)\n"
    );
    let (keys, typed) = mpsc::unbounded_channel();
    let over = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let over = Arc::clone(&over);
        move || read_keys(&keys, &over)
    });
    let ended = client.attach(name, &greeting, typed, DETACH_KEYS, out);
    over.store(true, Ordering::Relaxed);
    let _ = reader.join();
    // The detach key was echoed where the cursor was.
    let _ = writeln!(out);
    match ended.map_err(|e| e.to_string())? {
        Detached::ByUser => Ok(format!("detached from {name}; it keeps running")),
        Detached::Exited { pid } => Ok(format!("{name} (pid {pid}) exited; detached")),
        Detached::InputClosed => Ok(format!(
            "the input ended; detached from {name}; it keeps running"
        )),
    }
}

/// Reads stdin as it comes and hands each chunk on, until the input ends or `over` is set.
fn read_keys(keys: &mpsc::UnboundedSender<Vec<u8>>, over: &AtomicBool) {
    let stdin = std::io::stdin();
    let timeout = read_timeout();
    let mut buffer = [0u8; 4096];
    while !over.load(Ordering::Relaxed) {
        let mut ready = [rustix::event::PollFd::new(
            &stdin,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut ready, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        match rustix::io::read(stdin.as_fd(), &mut buffer) {
            Ok(0) | Err(_) => return, // the end of the input: the sender's drop says so
            Ok(read) => {
                if keys.send(buffer[..read].to_vec()).is_err() {
                    return;
                }
            }
        }
    }
}

fn read_timeout() -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(READ_TIMEOUT.as_nanos()).unwrap_or(100_000_000),
    }
}

/// The terminal in line mode with the detach keys as line ends, restored when dropped. Not a
/// terminal: nothing to change.
struct LineMode(Option<Termios>);

impl LineMode {
    fn enter() -> LineMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return LineMode(None);
        };
        let mut attach = saved.clone();
        attach.local_modes |= LocalModes::ICANON | LocalModes::ECHO | LocalModes::IEXTEN;
        attach.local_modes -= LocalModes::ISIG;
        attach.special_codes[SpecialCodeIndex::VEOL] = DETACH_KEYS[0];
        attach.special_codes[SpecialCodeIndex::VEOL2] = DETACH_KEYS[1];
        if termios::tcsetattr(&stdin, OptionalActions::Now, &attach).is_err() {
            return LineMode(None);
        }
        LineMode(Some(saved))
    }
}

impl Drop for LineMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}
