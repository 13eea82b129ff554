//! The few operating-system calls that rustix does not wrap safely. Every `unsafe` block of
//! taskmaster lives here, each with the reason it is sound.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
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

/// Runs `call`, a blocking socket call on a socket with timeout `timeout`, again while a signal
/// handler interrupts it: a call with a timeout is not restarted, SA_RESTART or not
/// (signal(7)), and the daemon handles a SIGCHLD for every child that ends. Gives up with the
/// interruption once `timeout` has passed since the first try.
pub fn restarting<T>(
    timeout: Option<std::time::Duration>,
    mut call: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match call() {
            Err(error)
                if error.kind() == std::io::ErrorKind::Interrupted
                    && timeout.is_none_or(|timeout| started.elapsed() < timeout) => {}
            done => return done,
        }
    }
}

/// Makes every thread allocate from malloc's one main arena. glibc gives each thread that
/// allocates an arena of its own: a configuration read on a helper thread would then live in
/// another arena than the loop's, its garbage out of [`release_free_memory`]'s reach, and each
/// capture thread would hold one mostly empty. The daemon allocates from one thread (the loop)
/// nearly always, so one arena costs no contention.
pub fn use_one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning value; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives the memory malloc holds free back to the system: after a configuration is read, the
/// parse of a large file (several times the size of what is kept) is freed but would stay in
/// the daemon's resident set. A no-op where the C library is not glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes no pointer and
    // is thread-safe (it locks every arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmaps the pages of read-only files mapped now (taskmaster's code and read-only data, the C
/// library's), so that only those used from now on come back: what ran once (the start, a
/// configuration's parse, a request's answer) would stay mapped otherwise, as would its
/// neighbours (the kernel maps a file 64 KiB at a time around each page used). The files stay
/// in the page cache, so a page used again comes back without a read. Only mappings that hold
/// no page of their own (none written: relocations, a debugger's breakpoints; none swapped):
/// all of theirs are the file's and come back the same.
pub fn release_unused_code() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in releasable_mappings(&smaps) {
        // SAFETY: a private, read-only mapping of a file whose every page is the file's
        // (see `releasable_mappings`): MADV_DONTNEED only unmaps them, and they fault back
        // unchanged.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The address ranges, among the mappings `smaps` lists, that [`release_unused_code`] may
/// unmap: private, read-only mappings of a file with no page anonymous (written, copied from
/// the file) or swapped out.
fn releasable_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut releasable = Vec::new();
    // The mapping whose fields follow, while it may still be released.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            // A header: `start-end perms offset dev inode [path]`.
            releasable.extend(current.take());
            let permissions = fields.next().unwrap_or("");
            let is_file = fields.nth(3).is_some_and(|path| path.starts_with('/'));
            if is_file && permissions.starts_with("r-") && permissions.ends_with('p') {
                current = usize::from_str_radix(start, 16)
                    .ok()
                    .zip(usize::from_str_radix(end, 16).ok());
            }
        } else if matches!(first, "Anonymous:" | "Swap:") && fields.next() != Some("0") {
            current = None;
        }
    }
    releasable.extend(current);
    releasable
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

