//! Learning how a process that is not our child ends.
//!
//! After a takeover (`taskmaster run --pair`) the backup supervises the children the primary
//! spawned. They are not its children: it cannot `waitpid` them, and SIGCHLD does not tell it
//! of their end. What it has for each is a pidfd, received from the primary. A pidfd polls
//! readable once its process has ended, and the wait status is then in one of two places,
//! depending on whether the process's parent (now init, or the nearest subreaper) has reaped it
//! yet:
//!
//! - **reaped**: the kernel keeps the status with the pidfd, and `ioctl(PIDFD_GET_INFO)` with
//!   `PIDFD_INFO_EXIT` returns it (Linux 6.15 or later).
//! - **a zombie**: the kernel has no exit information for the pidfd yet, but the zombie's
//!   `/proc/PID/stat` shows its wait status (field 52). It is trusted only if the pidfd's
//!   process is still unreaped after reading it: a pid is not reused while its process is
//!   unreaped, so `/proc/PID` was that process all along.
//!
//! Which applies is a race with the reaper, so both are tried, the pidfd first, a bounded number
//! of times: a zombie reaped between the two looks gone from both for a moment.
//!
//! Two limits of the `/proc` way, both outside what taskmaster's children do: the kernel shows
//! 0 there to a reader that may not ptrace the process (taskmaster runs its children as its own
//! user, or runs as root, and a zombie has no memory left to make it undumpable); and it shows
//! the main thread's status, which differs from the process's when the main thread ended first
//! (`pthread_exit` in `main`) and another thread called `exit` later.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use taskmaster_core::ExitStatus;

use crate::sys;

/// How many times [`Adopted::exited`] looks for the status of an ended process before it
/// gives up, and the pause between two looks: 20 × 10 ms covers a reaper's race many times
/// over, and bounds the wait where the status is truly gone.
const STATUS_ATTEMPTS: u32 = 20;
const STATUS_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Field 52 of `/proc/PID/stat`, `exit_code`, counted from 1 as proc(5) does.
const STAT_EXIT_CODE_FIELD: usize = 52;

/// How often an adopted process's state is read for a pause or a resume: SIGCHLD tells only
/// a parent of its child's stops, and the children taken over have another parent.
const PAUSE_POLL: Duration = Duration::from_millis(500);

/// What [`Adopted::watch`] learns of an adopted process.
pub(crate) enum Change {
    /// It is stopped (SIGSTOP, SIGTSTP... `/proc` does not say which).
    Paused,
    Resumed,
    Exited(Result<ExitStatus, ExitUnknown>),
}

/// Opens a pidfd for `pid` (close-on-exec). Race-free only for a process that cannot be reaped
/// meanwhile, such as one's own unreaped child: the primary opens one for each child it spawns
/// and sends it to its backup.
pub(crate) fn pidfd_of(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
    Ok(pidfd_open(pid, PidfdFlags::empty())?)
}

/// A process supervised without being our child: its pid and a pidfd for it.
pub(crate) struct Adopted {
    pid: u32,
    /// Shared with the child's record: one descriptor per adopted child.
    pidfd: std::sync::Arc<OwnedFd>,
}

/// Why the exit status of an adopted process could not be learned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExitUnknown {
    #[error("cannot wait on the pidfd of pid {pid}: {source}")]
    Watch { pid: u32, source: io::Error },
    #[error("cannot read the exit status of pid {pid}: {source}")]
    Read { pid: u32, source: io::Error },
    #[error(
        "the pidfd given for pid {pid} is that of pid {actual}: its exit status cannot be read"
    )]
    WrongPid { pid: u32, actual: u32 },
    #[error(
        "pid {pid} ended, but its exit status is lost: another process reaped it and this \
         kernel keeps no exit status with a pidfd (PIDFD_INFO_EXIT needs Linux 6.15)"
    )]
    Lost { pid: u32 },
}

/// Whether `/proc/PID/stat` shows the process stopped (state `T`); `None` when it cannot be
/// read (the process is gone: its end comes through the pidfd).
fn is_stopped(pid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    Some(state == 'T')
}

/// Where an exit status was found; tests check that both places are read right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Witness {
    /// `PIDFD_INFO_EXIT`: the process had been reaped.
    PidfdInfo,
    /// `/proc/PID/stat`: the process was a zombie.
    ProcStat,
}

impl Adopted {
    /// Adopts the process `pid`, given a pidfd for it (typically received from the primary).
    /// The pidfd is the authority: `pid` only names where `/proc` shows the process.
    pub(crate) fn new(pid: u32, pidfd: std::sync::Arc<OwnedFd>) -> Adopted {
        Adopted { pid, pidfd }
    }

