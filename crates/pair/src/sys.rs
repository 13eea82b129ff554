//! The few operating-system calls that rustix does not wrap safely: what a child gets between
//! fork and exec (its signal mask, its session, an inherited descriptor), an inherited
//! descriptor taken over, the signal mask of the library's threads, signals taken by waiting
//! (the demo's holder), and the fence on `SIGCONT`. Every `unsafe` block of the crate lives
//! here, each with the reason it is sound.

use std::ffi::{c_int, CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::process::Signal;

/// Prepares the child of `command`: it starts with no signal blocked, and, with
/// `new_session`, in a session of its own, so that it has no controlling terminal (Ctrl-C,
/// Ctrl-Z and the terminal's hangup then reach the primary in the foreground, never its
/// backup). The mask matters because a mask is inherited through exec: backups are spawned
/// from a thread that blocks `SIGCONT` (see [`spawn_without_sigcont`]), where it would
/// disable the child's own fence, and the demo's holder blocks the signals it waits for.
pub(crate) fn prepare_child(command: &mut Command, new_session: bool) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed. sigemptyset and pthread_sigmask are
    // async-signal-safe; they read and write only `empty`, a sigset_t on the child's stack.
    // setsid is one system call; rustix makes it without allocating or taking a lock, and an
    // error becomes an io::Error from its number, without allocating either.
    unsafe {
        command.pre_exec(move || {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if new_session {
                rustix::process::setsid()
                    .map(drop)
                    .map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
}

/// Makes the child of `command` inherit `fd`, a close-on-exec descriptor of this process,
/// at the same number: close-on-exec is cleared in the child, between fork and exec.
pub(crate) fn inherit_in_child(command: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec; fcntl is
    // async-signal-safe and changes only the flags of the child's own copy of `fd`. An error
    // becomes an io::Error from errno, without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of descriptor `fd`, which this process inherited from its parent: fails
/// unless it is open and this function has not given it out before.
pub(crate) fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
    if taken.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "taken already",
        ));
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number; one that is not open
    // gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    taken.push(fd);
    // SAFETY: `fd` is open (checked above). It was inherited, so no code of this process
    // opened it, and nothing else owns it: std and the crates own only descriptors they
    // opened, and this function gives each number out once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A set of signals a process takes by waiting for them rather than by handlers.
pub(crate) struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn of(signals: &[Signal]) -> SignalSet {
        // SAFETY: sigemptyset and sigaddset initialize `set`, a sigset_t we own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in signals {
                libc::sigaddset(&mut set, signal.as_raw());
            }
            SignalSet(set)
        }
    }

    /// Blocks these signals in the calling thread (and the threads and children it starts
    /// later: give children a clean mask with [`prepare_child`]), so that they stay pending
    /// until [`SignalSet::wait`] takes them.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: pthread_sigmask reads `self.0`, an initialized sigset_t.
        let error =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        match error {
            0 => Ok(()),
            error => Err(io::Error::from_raw_os_error(error)),
        }
    }

    /// Takes one pending signal of the set, waiting up to `timeout` (`None`: for ever) for
    /// one to come; `None` when none came (or a handled signal interrupted the wait).
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Signal>> {
        let timespec = timeout.map(|timeout| libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        });
        let timespec_ptr = timespec.as_ref().map_or(std::ptr::null(), |timespec| {
            timespec as *const libc::timespec
        });
        // SAFETY: `self.0` is an initialized sigset_t; `timespec_ptr` is null or points to
        // `timespec`, alive until the call returns; a null siginfo pointer is allowed.
        let taken = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), timespec_ptr) };
        if taken == -1 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(error),
            };
        }
        Ok(Signal::from_named_raw(taken))
    }
}

/// Ends the process by `signal`, as if it had not handled it: its default action is put
/// back, it is unblocked and sent to this process. A parent (a shell) then sees the death it
/// expects: a shell running a loop stops the loop after a Ctrl-C this way. For a signal whose
/// default is not to end the process, exits with status 128 + its number.
pub(crate) fn die_of(signal: Signal) -> ! {
    let raw = signal.as_raw();
    // SAFETY: `action` is a sigaction we own, zeroed (a valid empty value) with SIG_DFL as
    // its handler; sigaction copies it. sigemptyset and sigaddset initialize `set`, a
    // sigset_t we own, which pthread_sigmask reads.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(raw, &action, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, raw);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
    std::process::exit(128 + raw)
}

/// Spawns a thread of the library with `SIGCONT` blocked, so that the fence's handler (see
/// [`install_fence`]) runs on the thread doing the work, which it must interrupt, and not on
/// a heartbeat thread. The new thread inherits the mask of the calling thread; the calling
/// thread's own mask is restored at once.
pub(crate) fn spawn_without_sigcont<F, T>(name: &str, body: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: sigemptyset and sigaddset initialize `blocked`, a sigset_t we own;
    // pthread_sigmask reads it and writes the old mask into `previous`, which we own, then
    // reads `previous` back. No memory is shared.
    unsafe {
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        libc::sigaddset(&mut blocked, libc::SIGCONT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut previous);
        let spawned = thread::Builder::new().name(name.into()).spawn(body);
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        spawned
    }
}

/// Gives SIGSEGV its default action back: the process dies of it, even when the signal was
/// sent (`kill -SEGV`) rather than caused by a fault. Rust's runtime handles SIGSEGV to report
/// stack overflows; for a signal that no fault caused its handler only restores the default
/// and returns, so the process survives the first `kill -SEGV`. The price: a stack overflow
/// kills the process without Rust's message.
pub(crate) fn die_of_sigsegv() -> io::Result<()> {
    // SAFETY: `action` is a sigaction we own, zeroed (a valid empty value) with SIG_DFL as its
    // handler; sigaction copies it.
    let reset = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut())
    };
    if reset == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What the `SIGCONT` handler needs, prepared in advance: it may not allocate.
