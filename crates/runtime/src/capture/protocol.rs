//! The stdout of an event listener: its bytes are the listener protocol (`READY`, `RESULT`),
//! which the loop reads, and they go to its log file too, as supervisord logs them. The thread
//! reads the pipe, appends what it read to the file if there is one, and hands the bytes to
//! the loop; it never holds anything the loop takes.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{append, Sink};

/// How much one read takes at most: a listener's answers are a few bytes.
const READ_SIZE: usize = 4096;

/// Reads `pipe` until every writer has closed it.
pub(super) fn run(
    pipe: &OwnedFd,
    file: Option<&Arc<Sink>>,
    deliver: &dyn Fn(Vec<u8>),
    report: &dyn Fn(String),
) {
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        match rustix::io::read(pipe, &mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                let bytes = &buffer[..n];
                if let Some(sink) = file {
                    if let (_, Some(failed)) = append(sink, bytes) {
                        report(failed.describe(&sink.path));
                    }
                }
                deliver(bytes.to_vec());
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                report(format!("cannot read the listener's stdout: {e}"));
                return;
            }
        }
    }
}
