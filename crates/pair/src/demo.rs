//! The counting demo: the smallest program that shows a process pair at work.
//!
//! It prints 1, 2, 3, ... one number per period, each with the pid of the process that
//! printed it and the time that process became primary:
//!
//! ```text
//! 12 (pid 4242, primary since 09:41:03)
//! ```
//!
//! Kill the primary (SIGKILL, SIGSEGV, SIGTERM) or pause it (SIGSTOP): its backup takes
//! over, spawns a backup of its own, and counts on from the last checkpoint. No number is
//! skipped; a number repeats at most once per takeover (the one being printed when the
//! primary died). The backup prints nothing until it takes over; the library's messages
//! (roles, spawns, takeovers) go to stderr.
//!
//! [`counter`] is one process of the pair, with whatever [`Options`] it is given: with the
//! defaults, a Ctrl-C in its terminal kills the primary alone and the backup takes over.
//! `taskmaster pair-demo` runs it under a [`Holder`] instead, so that a person can end it:
//! the holder stays in the foreground, the pair's processes stay in its process group
//! ([`BackupSession::Same`](crate::BackupSession::Same)) and die with it through a
//! [`Lifeline`](crate::Lifeline), and the pair's files go to a folder of the holder's own.
//! Ctrl-C or a closed terminal then ends the whole demo, while a kill of the primary alone
//! is survived as before (see [`Holder`] for why each piece is needed).

mod holder;

pub use holder::{Holder, GRACE};

use std::io::Write;
use std::thread;
use std::time::Duration;

use crate::{run, Flow, Options, PairError};

/// Runs the counter as one process of the pair `options` describes, printing to `out` one
/// number per `period`, for ever. Returns only when the counter cannot print any more (`out`
/// failed), when this process is a second backup ([`PairError::BackupRunning`]), or on a
/// setup error.
///
/// Each unit of work prints the next number and flushes `out`, checkpoints the number after
/// it, and sleeps `period`: the print comes before the checkpoint, so a takeover repeats the
/// last number rather than skip it.
pub fn counter(options: Options<u64>, period: Duration, out: impl Write) -> Result<(), PairError> {
    counter_up_to(options, period, u64::MAX, out)
}

/// [`counter`], stopping the pair once it has printed `last`: the primary returns `Ok(())`
/// after that number, and its backup exits.
pub fn counter_up_to(
    options: Options<u64>,
    period: Duration,
    last: u64,
    mut out: impl Write,
) -> Result<(), PairError> {
    // `kill -SEGV` must kill the counter as a real segfault would (see sys::die_of_sigsegv).
    crate::sys::die_of_sigsegv().map_err(|e| PairError::io("reset the SIGSEGV action", e))?;
    let pid = std::process::id();
    // When this process became primary: the work only ever runs in the primary, so its
    // first unit is the moment.
    let mut primary_since: Option<String> = None;
    let mut failure = None;
    run(options, 1, |next, checkpoint| {
        let since = primary_since.get_or_insert_with(local_time_now);
        let printed =
            writeln!(out, "{next} (pid {pid}, primary since {since})").and_then(|()| out.flush());
        if let Err(error) = printed {
            failure = Some(PairError::io("print the count", error));
            return Flow::Stop;
        }
        if *next >= last {
            return Flow::Stop;
        }
        *next += 1;
        if let Err(error) = checkpoint.save(next) {
            failure = Some(error);
            return Flow::Stop;
        }
        thread::sleep(period);
        Flow::Continue
    })?;
    failure.map_or(Ok(()), Err)
}

/// `HH:MM:SS` in the local time zone (UTC, with a `Z`, where the zone is unknown).
fn local_time_now() -> String {
    let now = jiff::Timestamp::now();
    match jiff::tz::TimeZone::try_system() {
        Ok(zone) => now.to_zoned(zone).strftime("%H:%M:%S").to_string(),
        Err(_) => now.strftime("%H:%M:%SZ").to_string(),
    }
}
