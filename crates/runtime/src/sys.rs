//! The few operating-system calls that rustix does not wrap safely. Every `unsafe` block of
//! taskmaster lives here, each with the reason it is sound.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use taskmaster_core::{ExitStatus, Signal};

/// Marks every descriptor above stderr close-on-exec, so that children inherit only 0, 1 and 2
/// even when taskmaster itself was started with stray descriptors open. Everything taskmaster
/// opens afterwards is close-on-exec already (Rust's default).
pub fn mark_inherited_fds_cloexec() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it closes
    // nothing and touches no memory. An old kernel answers ENOSYS, which we ignore.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// Unblocks every signal in the calling thread. taskmaster may be started with signals blocked
/// (its parent's mask is inherited); with SIGCHLD or SIGTERM blocked it would never learn of an
/// exit or a shutdown. Call before any thread exists, so that every thread inherits the mask.
pub fn unblock_all_signals() {
    // SAFETY: sigemptyset initializes `set`, a sigset_t we own; sigprocmask reads it and
    // writes nothing back (null old set).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 share this layout), for rt_sigaction
/// made directly: glibc's wrapper refuses its internal signals 32 and 33.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Makes `command` set up its child, between fork and exec: every signal back to its default
/// disposition, an empty signal mask, and the umask if one is given.
///
/// exec resets handled signals but keeps ignored ones and the mask, so whatever taskmaster
/// inherited (a signal ignored under `nohup`, a mask from its parent, glibc's internal signals
/// left ignored by a posix_spawn that started taskmaster) would otherwise reach every child.
pub fn setup_child(command: &mut Command, umask: Option<u32>) {
    let mode = umask.map(rustix::fs::Mode::from_bits_truncate);
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes only the rt_sigaction, sigprocmask and
    // umask system calls, on values it owns, allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            let default = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            for number in 1..=libc::SIGRTMAX() {
                // KILL and STOP cannot be changed (EINVAL); nothing else can fail here.
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    number,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    std::mem::size_of::<u64>(),
                );
            }
            let empty: u64 = 0;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &empty as *const u64,
                std::ptr::null_mut::<u64>(),
                std::mem::size_of::<u64>(),
            );
            if let Some(mode) = mode {
                rustix::process::umask(mode);
            }
            Ok(())
        });
    }
}

/// Sends a signal to the process a pidfd refers to: unlike kill(pid), it can never reach a
/// process that reused the pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> std::io::Result<()> {
    // SAFETY: the syscall takes a descriptor we borrow (valid for the call), a signal number,
    // a null siginfo (allowed: the kernel fills one in) and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal.number(),
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sends a signal to a pid.
pub fn kill(pid: u32, signal: Signal) -> std::io::Result<()> {
    send(i32::try_from(pid).unwrap_or(i32::MAX), signal)
}

/// Sends a signal to every process of the process group `pgid`.
pub fn kill_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    let pgid = i32::try_from(pgid).unwrap_or(i32::MAX);
    if pgid <= 1 {
        // kill(-1) would signal every process we may signal; never let a bad pid get there.
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    send(-pgid, signal)
}

fn send(target: i32, signal: Signal) -> std::io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(target, signal.number()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reaps one child that has ended, if any, without blocking: `waitpid(-1, WNOHANG)`.
/// As a subreaper, that includes orphaned grandchildren.
pub fn reap_one() -> Option<(u32, ExitStatus)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into `status`, an integer we own.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            return Some((pid.unsigned_abs(), decode(status)));
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None; // 0: children remain, none ended; -1 ECHILD: no children at all
    }
}

fn decode(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        let number = libc::WTERMSIG(status);
        ExitStatus::Signal {
            signal: Signal::from_number(number).unwrap_or(Signal::KILL),
            core_dumped: libc::WCOREDUMP(status),
        }
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}