/// Resets every signal taskmaster inherited as ignored to its default disposition, so that
/// children start with default dispositions: exec resets handled signals but keeps ignored
/// ones. That covers a signal ignored under `nohup` and glibc's internal signals 32 and 33,
/// which a taskmaster started by posix_spawn (from any multi-threaded program) gets ignored.
/// SIGPIPE stays ignored in taskmaster (Rust's choice, so that a closed pipe is an error rather
/// than death); std resets it in every child. Done once here rather than in each child: that
/// would cost 64 system calls per spawn.
/// Ignores SIGXFSZ in taskmaster: a log file over the file-size limit (RLIMIT_FSIZE, a quota)
/// must make the write fail with EFBIG, which the capture reports and retries, rather than kill
/// the supervisor. Children get it back at its default (posix_spawn sets every signal to its
/// default; the fork path resets it in [`setup_child`]).
pub fn ignore_file_size_signal() {
    // SAFETY: signal() with SIG_IGN installs no handler code; it changes one disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

pub fn reset_ignored_signals() {
    for number in 1..=libc::SIGRTMAX() {
        if number == libc::SIGKILL || number == libc::SIGSTOP || number == libc::SIGPIPE {
            continue;
        }
        let mut current = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction with a null new action only writes the current one into
        // `current`, a struct of the kernel's layout that we own.
        let read = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                number,
                std::ptr::null::<KernelSigaction>(),
                &mut current as *mut KernelSigaction,
                std::mem::size_of::<u64>(),
            )
        };
        if read != 0 || current.handler != libc::SIG_IGN {
            continue;
        }
        let default = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: installing SIG_DFL registers no handler code; this runs at start-up,
        // before any thread or child exists.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                number,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// How the child of the fork path is set up between fork and exec.
pub struct ChildSetup {
    /// The umask to set, if any.
    pub umask: Option<u32>,
    /// Set this variable to the child's own pid (`WATCHDOG_PID`), which only the child knows.
    pub own_pid_variable: Option<&'static str>,
    /// The user to run as, if any.
    pub user: Option<Ids>,
    /// Resource limits to set (`rlimits`), before the switch to the user: raising a hard
    /// limit needs root.
    pub limits: Vec<(rustix::process::Resource, rustix::process::Rlimit)>,
}

/// Who a process runs as: what a switch to a user sets, in the order it sets them.
#[derive(Debug, Clone)]
pub struct Ids {
    /// Every group of the user, its primary one included (what `initgroups` sets).
    pub groups: Vec<u32>,
    pub gid: u32,
    pub uid: u32,
}

/// What the child of the fork path says besides the errno std hands back: whether the
/// error is its switch to its user's ids rather than its exec.
pub struct SetupReport {
    /// The read end of a pipe the child writes a byte to when its switch fails.
    switch_failed: Option<OwnedFd>,
}

impl SetupReport {
    /// Whether the child failed to switch to its user; ask once the spawn has failed (the
    /// child wrote before it reported the error, so nothing waits).
    pub fn switch_failed(&self) -> bool {
        let mut byte = [0u8; 1];
        self.switch_failed
            .as_ref()
            .is_some_and(|pipe| rustix::io::read(pipe, &mut byte) == Ok(1))
    }
}

/// Makes `command` set up its child between fork and exec: an empty signal mask (exec keeps
/// the mask, and std does not clear it on its fork path), the umask if one is given, the
/// user's groups, group and uid if one is given (in that order: the groups and the group can
/// only be set while still root), and, for `own_pid_variable`, an environment that names the
/// child's own pid. (Dispositions need nothing here: see [`reset_ignored_signals`].)
///
/// For the pid variable the child execs by itself, with `argv` and `env` prepared here before
/// the fork: std's own exec would use an environment fixed before the pid was known.
///
/// The ids are set with the kernel's calls, which change only the calling thread: the child
/// of a fork has one thread. (glibc's setuid would signal every thread it knew of in the
/// parent, with locks that may have been held at the fork.)
pub fn setup_child(
    command: &mut Command,
    setup: &ChildSetup,
    argv: &[String],
    env: &[(OsString, OsString)],
) -> std::io::Result<SetupReport> {
    let mode = setup.umask.map(rustix::fs::Mode::from_bits_truncate);
    let limits = setup.limits.clone();
    let mut own_exec = match setup.own_pid_variable {
        Some(variable) => Some(OwnExec::new(argv, env, variable)?),
        None => None,
    };
    let mut report = SetupReport {
        switch_failed: None,
    };
    let switch = match &setup.user {
        Some(ids) => {
            use rustix::pipe::PipeFlags;
            let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            report.switch_failed = Some(read);
            let groups: Vec<rustix::process::Gid> = ids
                .groups
                .iter()
                .map(|&gid| rustix::process::Gid::from_raw_unchecked(gid))
                .collect();
            let gid = rustix::process::Gid::from_raw_unchecked(ids.gid);
            let uid = rustix::process::Uid::from_raw_unchecked(ids.uid);
            Some((groups, gid, uid, write))
        }
        None => None,
    };
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes the rt_sigprocmask, umask, signal,
    // setrlimit (the limits were prepared before the fork), setgroups, setgid, setuid, write and getpid system calls (the ids and the group list
    // were prepared before the fork), writes digits into a buffer it owns (the child's copy),
    // and calls execvpe, which searches PATH with a buffer on its stack. It allocates nothing
    // and takes no lock.
    unsafe {
        command.pre_exec(move || {
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
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            for (resource, limit) in &limits {
                rustix::process::setrlimit(*resource, *limit)?;
            }
            if let Some((groups, gid, uid, failed)) = &switch {
                use rustix::thread::{set_thread_gid, set_thread_groups, set_thread_uid};
                let switched = set_thread_groups(groups)
                    .and_then(|()| set_thread_gid(*gid))
                    .and_then(|()| set_thread_uid(*uid));
                if let Err(errno) = switched {
                    let _ = rustix::io::write(failed, b"u");
                    return Err(errno.into());
                }
            }
            if let Some(exec) = own_exec.as_mut() {
                exec.write_pid(libc::getpid().unsigned_abs());
                libc::execvpe(
                    exec.argv_ptrs[0],
                    exec.argv_ptrs.as_ptr(),
                    exec.env_ptrs.as_ptr(),
                );
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(report)
}

/// Switches this whole process, every thread, to `ids`: its groups, its group, its uid, in
/// this order (glibc applies each call to every thread). For taskmaster's own `user`.
pub fn become_user(ids: &Ids) -> std::io::Result<()> {
    let groups: Vec<libc::gid_t> = ids.groups.clone();
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    };
    // SAFETY: setgroups reads `groups.len()` group ids from the vector, which outlives the
    // call; setgid and setuid take integers and touch no memory of ours.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()))?;
        check(libc::setgid(ids.gid))?;
        check(libc::setuid(ids.uid))
    }
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// A command line and environment laid out as exec takes them, with room in one variable for
/// a pid written after the fork.
struct OwnExec {
    /// The NUL-terminated strings the pointers point into; never resized after construction.
    _argv: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    /// The entry of `env` whose value is the pid, and where its value starts.
    pid_slot: (usize, usize),
}

// SAFETY: the raw pointers point into the buffers the struct owns; they are only used in the
// forked child, which has its own copy of the memory.
unsafe impl Send for OwnExec {}
unsafe impl Sync for OwnExec {}

/// Digits of the largest pid (pid_max is at most 2^22) with room to spare.
const PID_DIGITS: usize = 10;

impl OwnExec {
    fn new(
        argv: &[String],
        env: &[(OsString, OsString)],
        pid_variable: &str,
    ) -> std::io::Result<OwnExec> {
        let invalid = || std::io::Error::from_raw_os_error(libc::EINVAL);
        let c_string = |bytes: &[u8]| -> std::io::Result<Vec<u8>> {
            if bytes.contains(&0) {
                return Err(invalid());
            }
            let mut owned = bytes.to_vec();
            owned.push(0);
            Ok(owned)
        };
        let argv: Vec<Vec<u8>> = argv
            .iter()
            .map(|arg| c_string(arg.as_bytes()))
            .collect::<Result<_, _>>()?;
        if argv.is_empty() {
            return Err(invalid());
        }
        let mut env: Vec<Vec<u8>> = env
            .iter()
            .filter(|(key, _)| key.as_bytes() != pid_variable.as_bytes())
            .map(|(key, value)| {
                let mut entry = key.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                c_string(&entry)
            })
            .collect::<Result<_, _>>()?;
        let mut slot = format!("{pid_variable}=").into_bytes();
        let value_at = slot.len();
        slot.extend([0; PID_DIGITS + 1]);
        env.push(slot);
        let pointers = |strings: &Vec<Vec<u8>>| -> Vec<*const libc::c_char> {
            strings
                .iter()
                .map(|s| s.as_ptr().cast::<libc::c_char>())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(OwnExec {
            argv_ptrs: pointers(&argv),
            env_ptrs: pointers(&env),
            pid_slot: (env.len() - 1, value_at),
            _argv: argv,
            env,
        })
    }

    /// Writes `pid` in decimal into the pid variable's value, NUL-terminated, in place.
    fn write_pid(&mut self, pid: u32) {
        let mut digits = [0u8; PID_DIGITS];
        let mut n = pid;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 || len == PID_DIGITS {
                break;
            }
        }
        let (entry, at) = self.pid_slot;
        let value = &mut self.env[entry][at..];
        for (i, digit) in digits[..len].iter().rev().enumerate() {
            value[i] = *digit;
        }
        value[len] = 0;
    }
}

/// What [`posix_spawn`] starts: a command line, its whole environment, its working directory,
/// and the descriptors that become its stdin, stdout and stderr.
pub struct Launch<'a> {
    pub argv: &'a [String],
    pub env: &'a [(OsString, OsString)],
    pub cwd: Option<&'a Path>,
    pub stdio: [BorrowedFd<'a>; 3],
}

/// Starts a child with posix_spawn (glibc clones with CLONE_VFORK: no copy of taskmaster's
/// memory, about a quarter faster than fork at mass start), in its own process group, with an
/// empty signal mask and every signal at its default disposition. The program is looked up in
/// taskmaster's PATH, as supervisord does. Exec and chdir failures come back as the error.
pub fn posix_spawn(launch: &Launch<'_>) -> std::io::Result<u32> {
    let invalid = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
    let argv: Vec<CString> = launch
        .argv
        .iter()
        .map(|arg| CString::new(arg.as_bytes()).map_err(invalid))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = launch
        .env
        .iter()
        .map(|(key, value)| {
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            CString::new(entry).map_err(invalid)
        })
        .collect::<Result<_, _>>()?;
    let cwd = launch
        .cwd
        .map(|dir| CString::new(dir.as_os_str().as_bytes()).map_err(invalid))
        .transpose()?;
    let program = argv
        .first()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let argv_ptrs: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_ptrs: Vec<*mut libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();

    let attributes = SpawnAttributes::new()?;
    let mut actions = FileActions::new()?;
    for (target, fd) in (0..).zip(launch.stdio.iter()) {
        actions.dup2(*fd, target)?;
    }
    if let Some(cwd) = &cwd {
        actions.chdir(cwd)?;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: `program`, and `argv_ptrs` and `envp_ptrs`
    // (null-terminated arrays of pointers into CStrings that outlive the call); `actions` and
    // `attributes` are initialized.
    check(unsafe {
        libc::posix_spawnp(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attributes.0,
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        )
    })?;
    Ok(pid.unsigned_abs())
}

/// A posix_spawn error code as an io::Error.
fn check(code: libc::c_int) -> std::io::Result<()> {
    match code {
        0 => Ok(()),
        code => Err(std::io::Error::from_raw_os_error(code)),
    }
}

/// posix_spawn's attributes: own process group, empty mask, every signal to its default.
struct SpawnAttributes(libc::posix_spawnattr_t);

impl SpawnAttributes {
    fn new() -> std::io::Result<SpawnAttributes> {
        // SAFETY: posix_spawnattr_init initializes the zeroed struct we own; on success the
        // guard destroys it on drop. The sigset_t values are ours, initialized by sigemptyset
        // and sigfillset before use.
        unsafe {
            let mut attributes = SpawnAttributes(std::mem::zeroed());
            check(libc::posix_spawnattr_init(&mut attributes.0))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(
                &mut attributes.0,
                flags as libc::c_short,
            ))?;
            check(libc::posix_spawnattr_setpgroup(&mut attributes.0, 0))?;
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::posix_spawnattr_setsigmask(&mut attributes.0, &empty))?;
            let mut every: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut every);
            // glibc's sigfillset leaves out its internal signals 32 and 33, and its posix_spawn
            // then sets them to SIG_IGN in the child, which exec keeps. Their bits are set by
            // hand: in the kernel's (and glibc's) layout, signal n is bit n-1 of the first word.
            let words = (&mut every as *mut libc::sigset_t).cast::<u64>();
            *words |= (1 << 31) | (1 << 32);
            check(libc::posix_spawnattr_setsigdefault(
                &mut attributes.0,
                &every,
            ))?;
            Ok(attributes)
        }
    }
}

impl Drop for SpawnAttributes {
    fn drop(&mut self) {
        // SAFETY: initialized in `new` (a guard exists only after a successful init).
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> std::io::Result<FileActions> {
        // SAFETY: initializes the zeroed struct we own; the guard destroys it on drop.
        unsafe {
            let mut actions = FileActions(std::mem::zeroed());
            check(libc::posix_spawn_file_actions_init(&mut actions.0))?;
            Ok(actions)
        }
    }
}

impl FileActions {
    /// In the child: `target` becomes a copy of `fd` (and loses close-on-exec).
    fn dup2(&mut self, fd: BorrowedFd<'_>, target: libc::c_int) -> std::io::Result<()> {
        // SAFETY: `self.0` is initialized; glibc records the two numbers.
        check(unsafe {
            libc::posix_spawn_file_actions_adddup2(&mut self.0, fd.as_raw_fd(), target)
        })
    }

    /// In the child: change to `dir` before exec.
    fn chdir(&mut self, dir: &CString) -> std::io::Result<()> {
        // SAFETY: `self.0` is initialized; glibc copies the path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut self.0, dir.as_ptr()) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
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

/// Whether any process (a zombie not yet reaped included) is left in process group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill takes two integers and touches no memory of ours; signal 0 only checks.
    if unsafe { libc::kill(-pgid, 0) } == 0 {
        return true;
    }
    // EPERM: there are processes, only not ours to signal.
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn send(target: i32, signal: Signal) -> std::io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(target, signal.number()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What `waitpid` reported about a child.
pub enum ChildChange {
    /// It ended, and is reaped.
    Exited(u32, ExitStatus),
    /// A signal stopped it (SIGSTOP, SIGTSTP...): paused, not dead.
    Paused(u32, Signal),
    /// SIGCONT continued it.
    Resumed(u32),
}

/// The next change of any child, if any, without blocking: `waitpid(-1, WNOHANG | WUNTRACED |
/// WCONTINUED)`. An ended child is reaped; as a subreaper, that includes orphaned grandchildren.
pub fn next_child_change() -> Option<ChildChange> {
    loop {
        let mut status: libc::c_int = 0;
        let options = libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED;
        // SAFETY: waitpid writes the status into `status`, an integer we own.
        let pid = unsafe { libc::waitpid(-1, &mut status, options) };
        if pid > 0 {
            let pid = pid.unsigned_abs();
            return Some(if libc::WIFSTOPPED(status) {
                let signal = Signal::from_number(libc::WSTOPSIG(status)).unwrap_or(Signal::STOP);
                ChildChange::Paused(pid, signal)
            } else if libc::WIFCONTINUED(status) {
                ChildChange::Resumed(pid)
            } else {
                ChildChange::Exited(pid, decode_wait_status(status))
            });
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None; // 0: children remain, none changed; -1 ECHILD: no children at all
    }
}

/// Decodes a wait status: from `waitpid`, from `/proc/PID/stat` or from `PIDFD_INFO_EXIT`.
pub fn decode_wait_status(status: libc::c_int) -> ExitStatus {
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

/// A file watched for writes (inotify), to wait on from the event loop without polling.
pub struct FileWatch {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl FileWatch {
    /// Watches `file`: its writes, and its rename or deletion (a rotation); and the folder of
    /// `path` (its name, or the name it is followed by), for the file that takes its place.
    /// The file is watched through its descriptor, so the watch is on the very file held,
    /// whatever names it has by then. Must be called on a tokio runtime.
    pub fn new(file: &std::fs::File, path: &Path) -> std::io::Result<FileWatch> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let own = inotify::WatchFlags::MODIFY
            | inotify::WatchFlags::MOVE_SELF
            | inotify::WatchFlags::DELETE_SELF
            | inotify::WatchFlags::ATTRIB;
        let held = format!("/proc/self/fd/{}", file.as_raw_fd());
        // Without /proc, by its name: the file there now, most likely the one held.
        inotify::add_watch(&fd, held.as_str(), own)
            .or_else(|_| inotify::add_watch(&fd, path, own))?;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        // Without it a follower still sees writes; it only learns of a new file later.
        let _ = inotify::add_watch(
            &fd,
            folder,
            inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
        );
        // SAFETY: `fd` is an open descriptor that the AsyncFd owns from here on, so it stays
        // open and the same for the AsyncFd's whole life.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(FileWatch { fd })
    }

    /// Waits until the file has been written to since the last call.
    pub async fn changed(&self) -> std::io::Result<()> {
        let mut ready = self.fd.readable().await?;
        // Read and forget every pending event: all they say is "the file changed".
        let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = rustix::fs::inotify::Reader::new(self.fd.get_ref(), &mut buffer);
        while reader.next().is_ok() {}
        ready.clear_ready();
        Ok(())
    }
}

/// What one `recvmsg` on a unix datagram socket received.
pub struct ReceivedDatagram {
    /// How many bytes of payload were written into the caller's buffer.
    pub length: usize,
    /// The datagram was longer than the buffer (MSG_TRUNC): the rest of it is lost.
    pub truncated: bool,
    /// Some ancillary data did not fit (MSG_CTRUNC). The kernel closed the descriptors that did
    /// not fit; those that did are in `fds`.
    pub control_truncated: bool,
    /// The sender's credentials (SCM_CREDENTIALS), checked by the kernel.
    pub credentials: Option<libc::ucred>,
    /// The descriptors passed with the datagram (SCM_RIGHTS), close-on-exec, now ours.
    pub fds: Vec<OwnedFd>,
}

/// The most descriptors one datagram can carry (the kernel's SCM_MAX_FD).
pub const MAX_FDS_PER_DATAGRAM: u32 = 253;

/// `recvmsg` on a unix datagram socket, with room for the sender's credentials and for up to
/// `max_fds` descriptors. On a non-blocking socket with nothing queued: `WouldBlock`.
///
/// Not rustix's `recvmsg`: its SCM_CREDENTIALS reading keeps the pid in a non-zero type, while
/// the kernel sends pid 0 for a sender in a pid namespace this process cannot see (a process
/// outside taskmaster's container writing to a bind-mounted socket), which would be undefined
/// behaviour.
pub fn recv_with_ancillary(
    socket: BorrowedFd<'_>,
    payload: &mut [u8],
    max_fds: u32,
) -> std::io::Result<ReceivedDatagram> {
    let fds_room = max_fds.min(MAX_FDS_PER_DATAGRAM) * std::mem::size_of::<libc::c_int>() as u32;
    let credentials_room = std::mem::size_of::<libc::ucred>() as u32;
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let control_room =
        unsafe { libc::CMSG_SPACE(credentials_room) + libc::CMSG_SPACE(fds_room) } as usize;
    // In u64s: aligned for the cmsghdr the kernel writes at its start, as this asserts.
    const _: () = assert!(std::mem::align_of::<u64>() >= std::mem::align_of::<libc::cmsghdr>());
    let mut control = vec![0u64; control_room.div_ceil(8)];

    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is integers and pointers (and, on some libcs, padding): all zeroes is a
    // valid value, with null pointers.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = control_room as _;
    let received = loop {
        // SAFETY: `header` points at `iov` (which points at `payload`) and at `control`, with
        // their true lengths; all three outlive the call, and the kernel writes only within
        // those lengths.
        let received =
            unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
        if received >= 0 {
            break received.unsigned_abs();
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    let (credentials, fds) = take_control_messages(&header);
    Ok(ReceivedDatagram {
        length: received.min(payload.len()),
        truncated: header.msg_flags & libc::MSG_TRUNC != 0,
        control_truncated: header.msg_flags & libc::MSG_CTRUNC != 0,
        credentials,
        fds,
    })
}

/// The credentials and descriptors among the control messages that `recvmsg` just wrote into
/// `header`'s control buffer. Every descriptor is taken into an `OwnedFd`, so none can leak.
fn take_control_messages(header: &libc::msghdr) -> (Option<libc::ucred>, Vec<OwnedFd>) {
    use std::os::fd::FromRawFd;
    let mut credentials = None;
    let mut fds = Vec::new();
    let control_end = (header.msg_control as usize).saturating_add(header.msg_controllen as _);
    // SAFETY: `header` is the msghdr recvmsg filled in: msg_control points at its control
    // buffer and msg_controllen is the length the kernel wrote. CMSG_FIRSTHDR and CMSG_NXTHDR
    // return only headers that lie wholly within that length (or null).
    let mut message = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !message.is_null() {
        // SAFETY: `message` is a whole cmsghdr inside the control data (see above).
        let (level, kind, length) = unsafe {
            (
                (*message).cmsg_level,
                (*message).cmsg_type,
                (*message).cmsg_len as usize,
            )
        };
        // SAFETY: CMSG_DATA and CMSG_LEN are pointer and integer arithmetic.
        let (data, data_offset) = unsafe { (libc::CMSG_DATA(message), libc::CMSG_LEN(0) as usize) };
        // Never read past what the kernel wrote, whatever cmsg_len says.
        let data_length = length
            .saturating_sub(data_offset)
            .min(control_end.saturating_sub(data as usize));
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            let count = data_length / std::mem::size_of::<libc::c_int>();
            for index in 0..count {
                // SAFETY: `index` is within the data (count whole ints fit in data_length); the
                // read is unaligned-safe. Each descriptor was just installed in this process by
                // the kernel for this message, and nothing else owns it.
                let fd = unsafe {
                    let raw = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(index));
                    OwnedFd::from_raw_fd(raw)
                };
                fds.push(fd);
            }
        } else if level == libc::SOL_SOCKET
            && kind == libc::SCM_CREDENTIALS
            && data_length >= std::mem::size_of::<libc::ucred>()
        {
            // SAFETY: a whole ucred (three integers, any value valid) lies in the data; the read
            // is unaligned-safe.
            credentials = Some(unsafe { std::ptr::read_unaligned(data.cast::<libc::ucred>()) });
        }
        // SAFETY: as for CMSG_FIRSTHDR above; `message` is a header within the control data.
        message = unsafe { libc::CMSG_NXTHDR(header, message) };
    }
    (credentials, fds)
}

/// The first published layout of the kernel's `struct pidfd_info` (`PIDFD_INFO_SIZE_VER0`,
/// 64 bytes), with `exit_code` where Linux 6.15 put it (it was spare until then). Later fields
/// (the core-dump details) are left out: the kernel copies only as much as the size we pass.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);

/// `PIDFD_INFO_PID`: `pid` is filled (always, while the process is unreaped).
const PIDFD_INFO_PID: u64 = 1 << 0;
/// `PIDFD_INFO_EXIT`: ask for the exit status of a reaped process.
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)` for our 64-byte struct (read and
/// write direction 3 in bits 30-31, size in bits 16-29, type 0xFF, number 11).
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// What `PIDFD_GET_INFO` tells of the process behind a pidfd.
pub struct PidfdExitInfo {
    /// Its pid, while it is unreaped (running, or a zombie).
    pub pid: Option<u32>,
    /// Its wait status, once it is reaped (Linux 6.15 or later keeps it for the pidfd).
    pub exit_status: Option<i32>,
}

/// Asks the kernel about the process behind `pidfd` with `ioctl(PIDFD_GET_INFO)`, requesting
/// `PIDFD_INFO_EXIT`. A zombie has a pid but no exit status yet: the status is kept with the
/// pidfd only when the process is reaped. Errors: `ESRCH` for a reaped process on a kernel
/// that kept no status (6.13, 6.14); `ENOTTY` or `EINVAL` on a kernel without the ioctl.
pub fn pidfd_exit_info(pidfd: BorrowedFd<'_>) -> std::io::Result<PidfdExitInfo> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: PIDFD_GET_INFO reads `mask` from, and writes at most its encoded size (64
    // bytes, the size of `info`) into, the struct we pass, which we own and which outlives the
    // call; the descriptor is borrowed, so open for the call.
    let rc = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            &mut info as *mut PidfdInfo,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PidfdExitInfo {
        pid: (info.mask & PIDFD_INFO_PID != 0 && info.pid != 0).then_some(info.pid),
        exit_status: (info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code),
    })
}

/// Whether the process behind `pidfd` is still unreaped (running, or a zombie): a pidfd
/// signal 0, which checks without sending anything. While it is unreaped its pid cannot be
/// reused, so `/proc/PID` is that process.
pub fn pidfd_is_unreaped(pidfd: BorrowedFd<'_>) -> std::io::Result<bool> {
    // SAFETY: as in `pidfd_send_signal`: a borrowed descriptor, signal 0 (existence and
    // permission check only), a null siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        // It exists; we may just not signal it (another user's process).
        Some(libc::EPERM) => Ok(true),
        _ => Err(error),
    }
}

/// Waits until `pidfd` polls readable: its process has ended (a zombie, or reaped). Must run on
/// a tokio runtime. Waits on a duplicate of the descriptor, registered for this wait alone:
/// epoll keys a registration by descriptor number, so concurrent waits each need their own.
pub async fn pidfd_readable(pidfd: BorrowedFd<'_>) -> std::io::Result<()> {
    let watched = pidfd.try_clone_to_owned()?;
    // SAFETY: `watched` is a descriptor of our own that the AsyncFd owns from here on, so it
    // stays open and the same for the AsyncFd's whole life.
    let watched = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(watched, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)?;
    // Once readable, a pidfd stays readable: nothing to clear.
    let _ready = watched.readable().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only private mappings of files whose every page is the file's are released: not one
    /// with relocated (anonymous) or swapped pages, nor a writable, shared or anonymous one.
    #[test]
    fn only_mappings_holding_nothing_of_their_own_are_released() {
        let smaps = "\
55d000000000-55d000100000 r--p 00000000 08:01 42 /usr/bin/taskmaster
Rss:                 400 kB
Anonymous:             0 kB
Swap:                  0 kB
55d000100000-55d000900000 r-xp 00100000 08:01 42 /usr/bin/taskmaster
Anonymous:             0 kB
Swap:                  0 kB
55d000900000-55d000950000 r--p 00900000 08:01 42 /usr/bin/taskmaster
Anonymous:           320 kB
Swap:                  0 kB
55d000950000-55d000960000 rw-p 00950000 08:01 42 /usr/bin/taskmaster
Anonymous:            16 kB
7f0000000000-7f0000001000 r--p 00000000 08:01 43 /usr/lib/libc.so.6
Anonymous:             0 kB
Swap:                  4 kB
7f0000100000-7f0000200000 r--s 00000000 08:01 44 /tmp/shared
Anonymous:             0 kB
7f0000300000-7f0000400000 rw-p 00000000 00:00 0 [heap]
Anonymous:          1024 kB
";
        let released = releasable_mappings(smaps);
        assert_eq!(
            released,
            [
                (0x55d0_0000_0000, 0x55d0_0010_0000),
                (0x55d0_0010_0000, 0x55d0_0090_0000)
            ]
        );
    }

    /// This very process goes on after a release: code, read-only data and relocated
    /// pointers (a trait object's vtable, a formatted string) all still work.
    #[test]
    fn a_process_runs_on_after_its_unused_code_is_released() {
        release_unused_code();
        let shapes: Vec<Box<dyn std::fmt::Display>> = vec![Box::new(7), Box::new("seven")];
        let said: Vec<String> = shapes.iter().map(|shape| format!("<{shape}>")).collect();
        assert_eq!(said, ["<7>", "<seven>"]);
        release_unused_code();
        assert_eq!(i64::from_str_radix("-7f", 16), Ok(-127));
    }
}
