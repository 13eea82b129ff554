//! Heartbeats on a thread, for as long as a value lives.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::notify::{watchdog_interval, NotifySocket};

/// The shortest time between two heartbeats, whatever the interval: a thread that beats in a
/// tight loop would do more harm than a missed deadline.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// Sends `WATCHDOG=1` every half of the watchdog interval, from a thread of its own, until it
/// is dropped. Dropping it stops the thread at once and waits for it: from then on the program
/// is silent, and the supervisor's watchdog will declare it hung unless it beats again.
///
/// The first heartbeat goes as the thread starts. A heartbeat that cannot be sent is skipped;
/// the next one tries again.
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    /// Dropped to stop the thread: its wait for the next beat then ends at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts heartbeats when the supervisor asked for them ([`watchdog_interval`] is set and
    /// `NOTIFY_SOCKET` names a socket); `None` otherwise.
    ///
    /// # Panics
    /// If the operating system cannot create a thread, as [`std::thread::spawn`].
    pub fn start() -> Option<Watchdog> {
        let interval = watchdog_interval()?;
        let socket = NotifySocket::from_env().ok()??;
        Some(Watchdog::beating(socket, interval))
    }

    /// Sends `WATCHDOG=1` to `socket` every half `interval`.
    ///
    /// # Panics
    /// If the operating system cannot create a thread, as [`std::thread::spawn`].
    pub fn beating(socket: NotifySocket, interval: Duration) -> Watchdog {
        let period = (interval / 2).max(MIN_PERIOD);
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || loop {
            let _ = socket.send("WATCHDOG=1");
            match stopped.recv_timeout(period) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        });
        Watchdog {
            interval,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The watchdog interval; heartbeats go twice as often.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