    /// The process's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The pidfd, to signal the process or to hand it on to a new backup.
    #[cfg_attr(not(test), allow(dead_code))] // the tests' way in
    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Reports the process's state as it is now (paused or not), every change of it after,
    /// and at last its end. Pauses are polled (`/proc/PID/stat`, every [`PAUSE_POLL`]); the
    /// end comes through the pidfd. Must run on a tokio runtime.
    pub(crate) async fn watch(&self, report: impl Fn(Change)) {
        let exited = self.exited();
        tokio::pin!(exited);
        let mut poll = tokio::time::interval(PAUSE_POLL);
        let mut stopped = None;
        loop {
            tokio::select! {
                status = &mut exited => return report(Change::Exited(status)),
                _ = poll.tick() => {
                    let now = is_stopped(self.pid);
                    if now.is_some() && now != stopped {
                        report(if now == Some(true) { Change::Paused } else { Change::Resumed });
                        stopped = now;
                    }
                }
            }
        }
    }

    /// Waits until the process has ended, and returns how: the wait status its parent got or
    /// will get. Must run on a tokio runtime; any number of calls may wait at once.
    pub(crate) async fn exited(&self) -> Result<ExitStatus, ExitUnknown> {
        self.exited_with_witness().await.map(|(status, _)| status)
    }

    async fn exited_with_witness(&self) -> Result<(ExitStatus, Witness), ExitUnknown> {
        sys::pidfd_readable(self.pidfd.as_fd())
            .await
            .map_err(|source| ExitUnknown::Watch {
                pid: self.pid,
                source,
            })?;
        self.status_after_end().await
    }

    /// The wait status of the process, which has ended: see the module documentation.
    async fn status_after_end(&self) -> Result<(ExitStatus, Witness), ExitUnknown> {
        let read_error = |source| ExitUnknown::Read {
            pid: self.pid,
            source,
        };
        for attempt in 0..STATUS_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(STATUS_RETRY_PAUSE).await;
            }
            match sys::pidfd_exit_info(self.pidfd.as_fd()) {
                Ok(info) => {
                    if let Some(status) = info.exit_status {
                        return Ok((sys::decode_wait_status(status), Witness::PidfdInfo));
                    }
                    if let Some(actual) = info.pid.filter(|&actual| actual != self.pid) {
                        return Err(ExitUnknown::WrongPid {
                            pid: self.pid,
                            actual,
                        });
                    }
                }
                // Reaped, on a kernel that keeps no exit status; or, retried, a reaper's race.
                Err(error) if error.raw_os_error() == Some(libc::ESRCH) => {}
                // A kernel without PIDFD_GET_INFO (before 6.13): only /proc can tell.
                Err(error)
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP)
                    ) => {}
                Err(error) => return Err(read_error(error)),
            }
            if let Some(status) = self.zombie_status().map_err(read_error)? {
                return Ok((sys::decode_wait_status(status), Witness::ProcStat));
            }
        }
        Err(ExitUnknown::Lost { pid: self.pid })
    }

    /// The wait status in `/proc/PID/stat`, if the process is a zombie there and still the
    /// pidfd's process after the read; `None` if it is gone (reaped meanwhile).
    fn zombie_status(&self) -> io::Result<Option<i32>> {
        let stat = match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => stat,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            // ESRCH: the process went between the open and the read.
            Err(error) if error.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(error) => return Err(error),
        };
        // Unreaped now means the pid was never free since the pidfd was opened: what we read
        // was the pidfd's process.
        if !sys::pidfd_is_unreaped(self.pidfd.as_fd())? {
            return Ok(None);
        }
        let Some(stat) = ProcStat::parse(&stat) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{}/stat cannot be parsed", self.pid),
            ));
        };
        // Z: a zombie; X: being reaped right now. Either way the status is final.
        Ok(matches!(stat.state, 'Z' | 'X').then_some(stat.exit_code))
    }
}

/// The two fields of `/proc/PID/stat` read here.
#[derive(Debug, PartialEq)]
struct ProcStat {
    /// Field 3: R, S, D, T, Z, X...
    state: char,
    /// Field 52: the wait status once the process has exited (0 before, and 0 for a reader
    /// that may not ptrace the process).
    exit_code: i32,
}

