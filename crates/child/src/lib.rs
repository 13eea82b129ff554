//! # The library for programs taskmaster supervises
//!
//! Theory of operation. A supervised program talks to its supervisor in two ways, and this
//! crate has one module for each.
//!
//! **Notifications** (`notify`, std only): the sd_notify protocol of systemd, which taskmaster
//! speaks too. taskmaster gives every child `NOTIFY_SOCKET`, the unix datagram socket it
//! listens on (a path, or `@name` in the abstract namespace, as systemd gives it); a program
//! sends `KEY=value` lines there: [`ready`] (`READY=1`, which a program with `ready: notify`
//! must send to count as RUNNING), [`status`], [`stopping`], [`reloading`]. A program with a
//! `watchdog:` also gets `WATCHDOG_USEC` (and `WATCHDOG_PID`), and must send [`heartbeat`]s
//! (`WATCHDOG=1`) more often than that, or be declared hung and restarted; a [`Watchdog`]
//! sends them from a thread of its own for as long as it lives.
//!
//! Every notification is a **no-op outside a supervisor**, like libsystemd's `sd_notify`: with
//! `NOTIFY_SOCKET` unset nothing is sent and the answer is `Ok(false)`, and
//! [`Watchdog::start`] is `None` without `WATCHDOG_USEC`. A program calls them unconditionally,
//! and runs the same by hand, under taskmaster and under systemd.
//!
//! **Control** (`control`, the default feature): taskmaster gives every child
//! `TASKMASTER_SOCKET`, its control socket. A [`Control`] sends the requests `taskmaster ctl`
//! sends (status, start, stop, restart, reread, add, remove) through the API's own client, and
//! reads the daemon's stream of [`Event`]s (state changes, event-log lines). Without the
//! feature the crate is std only.
//!
//! ```
//! // Up, and saying what it does; outside a supervisor these send nothing.
//! taskmaster_child::ready()?;
//! taskmaster_child::status("serving on :8080")?;
//! // Heartbeats for as long as `_watchdog` lives, when the program has a `watchdog:`.
//! let _watchdog = taskmaster_child::Watchdog::start();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "control")]
//! # fn main() -> Result<(), taskmaster_child::ControlError> {
//! use taskmaster_child::{Control, Event, State};
//!
//! let control = Control::from_env()?;
//! for process in control.status()? {
//!     println!("{} is {}", process.name, process.state);
//! }
//! control.start(["workers:workers_00"])?;
//! for event in control.events()? {
//!     if let Event::StateChanged { process, to: State::Exited, .. } = event? {
//!         println!("{process} exited");
//!     }
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "control"))]
//! # fn main() {}
//! ```
//!
//! The examples (`crates/child/examples/`) are two whole programs with their configurations:
//! `heartbeat_worker` (readiness, status and a watchdog) and `worker_pool` (a program that
//! scales another through the API and watches its events).

mod notify;
mod watchdog;

pub use notify::{
    heartbeat, notify, ready, reloading, status, stopping, watchdog_interval, watchdog_trigger,
    NotifySocket, NOTIFY_SOCKET, WATCHDOG_PID, WATCHDOG_USEC,
};
pub use watchdog::Watchdog;

#[cfg(feature = "control")]
mod control;

#[cfg(feature = "control")]
pub use control::{Control, ControlError, Event, Events, TASKMASTER_SOCKET};
#[cfg(feature = "control")]
pub use taskmaster_api::ClientError;
#[cfg(feature = "control")]
pub use taskmaster_core::{Done, Failure, Outcome, ProcessInfo, ReloadPlan, State};
