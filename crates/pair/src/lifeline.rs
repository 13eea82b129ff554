//! The lifeline: a pipe that ties processes to the life of one that holds it.
//!
//! One process, the holder, makes the pipe and keeps its write end to itself (close-on-exec:
//! no program it starts inherits it). Every process of the pair inherits the read end and
//! reads it from a thread of its own; nothing is ever written, so the read returns only when
//! the last write end is closed, which the kernel does when the holder exits, however it
//! exits (SIGKILL included), or when it cuts the lifeline on purpose. Then the process exits,
//! at once. A pair with a lifeline therefore cannot outlive its holder, while the death of
//! any process of the pair itself (the primary killed) cuts nothing.
//!
//! The read end is close-on-exec in every process too; it is handed on only to the children
//! that must have it, at the same descriptor number (see [`Lifeline::pass_to`]), so that a
//! backup, which runs with the same arguments as its primary, finds it where the arguments
//! say.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::Arc;

use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

use crate::log::Logger;
use crate::{sys, PairError};

/// The read end of a lifeline: give it to [`Options::lifeline`](crate::Options::lifeline)
/// and the process exits when the lifeline is cut, and so does every backup it starts.
#[derive(Debug)]
pub struct Lifeline {
    fd: OwnedFd,
}

/// The write end of a lifeline, held by the process the pair must not outlive. Dropping it
/// (or the holder's exit) cuts the lifeline.
#[derive(Debug)]
pub struct LifelineHolder {
    _write: OwnedFd,
}

impl LifelineHolder {
    /// Cuts the lifeline: every process that watches it exits.
    pub fn cut(self) {}
}

impl Lifeline {
    /// A new lifeline: the holder's end, and the end to pass to the pair's first process
    /// ([`Lifeline::pass_to`]). Both are close-on-exec.
    pub fn new() -> Result<(LifelineHolder, Lifeline), PairError> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)
            .map_err(|e| PairError::io("create the lifeline pipe", e.into()))?;
        Ok((LifelineHolder { _write: write }, Lifeline { fd: read }))
    }

    /// The lifeline this process inherited at descriptor `fd`. Fails unless `fd` is an open
    /// pipe other than standard input, output or error, not taken before. The descriptor is
    /// made close-on-exec: [`run`](crate::run) hands it on to the backups it starts, and to
    /// nothing else.
    pub fn inherited(fd: RawFd) -> Result<Lifeline, PairError> {
        let what = || format!("take the lifeline at descriptor {fd}");
        if fd <= 2 {
            let error = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "that is standard input, output or error",
            );
            return Err(PairError::io(what(), error));
        }
        let fd = sys::take_inherited_fd(fd).map_err(|e| PairError::io(what(), e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| PairError::io(what(), e.into()))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Fifo {
            let error = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a pipe");
            return Err(PairError::io(what(), error));
        }
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| PairError::io(what(), e.into()))?;
        Ok(Lifeline { fd })
    }

    /// Makes the child of `command` inherit the lifeline at the same descriptor number
    /// (close-on-exec is cleared in the child only).
    pub fn pass_to(&self, command: &mut Command) {
        sys::inherit_in_child(command, self.fd.as_raw_fd());
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Lifeline {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Lifeline {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Watches the lifeline `fd` from a thread of its own (with `SIGCONT` blocked, like every
/// thread of the library): when it is cut, says so and exits the process, status 0. A read
/// that fails for another reason is reported, and the process goes on without a lifeline.
pub(crate) fn watch(fd: Arc<OwnedFd>, logger: Logger) -> std::io::Result<()> {
    sys::spawn_without_sigcont("pair-lifeline", move || {
        let mut buffer = [0u8; 64];
        loop {
            match rustix::io::read(&*fd, &mut buffer) {
                Ok(0) => {
                    logger.line("the lifeline is cut (its holder is gone): exiting");
                    std::process::exit(0);
                }
                // Nothing is written to a lifeline; whatever is, is no news.
                Ok(_) | Err(Errno::INTR) => continue,
                Err(error) => {
                    logger.line(format_args!("cannot watch the lifeline: {error}"));
                    return;
                }
            }
        }
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_and_closed_descriptors_are_not_lifelines() {
        for fd in [0, 1, 2] {
            let error = Lifeline::inherited(fd).expect_err("stdio refused");
            assert!(error.to_string().contains("standard input"), "{error}");
        }
        let error = Lifeline::inherited(987_654).expect_err("closed refused");
        assert!(
            error
                .to_string()
                .starts_with("take the lifeline at descriptor 987654: "),
            "{error}"
        );
    }
}