struct Fence {
    /// The generation file.
    path: CString,
    /// This primary's generation.
    generation: u64,
    /// `NAME[PID]: lost primacy to generation `, when the log is stderr.
    message: Option<Vec<u8>>,
}

/// The fence of this process, once it is a primary. Replaced, never freed: a handler may be
/// reading the previous one.
static FENCE: AtomicPtr<Fence> = AtomicPtr::new(std::ptr::null_mut());

/// Fences this primary on resume: when the process is continued after a stop (`SIGCONT`), a
/// handler re-reads the generation file before the interrupted code runs on, and exits the
/// process (status 0) when another primary took over meanwhile, after writing
/// `NAME[PID]: lost primacy to generation G: exiting` to stderr when `stderr_prefix` is given.
///
/// The check before each unit of work cannot see a stop that falls between the check and the
/// work; this one can, because a stopped thread runs the handler before anything else when
/// it resumes. The handler runs on a thread that does not block `SIGCONT`: the calling thread
/// unblocks it here, the library's own threads block it, and the kernel prefers the main
/// thread, so `run` should be called from the main thread (or the program's other threads
/// should block `SIGCONT`).
pub(crate) fn install_fence(
    generation_file: &Path,
    generation: u64,
    stderr_prefix: Option<&str>,
) -> io::Result<()> {
    let path = CString::new(generation_file.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let message =
        stderr_prefix.map(|prefix| format!("{prefix}lost primacy to generation ").into_bytes());
    let fence = Box::into_raw(Box::new(Fence {
        path,
        generation,
        message,
    }));
    FENCE.store(fence, Ordering::Release);
    // SAFETY: sigemptyset and sigaddset initialize `unblocked`, a sigset_t we own;
    // pthread_sigmask only reads it. The calling thread, the one that works, must be able to
    // take SIGCONT even if the process was started with it blocked.
    unsafe {
        let mut unblocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblocked);
        libc::sigaddset(&mut unblocked, libc::SIGCONT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblocked, std::ptr::null_mut());
    }
    // SAFETY: `action` is a sigaction we own, zeroed (a valid empty value) then filled in;
    // sigaction copies it. The handler is async-signal-safe (see `on_sigcont`).
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigcont as extern "C" fn(c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCONT, &action, std::ptr::null_mut())
    };
    if installed == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `SIGCONT` handler: async-signal-safe, so only system calls (open, read, close, write,
/// _exit) and arithmetic on the stack; errno is put back as it was.
extern "C" fn on_sigcont(_signal: c_int) {
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let fence = FENCE.load(Ordering::Acquire);
    if !fence.is_null() {
        // SAFETY: FENCE only ever holds pointers from Box::into_raw that are never freed.
        let fence = unsafe { &*fence };
        if let Some(newer) = read_generation(&fence.path).filter(|&g| g > fence.generation) {
            if let Some(prefix) = &fence.message {
                write_lost_primacy(prefix, newer);
            }
            // SAFETY: _exit ends the process at once, running nothing of ours: nothing can
            // be left half done that another thread would then see.
            unsafe { libc::_exit(0) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The generation at the start of the generation file, or `None` if it cannot be read.
fn read_generation(path: &CStr) -> Option<u64> {
    let mut text = [0u8; 64];
    // SAFETY: `path` is a valid C string; `text` is ours and `read` writes at most its length
    // into it; the descriptor is closed once, by us.
    let length = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let length = libc::read(fd, text.as_mut_ptr().cast(), text.len());
        libc::close(fd);
        usize::try_from(length).ok()?
    };
    parse_leading_number(&text[..length])
}

/// The decimal number `text` starts with (digits up to the first space).
fn parse_leading_number(text: &[u8]) -> Option<u64> {
    let digits = text.iter().take_while(|byte| byte.is_ascii_digit());
    let mut number: u64 = 0;
    let mut any = false;
    for digit in digits {
        number = number
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        any = true;
    }
    any.then_some(number)
}

/// Writes `PREFIX<generation>: exiting\n` to stderr in one `write`, from a buffer on the
/// stack (a prefix too long for it is cut).
fn write_lost_primacy(prefix: &[u8], generation: u64) {
    let mut line = [0u8; 512];
    let mut length = 0;
    let mut push = |bytes: &[u8]| {
        let room = line.len() - length;
        let taken = bytes.len().min(room);
        line[length..length + taken].copy_from_slice(&bytes[..taken]);
        length += taken;
    };
    push(&prefix[..prefix.len().min(400)]);
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = generation;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    push(&digits[start..]);
    push(b": exiting\n");
    // SAFETY: `line[..length]` is initialized memory we own; write reads it.
    unsafe {
        libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_reads_the_generation_first_in_the_file() {
        assert_eq!(parse_leading_number(b"17 4242 running\n"), Some(17));
        assert_eq!(parse_leading_number(b"0 1 running"), Some(0));
        assert_eq!(parse_leading_number(b""), None);
        assert_eq!(parse_leading_number(b"x"), None);
        assert_eq!(parse_leading_number(b"99999999999999999999999 1"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.gen");
        std::fs::write(&path, "12 4242 running\n").expect("write");
        let path = CString::new(path.as_os_str().as_bytes()).expect("path");
        assert_eq!(read_generation(&path), Some(12));
    }
}