impl ProcStat {
    /// Parses the line. Field 2 is the command name in parentheses, which may itself contain
    /// spaces and parentheses, so the fields are counted from after its last `)`.
    fn parse(line: &str) -> Option<ProcStat> {
        let after_name = &line[line.rfind(')')? + 1..];
        let mut fields = after_name.split_ascii_whitespace();
        // The first field after the name is field 3.
        let state = fields.next()?.chars().next()?;
        let exit_code = fields.nth(STAT_EXIT_CODE_FIELD - 4)?.parse().ok()?;
        Some(ProcStat { state, exit_code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::time::Instant;
    use taskmaster_core::Signal;

    /// Generous: these wait for the kernel and for tiny processes, never for a timer.
    const DEADLINE: Duration = Duration::from_secs(10);

    /// Who reaps the grandchild once it has ended.
    #[derive(Clone, Copy)]
    enum Reaper {
        /// Its parent does, before we look: only `PIDFD_INFO_EXIT` can tell.
        ParentFirst,
        /// Its parent is stopped while we look: a zombie, only `/proc` can tell.
        ParentStopped,
    }

    /// A process that is not ours: G, started in the background by a shell A (our child)
    /// that prints G's pid, then waits for G, reaping it, and prints `reaped`. G blocks reading
    /// a pipe whose write end is `trigger`, then runs its script when that is closed.
    struct Grandchild {
        adopted: Adopted,
        trigger: Option<OwnedFd>,
        parent: Child,
        parent_output: BufReader<ChildStdout>,
    }

    impl Grandchild {
        fn start(script: &str) -> Grandchild {
            let (read_end, write_end) =
                rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
            // G's standard input is /dev/null (a background job's is), so the pipe reaches it
            // as descriptor 3.
            let parent_script = format!(
                "exec 3<&0; sh -c 'read line <&3; {script}' >/dev/null 2>&1 & \
                 echo $!; wait $!; echo reaped"
            );
            let mut parent = Command::new("sh")
                .args(["-c", &parent_script])
                .stdin(Stdio::from(read_end))
                .stdout(Stdio::piped())
                // dash reports a job killed by a signal ("Killed") there: not our output.
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sh");
            let mut parent_output = BufReader::new(parent.stdout.take().expect("stdout"));
            let mut line = String::new();
            parent_output.read_line(&mut line).expect("read the pid");
            let pid: u32 = line.trim().parse().expect("a pid");
            // G blocks on the pipe until we close it, so this pid is still G's.
            let pidfd = pidfd_of(pid).expect("pidfd_open");
            Grandchild {
                adopted: Adopted::new(pid, pidfd.into()),
                trigger: Some(write_end),
                parent,
                parent_output,
            }
        }

        /// Lets G run its script.
        fn trigger(&mut self) {
            self.trigger = None;
        }

        fn stop_parent(&self) {
            sys::kill(self.parent.id(), Signal::STOP).expect("SIGSTOP the parent");
            wait_until("the parent is stopped", || {
                state_of(self.parent.id()) == Some('T')
            });
        }

        fn continue_parent(&self) {
            sys::kill(self.parent.id(), Signal::CONT).expect("SIGCONT the parent");
        }

        /// Waits until the parent has reaped G.
        fn wait_reaped(&mut self) {
            let mut line = String::new();
            self.parent_output.read_line(&mut line).expect("read");
            assert_eq!(line.trim(), "reaped");
        }

        /// Lets G end if it has not, and checks that the parent reaped it and ended well.
        fn finish(mut self) {
            self.trigger = None;
            self.continue_parent();
            let status = self.parent.wait().expect("wait for the parent");
            assert!(status.success(), "the parent shell failed: {status}");
        }
    }

    /// After a failed test: ends G by its pidfd and the parent by its pid (std signals only a
    /// child it has not reaped yet), so that nothing is left running.
    impl Drop for Grandchild {
        fn drop(&mut self) {
            let _ = sys::pidfd_send_signal(self.adopted.pidfd(), Signal::KILL);
            let _ = self.parent.kill();
            let _ = self.parent.wait();
        }
    }

    fn state_of(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ProcStat::parse(&stat).map(|stat| stat.state)
    }

    fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Starts a grandchild running `script`, ends it with `end` while [`Adopted::exited`]
    /// already waits, lets `reaper` reap it, and returns what `exited` learned.
    async fn end_of(
        script: &str,
        end: impl FnOnce(&mut Grandchild),
        reaper: Reaper,
    ) -> (ExitStatus, Witness) {
        let mut grandchild = Grandchild::start(script);
        if let Reaper::ParentStopped = reaper {
            grandchild.stop_parent();
        }
        let learned = {
            let adopted = Adopted::new(
                grandchild.adopted.pid(),
                grandchild
                    .adopted
                    .pidfd()
                    .try_clone_to_owned()
                    .expect("dup")
                    .into(),
            );
            let waiting = adopted.exited_with_witness();
            tokio::pin!(waiting);
            // Polled once before the end, so that the end is waited for, not found.
            assert!(poll_once(&mut waiting).await.is_none());
            end(&mut grandchild);
            if let Reaper::ParentFirst = reaper {
                grandchild.wait_reaped();
            }
            tokio::time::timeout(DEADLINE, waiting)
                .await
                .expect("exited() within the deadline")
                .expect("an exit status")
        };
        if let Reaper::ParentStopped = reaper {
            assert_eq!(
                state_of(grandchild.adopted.pid()),
                Some('Z'),
                "still a zombie"
            );
            grandchild.continue_parent();
            grandchild.wait_reaped();
        }
        grandchild.finish();
        learned
    }

    /// Polls `future` once: its output if it is ready at once.
    async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|context| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(context) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    fn trigger(grandchild: &mut Grandchild) {
        grandchild.trigger();
    }

    fn kill_with(signal: Signal) -> impl FnOnce(&mut Grandchild) {
        move |grandchild| {
            sys::pidfd_send_signal(grandchild.adopted.pidfd(), signal).expect("signal")
        }
    }

    #[tokio::test]
    async fn exit_code_of_a_reaped_non_child_comes_from_its_pidfd() {
        let learned = end_of("exit 7", trigger, Reaper::ParentFirst).await;
        assert_eq!(learned, (ExitStatus::Code(7), Witness::PidfdInfo));
    }

    #[tokio::test]
    async fn exit_code_of_a_zombie_non_child_comes_from_proc_stat() {
        let learned = end_of("exit 7", trigger, Reaper::ParentStopped).await;
        assert_eq!(learned, (ExitStatus::Code(7), Witness::ProcStat));
    }

    #[tokio::test]
    async fn sigkill_of_a_reaped_non_child_is_reported() {
        let learned = end_of("exit 0", kill_with(Signal::KILL), Reaper::ParentFirst).await;
        let killed = ExitStatus::Signal {
            signal: Signal::KILL,
            core_dumped: false,
        };
        assert_eq!(learned, (killed, Witness::PidfdInfo));
    }

    #[tokio::test]
    async fn sigkill_of_a_zombie_non_child_is_reported() {
        let learned = end_of("exit 0", kill_with(Signal::KILL), Reaper::ParentStopped).await;
        let killed = ExitStatus::Signal {
            signal: Signal::KILL,
            core_dumped: false,
        };
        assert_eq!(learned, (killed, Witness::ProcStat));
    }

    /// Whether a core is dumped depends on the machine (RLIMIT_CORE, core_pattern): only the
    /// signal is checked, and that both places agree.
    #[tokio::test]
    async fn segfault_of_a_non_child_is_reported_the_same_by_pidfd_and_proc() {
        let script = "kill -SEGV $$";
        let (reaped, reaped_witness) = end_of(script, trigger, Reaper::ParentFirst).await;
        let (zombie, zombie_witness) = end_of(script, trigger, Reaper::ParentStopped).await;
        assert_eq!(
            (reaped_witness, zombie_witness),
            (Witness::PidfdInfo, Witness::ProcStat)
        );
        assert!(
            matches!(reaped, ExitStatus::Signal { signal, .. } if signal == Signal::SEGV),
            "{reaped:?}"
        );
        let (ExitStatus::Signal { core_dumped: a, .. }, ExitStatus::Signal { core_dumped: b, .. }) =
            (reaped, zombie)
        else {
            panic!("both should be signals: {reaped:?} {zombie:?}");
        };
        assert_eq!(a, b, "core_dumped differs between the two places");
    }

    #[tokio::test]
    async fn two_waits_on_one_adopted_process_both_learn_its_end() {
        let mut grandchild = Grandchild::start("exit 3");
        let statuses = {
            let adopted = &grandchild.adopted;
            let first = adopted.exited();
            let second = adopted.exited();
            tokio::pin!(first, second);
            assert!(poll_once(&mut first).await.is_none());
            assert!(poll_once(&mut second).await.is_none());
            grandchild.trigger.take();
            let both = async { (first.await.ok(), second.await.ok()) };
            tokio::time::timeout(DEADLINE, both)
                .await
                .expect("both within the deadline")
        };
        let exited = Some(ExitStatus::Code(3));
        assert_eq!(statuses, (exited, exited));
        grandchild.finish();
    }

    #[test]
    fn proc_stat_fields_are_counted_after_the_last_parenthesis() {
        // A command name with spaces and parentheses, then fields 3 to 52.
        let mut line = String::from("4242 (a) Z (b c)) Z");
        for field in 4..=51 {
            line.push_str(&format!(" {field}"));
        }
        line.push_str(" 2304\n");
        assert_eq!(
            ProcStat::parse(&line),
            Some(ProcStat {
                state: 'Z',
                exit_code: 2304
            })
        );
        assert_eq!(ProcStat::parse("4242 (short) S 1 2"), None);
        assert_eq!(ProcStat::parse("no parenthesis"), None);
    }

    #[test]
    fn pidfd_of_refuses_pid_zero() {
        assert_eq!(
            pidfd_of(0).expect_err("pid 0").kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
