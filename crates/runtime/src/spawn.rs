//! Starting a child the way a program's settings say.
//!
//! Everything a child needs is prepared here once (its files, its environment, a check of its
//! working directory), then one of two launchers starts it:
//! - `sys::posix_spawn`, for almost every program: vfork-class cost, no copy of taskmaster.
//! - std's `Command` with a pre-exec step, for a program with a `umask`, which posix_spawn
//!   cannot set, a `watchdog`, whose `WATCHDOG_PID` only the child knows, or a `user`, whose
//!   ids posix_spawn cannot set. std reports exec and chdir failures back through its
//!   close-on-exec pipe; a failed switch to the user is told apart by a pipe of our own
//!   ([`sys::SetupReport`]).
//!
//! Both give the child its own process group, stdin from /dev/null, the `stdin` file or a
//! pipe, an empty signal mask and default signal dispositions. Its files and pipes are opened
//! by taskmaster, before any switch to the program's user.
//!
//! Hooks and command health checks are children too (`/bin/sh -c`), started by
//! [`spawn_shell`] with the program's environment (and as its user), so that the one reaper
//! sees them end.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use taskmaster_config::{os_reason, Stdin, Stream, User};
use taskmaster_core::ProgramSpec;

use crate::capture::{Destination, Pipe, Sinks};
use crate::sys;

/// What every child is given besides its program's settings.
pub struct ChildContext {
    /// The RLIMIT_NOFILE children get: the one taskmaster had before it raised its own
    /// ([`crate::startup::raise_own_nofile`]); `None` when it is taskmaster's own.
    pub children_nofile: Option<rustix::process::Rlimit>,
    /// taskmaster's own environment, which each program's `env` is merged over.
    pub base_env: Vec<(OsString, OsString)>,
    /// The sd_notify socket (`NOTIFY_SOCKET`).
    pub notify_socket: PathBuf,
    /// The control socket (`TASKMASTER_SOCKET`), for programs that drive taskmaster.
    pub control_socket: PathBuf,
}

/// A started child, and its output pipes for the caller to drain ([`crate::capture`]): each
/// pipe's read end, its stream, and where it goes.
pub struct Spawned {
    pub pid: u32,
    /// The write end of its stdin pipe (`stdin: pipe`).
    pub stdin: Option<OwnedFd>,
    pub captures: Vec<(OwnedFd, Stream, Destination)>,
}

/// A child ready to start: its descriptors open and its environment made. Launching it needs
/// nothing of the daemon's, so children prepared in turn can be launched on several threads
/// at once ([`launch_all`]).
pub struct Prepared<'a> {
    spec: &'a ProgramSpec,
    /// A FastCGI program's listening socket, its stdin.
    socket: Option<BorrowedFd<'a>>,
    stdin: Input,
    stdout: Output,
    stderr: Output,
    env: Vec<(OsString, OsString)>,
    setup: sys::ChildSetup,
}

/// Prepares one child for process `name` (`web`, or `workers:workers_00`) of program `spec`;
/// a FastCGI program's listening `socket` is its stdin. The error text says what failed, for
/// the process's status and the event log.
pub fn prepare<'a>(
    name: &str,
    spec: &'a ProgramSpec,
    socket: Option<BorrowedFd<'a>>,
    context: &ChildContext,
    sinks: &mut Sinks,
) -> Result<Prepared<'a>, String> {
    if spec.argv.is_empty() {
        return Err("cmd is empty".to_string());
    }
    if let Some(dir) = &spec.workingdir {
        // Checked here because a failed chdir and a failed exec report the same errors.
        check_directory(dir)
            .map_err(|e| format!("workingdir {}: {}", dir.display(), os_reason(&e)))?;
    }
    let stdin = input(&spec.stdin)?;
    let stdout = output(name, spec, Stream::Stdout, sinks)?;
    let stderr = output(name, spec, Stream::Stderr, sinks)?;
    let mut env = environment(name, spec, context);
    if let Some(period) = spec.watchdog {
        env.push((
            "WATCHDOG_USEC".into(),
            period.as_micros().to_string().into(),
        ));
    }
    let setup = sys::ChildSetup {
        umask: spec.umask,
        own_pid_variable: spec.watchdog.map(|_| "WATCHDOG_PID"),
        user: switch_to(spec),
        limits: limits_of(spec, context),
    };
    Ok(Prepared {
        spec,
        socket,
        stdin,
        stdout,
        stderr,
        env,
        setup,
    })
}

impl Prepared<'_> {
    /// Starts the child.
    pub fn launch(self) -> Result<Spawned, String> {
        let launch = sys::Launch {
            argv: &self.spec.argv,
            env: &self.env,
            cwd: self.spec.workingdir.as_deref(),
            stdio: [
                self.socket.unwrap_or(self.stdin.child_end()),
                self.stdout.child_end(),
                self.stderr.child_end(),
            ],
        };
        let program = self.spec.argv.first().map_or("", String::as_str);
        let pid = launch_with(&launch, &self.setup).map_err(|e| e.describe(self.spec, program))?;
        Ok(Spawned {
            pid,
            stdin: self.stdin.into_writer(),
            captures: [self.stdout, self.stderr]
                .into_iter()
                .filter_map(Output::into_capture)
                .collect(),
        })
    }
}

/// How many threads launch a batch of children: a launch waits for the kernel to load the
/// child's program (posix_spawn returns after the exec), so two launchers overlap those
/// waits (10,000 programs RUNNING in a median of 8.36 s instead of 8.99 s: README).
const LAUNCH_THREADS: usize = 2;

/// Launches `children` (or passes on why one could not be prepared), the calling thread and
/// one more taking them in order; the results are in the order of `children`.
pub fn launch_all(children: Vec<Result<Prepared<'_>, String>>) -> Vec<Result<Spawned, String>> {
    if children.len() < 2 {
        return children.into_iter().map(|child| child?.launch()).collect();
    }
    let count = children.len();
    let next = std::sync::Mutex::new(children.into_iter().enumerate());
    let take_turns = || {
        let mut launched = Vec::new();
        loop {
            // A poisoned lock means the other launcher panicked; its children are reported
            // below as not started.
            let Some((index, child)) = next.lock().ok().and_then(|mut next| next.next()) else {
                return launched;
            };
            launched.push((index, child.and_then(Prepared::launch)));
        }
    };
    let mut results: Vec<Option<Result<Spawned, String>>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        // Without a helper (no thread to be had), the calling thread launches them all.
        let helpers: Vec<_> = (1..LAUNCH_THREADS)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("launch".to_string())
                    .spawn_scoped(scope, take_turns)
                    .ok()
            })
            .collect();
        let mut all = take_turns();
        for helper in helpers {
            all.extend(helper.join().unwrap_or_default());
        }
        for (index, result) in all {
            results[index] = Some(result);
        }
    });
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err("the launching thread failed".to_string())))
        .collect()
}

/// Starts `/bin/sh -c command` for process `name` of program `spec`, with the program's
/// environment plus `extra_env`, in the program's working directory, in its own process
/// group. `to_logs` sends its output to the program's log files; otherwise it is discarded.
pub fn spawn_shell(
    name: &str,
    spec: &ProgramSpec,
    context: &ChildContext,
    command: &str,
    extra_env: &[(String, String)],
    to_logs: bool,
    sinks: &mut Sinks,
) -> Result<Spawned, String> {
    let argv = ["/bin/sh".to_string(), "-c".to_string(), command.to_string()];
    let mut env = environment(name, spec, context);
    env.extend(extra_env.iter().map(|(k, v)| (k.into(), v.into())));
    let mut output_of = |stream| match to_logs {
        true => output(name, spec, stream, sinks),
        false => discard(),
    };
    let stdout = output_of(Stream::Stdout)?;
    let stderr = output_of(Stream::Stderr)?;
    let stdin = input(&Stdin::Null)?;
    let cwd = spec
        .workingdir
        .as_deref()
        .filter(|dir| check_directory(dir).is_ok());
    let setup = sys::ChildSetup {
        umask: None,
        own_pid_variable: None,
        user: switch_to(spec),
        limits: limits_of(spec, context),
    };
    let launch = sys::Launch {
        argv: &argv,
        env: &env,
        cwd,
        stdio: [stdin.child_end(), stdout.child_end(), stderr.child_end()],
    };
    let pid = launch_with(&launch, &setup).map_err(|e| e.describe(spec, "/bin/sh"))?;
    Ok(Spawned {
        pid,
        stdin: None,
        captures: [stdout, stderr]
            .into_iter()
            .filter_map(Output::into_capture)
            .collect(),
    })
}

/// The limits a child of `spec` gets, as setrlimit takes them, in order: RLIMIT_NOFILE as
/// taskmaster had it before raising its own, then the program's `rlimits`.
fn limits_of(
    spec: &ProgramSpec,
    context: &ChildContext,
) -> Vec<(rustix::process::Resource, rustix::process::Rlimit)> {
    use rustix::process::Resource as R;
    use taskmaster_config::Resource;
    let inherited = context.children_nofile.map(|limit| (R::Nofile, limit));
    inherited
        .into_iter()
        .chain(spec.rlimits.iter().map(|(resource, limit)| {
            let resource = match resource {
                Resource::As => R::As,
                Resource::Core => R::Core,
                Resource::Cpu => R::Cpu,
                Resource::Data => R::Data,
                Resource::Fsize => R::Fsize,
                Resource::Locks => R::Locks,
                Resource::Memlock => R::Memlock,
                Resource::Msgqueue => R::Msgqueue,
                Resource::Nice => R::Nice,
                Resource::Nofile => R::Nofile,
                Resource::Nproc => R::Nproc,
                Resource::Rss => R::Rss,
                Resource::Rtprio => R::Rtprio,
                Resource::Rttime => R::Rttime,
                Resource::Sigpending => R::Sigpending,
                Resource::Stack => R::Stack,
            };
            let limit = rustix::process::Rlimit {
                current: limit.soft,
                maximum: limit.hard,
            };
            (resource, limit)
        }))
        .collect()
}

fn switch_to(spec: &ProgramSpec) -> Option<sys::Ids> {
    let user = spec.user.as_ref()?;
    (user.uid != sys::effective_uid()).then(|| ids(user))
}

/// The ids a switch to `user` sets.
pub(crate) fn ids(user: &User) -> sys::Ids {
    sys::Ids {
        groups: user.groups.clone(),
        gid: user.gid,
        uid: user.uid,
    }
}

/// Why a launch failed.
enum LaunchError {
    /// Setting up or executing the program.
    Exec(std::io::Error),
    /// Switching to the program's user, in the child.
    User(std::io::Error),
}

impl LaunchError {
    /// The spawn error of `program`, run for `spec`: `cannot execute web: No such file or
    /// directory`, `cannot run as nobody: Operation not permitted`.
    fn describe(&self, spec: &ProgramSpec, program: &str) -> String {
        match (self, &spec.user) {
            (LaunchError::User(e), Some(user)) => {
                format!("cannot run as {}: {}", user.name, os_reason(e))
            }
            (LaunchError::User(e) | LaunchError::Exec(e), _) => {
                format!("cannot execute {program}: {}", os_reason(e))
            }
        }
    }
}

/// Starts `launch` with posix_spawn when `setup` asks for nothing it cannot do, else through
/// the fork path.
fn launch_with(launch: &sys::Launch<'_>, setup: &sys::ChildSetup) -> Result<u32, LaunchError> {
    let plain = setup.umask.is_none()
        && setup.own_pid_variable.is_none()
        && setup.user.is_none()
        && setup.limits.is_empty();
    if plain {
        sys::posix_spawn(launch).map_err(LaunchError::Exec)
    } else {
        fork_exec(launch, setup)
    }
}

/// The std launcher: fork, set the child up (`setup`), exec.
fn fork_exec(launch: &sys::Launch<'_>, setup: &sys::ChildSetup) -> Result<u32, LaunchError> {
    let copy = |fd: BorrowedFd<'_>| fd.try_clone_to_owned().map_err(LaunchError::Exec);
    let [stdin, stdout, stderr] = launch.stdio;
    let (stdin, stdout, stderr) = (copy(stdin)?, copy(stdout)?, copy(stderr)?);
    let program = launch
        .argv
        .first()
        .ok_or_else(|| LaunchError::Exec(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    // Stdio closes these copies with the Command, once the child has its own.
    let mut command = Command::new(program);
    command
        .args(&launch.argv[1..])
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    if let Some(dir) = launch.cwd {
        command.current_dir(dir);
    }
    let report = sys::setup_child(&mut command, setup, launch.argv, launch.env)
        .map_err(LaunchError::Exec)?;
    match command.spawn() {
        Ok(child) => Ok(child.id()),
        Err(e) if report.switch_failed() => Err(LaunchError::User(e)),
        Err(e) => Err(LaunchError::Exec(e)),
    }
}

/// taskmaster's environment, then what the password database says of the program's `user`
/// (`HOME`, `USER`, `LOGNAME`, `SHELL`), then supervisord's variables, then the program's
/// `env`, then what taskmaster tells each child (the names of the process, the notify and
/// control sockets), each overriding the one before. As under supervisord, a program's `env`
/// may set any `SUPERVISOR_*` variable (a wrapper that forwards another supervisor's, a test
/// that points a child elsewhere); taskmaster's own variables it may not.
fn environment(
    name: &str,
    spec: &ProgramSpec,
    context: &ChildContext,
) -> Vec<(OsString, OsString)> {
    let mut env: BTreeMap<OsString, OsString> = context.base_env.iter().cloned().collect();
    if let Some(user) = &spec.user {
        env.extend(user_environment(user));
    }
    // As supervisord's SUPERVISOR_PROCESS_NAME: the name within its group (`workers_00`).
    let process_name = name.rsplit(':').next().unwrap_or(name);
    env.extend(supervisor_environment(process_name, spec, context));
    env.extend(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
    env.insert("NOTIFY_SOCKET".into(), context.notify_socket.clone().into());
    env.insert(
        "TASKMASTER_SOCKET".into(),
        context.control_socket.clone().into(),
    );
    // A WATCHDOG_* inherited from taskmaster's own supervisor is not this child's.
    env.remove(std::ffi::OsStr::new("WATCHDOG_USEC"));
    env.remove(std::ffi::OsStr::new("WATCHDOG_PID"));
    env.insert("TASKMASTER_PROCESS_NAME".into(), process_name.into());
    env.insert("TASKMASTER_GROUP_NAME".into(), spec.group_name().into());
    env.insert("TASKMASTER_ENABLED".into(), "1".into());
    env.into_iter().collect()
}

/// What supervisord sets for each child before the program's `environment`:
/// `SUPERVISOR_ENABLED`, `SUPERVISOR_SERVER_URL` (see [`server_url`]), `SUPERVISOR_PROCESS_NAME`
/// and `SUPERVISOR_GROUP_NAME`, for programs that come from supervisord and for
/// `supervisor.childutils`, which reaches the supervisor through them.
fn supervisor_environment(
    process_name: &str,
    spec: &ProgramSpec,
    context: &ChildContext,
) -> Vec<(OsString, OsString)> {
    let mut env = vec![("SUPERVISOR_ENABLED".into(), "1".into())];
    if let Some(url) = server_url(spec, context) {
        env.push(("SUPERVISOR_SERVER_URL".into(), url));
    }
    env.push(("SUPERVISOR_PROCESS_NAME".into(), process_name.into()));
    env.push(("SUPERVISOR_GROUP_NAME".into(), spec.group_name().into()));
    env
}

/// The program's `SUPERVISOR_SERVER_URL`: its `serverurl` as written, none when that is empty
/// (as supervisord sets none then), and for `AUTO` what supervisord derives from its servers,
/// `unix://` and its unix socket, else `http://HOST:PORT` of its inet server. taskmaster always
/// serves its control socket, so AUTO is always `unix://SOCKET`.
fn server_url(spec: &ProgramSpec, context: &ChildContext) -> Option<OsString> {
    match spec.serverurl.as_deref() {
        None => {
            let mut url = OsString::from("unix://");
            url.push(&context.control_socket);
            Some(url)
        }
        Some("") => None,
        Some(url) => Some(url.into()),
    }
}

/// What a login as `user` sets from its password entry: `HOME`, `USER`, `LOGNAME`, `SHELL`.
/// (supervisord leaves them as taskmaster's own, its issues #453 and #307.)
pub fn user_environment(user: &User) -> [(OsString, OsString); 4] {
    [
        ("HOME".into(), user.home.clone().into()),
        ("USER".into(), (&user.name).into()),
        ("LOGNAME".into(), (&user.name).into()),
        ("SHELL".into(), user.shell.clone().into()),
    ]
}

fn check_directory(dir: &Path) -> std::io::Result<()> {
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
    }
}

/// Where a child's stdin comes from: /dev/null, the `stdin` file from its start, or a pipe
/// whose write end taskmaster keeps.
enum Input {
    File(File),
    Pipe { read: OwnedFd, write: OwnedFd },
}

impl Input {
    /// The descriptor the child gets.
    fn child_end(&self) -> BorrowedFd<'_> {
        match self {
            Input::File(file) => file.as_fd(),
            Input::Pipe { read, .. } => read.as_fd(),
        }
    }

    /// The pipe's write end, for taskmaster; the read end is closed here, so that the child
    /// holds the only one.
    fn into_writer(self) -> Option<OwnedFd> {
        match self {
            Input::File(_) => None,
            Input::Pipe { write, .. } => Some(write),
        }
    }
}

fn input(stdin: &Stdin) -> Result<Input, String> {
    match stdin {
        Stdin::Null => File::open("/dev/null")
            .map(Input::File)
            .map_err(|e| format!("cannot open /dev/null: {}", os_reason(&e))),
        Stdin::File(path) => File::open(path).map(Input::File).map_err(|e| {
            format!(
                "cannot open stdin file {}: {}",
                path.display(),
                os_reason(&e)
            )
        }),
        Stdin::Pipe => rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map(|(read, write)| Input::Pipe { read, write })
            .map_err(|e| format!("cannot make a stdin pipe: {e}")),
    }
}

/// Where a child's stdout or stderr goes: /dev/null, its file itself, or a pipe that
/// taskmaster drains into the file or to syslog (see [`crate::capture`]).
enum Output {
    Discard(File),
    /// The file, opened O_APPEND: the child writes it ([`ProgramSpec::writes_own_file`]).
    Direct(File),
    Captured {
        pipe: Pipe,
        stream: Stream,
        destination: Destination,
    },
}

impl Output {
    /// The descriptor the child gets.
    fn child_end(&self) -> BorrowedFd<'_> {
        match self {
            Output::Discard(file) | Output::Direct(file) => file.as_fd(),
            Output::Captured { pipe, .. } => pipe.write.as_fd(),
        }
    }

    /// The read end to drain and where to; the write end is closed here, so that the pipe
    /// ends when the child (and whatever inherited it) is gone.
    fn into_capture(self) -> Option<(OwnedFd, Stream, Destination)> {
        match self {
            Output::Discard(_) | Output::Direct(_) => None,
            Output::Captured {
                pipe,
                stream,
                destination,
            } => Some((pipe.read, stream, destination)),
        }
    }
}

/// Where `stream` of process `name` (`web`, `workers:workers_00`) of program `spec` goes:
/// its file (opened), syslog (tagged with the name within the group), both, or `None` when it
/// is discarded.
pub fn destination(
    name: &str,
    spec: &ProgramSpec,
    stream: Stream,
    sinks: &mut Sinks,
) -> Result<Option<Destination>, String> {
    let file = match spec.file(stream) {
        Some(path) => Some(
            sinks
                .open(path, spec.rotation(stream))
                .map_err(|e| cannot_open(stream, path, &e))?,
        ),
        None => None,
    };
    if spec.listener.is_some() && stream == Stream::Stdout {
        return Ok(Some(Destination::Protocol { file }));
    }
    let events = spec.events(stream);
    if events.any() {
        return Ok(Some(Destination::Observed { file, events }));
    }
    Ok(match (file, spec.syslog(stream)) {
        (file, Some(socket)) => Some(Destination::Syslog {
            file,
            link: sinks.syslog(socket),
            tag: name.rsplit(':').next().unwrap_or(name).to_string(),
        }),
        (Some(sink), None) => Some(Destination::File(sink)),
        (None, None) => None,
    })
}

/// The child's end of `stream` of process `name`: /dev/null when it is discarded, the file
/// when the process writes it itself, else a pipe to drain to the stream's destination.
fn output(
    name: &str,
    spec: &ProgramSpec,
    stream: Stream,
    sinks: &mut Sinks,
) -> Result<Output, String> {
    if let Some(path) = spec.file(stream).filter(|_| spec.writes_own_file(stream)) {
        // Never truncated; O_APPEND puts each write of every process sharing it at the end.
        return File::options()
            .append(true)
            .create(true)
            .open(path)
            .map(Output::Direct)
            .map_err(|e| cannot_open(stream, path, &e));
    }
    let Some(destination) = destination(name, spec, stream, sinks)? else {
        return discard();
    };
    let pipe = Pipe::new().map_err(|e| format!("cannot make a pipe: {}", os_reason(&e)))?;
    Ok(Output::Captured {
        pipe,
        stream,
        destination,
    })
}

/// `cannot open stdout file /var/log/web.log: Permission denied`: a spawn error.
fn cannot_open(stream: Stream, path: &Path, e: &std::io::Error) -> String {
    format!(
        "cannot open {} file {}: {}",
        stream.name(),
        path.display(),
        os_reason(e)
    )
}

/// /dev/null, for a stream nobody keeps.
fn discard() -> Result<Output, String> {
    File::options()
        .write(true)
        .open("/dev/null")
        .map(Output::Discard)
        .map_err(|e| format!("cannot open /dev/null: {}", os_reason(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prepares and launches a child, as the daemon does one at a time.
    fn spawn(
        name: &str,
        spec: &ProgramSpec,
        socket: Option<BorrowedFd<'_>>,
        context: &ChildContext,
        sinks: &mut Sinks,
    ) -> Result<Spawned, String> {
        prepare(name, spec, socket, context, sinks)?.launch()
    }

    #[test]
    fn children_launched_together_are_reported_in_their_order() {
        let commands = [
            "/bin/true",
            "/bin/true",
            "/no/such/program",
            "/bin/true",
            "/bin/true",
        ];
        let specs: Vec<ProgramSpec> = commands.iter().map(|cmd| spec(cmd, None)).collect();
        let context = context();
        let mut sinks = Sinks::default();
        let mut prepared: Vec<Result<Prepared<'_>, String>> = specs
            .iter()
            .map(|spec| prepare("web", spec, None, &context, &mut sinks))
            .collect();
        prepared.insert(1, Err("not prepared".to_string()));
        let results = launch_all(prepared);
        let pids: Vec<u32> = results
            .iter()
            .filter_map(|result| result.as_ref().ok().map(|child| child.pid))
            .collect();
        for &pid in &pids {
            let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .expect("our own child");
        }
        let outcomes: Vec<&str> = results
            .iter()
            .map(|result| match result {
                Ok(_) => "started",
                Err(error) => error,
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                "started",
                "not prepared",
                "started",
                "cannot execute /no/such/program: No such file or directory",
                "started",
                "started",
            ]
        );
        let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "four children, each its own: {pids:?}");
    }

    /// Program `web` running `cmd`, as `user`.
    fn spec(cmd: &str, user: Option<User>) -> ProgramSpec {
        let text = format!("programs:\n  web: {{cmd: {cmd:?}}}\n");
        let mut spec = taskmaster_config::Config::parse(&text, Path::new("/srv/t.yaml"))
            .expect("a configuration")
            .programs
            .remove("web")
            .expect("web");
        spec.user = user.map(Box::new);
        spec
    }

    fn context() -> ChildContext {
        ChildContext {
            children_nofile: None,
            base_env: vec![
                ("HOME".into(), "/root".into()),
                ("PATH".into(), "/bin".into()),
            ],
            notify_socket: "/srv/t.notify".into(),
            control_socket: "/srv/t.sock".into(),
        }
    }

    /// An account no process can become: uid and gid -1 mean "unchanged" to setresuid, and
    /// are refused (EINVAL) by setuid and setgid, as root too; without root, setgroups fails
    /// first (EPERM).
    fn ghost() -> User {
        User {
            name: "ghost".to_string(),
            uid: u32::MAX,
            gid: u32::MAX,
            groups: Vec::new(),
            home: "/home/ghost".into(),
            shell: "/bin/ghostsh".into(),
        }
    }

    #[test]
    fn a_failed_switch_to_the_user_is_a_spawn_error_naming_the_user() {
        let error = spawn(
            "web",
            &spec("/bin/true", Some(ghost())),
            None,
            &context(),
            &mut Sinks::default(),
        )
        .err()
        .expect("no process can run as uid -1");
        let expected = if sys::effective_uid() == 0 {
            "cannot run as ghost: Invalid argument"
        } else {
            "cannot run as ghost: Operation not permitted"
        };
        assert_eq!(error, expected);
        let error = spawn_shell(
            "web",
            &spec("/bin/true", Some(ghost())),
            &context(),
            "true",
            &[],
            false,
            &mut Sinks::default(),
        )
        .err()
        .expect("no helper can run as uid -1");
        assert_eq!(error, expected);
    }

    #[test]
    fn an_exec_failure_on_the_fork_path_of_a_user_is_told_as_one() {
        // Switching to one's own user changes nothing, so the exec is what fails.
        let own = User {
            uid: sys::effective_uid(),
            ..ghost()
        };
        let error = spawn(
            "web",
            &spec("/no/such/program", Some(own)),
            None,
            &context(),
            &mut Sinks::default(),
        )
        .err()
        .expect("there is no such program");
        assert_eq!(
            error,
            "cannot execute /no/such/program: No such file or directory"
        );
    }

    fn variable(env: &[(OsString, OsString)], name: &str) -> Option<String> {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.to_string_lossy().into_owned())
    }

    #[test]
    fn supervisor_server_url_names_the_control_socket_unless_serverurl_says_otherwise() {
        let mut spec = spec("x", None);
        let env = environment("web", &spec, &context());
        assert_eq!(
            variable(&env, "SUPERVISOR_SERVER_URL").as_deref(),
            Some("unix:///srv/t.sock")
        );
        spec.serverurl = Some("http://127.0.0.1:9001".to_string());
        let env = environment("web", &spec, &context());
        assert_eq!(
            variable(&env, "SUPERVISOR_SERVER_URL").as_deref(),
            Some("http://127.0.0.1:9001")
        );
        // An empty serverurl sets none, as in supervisord.
        spec.serverurl = Some(String::new());
        let env = environment("web", &spec, &context());
        assert_eq!(variable(&env, "SUPERVISOR_SERVER_URL"), None);
    }

    #[test]
    fn the_programs_env_overrides_supervisors_variables_but_not_taskmasters() {
        let mut spec = spec("x", None);
        for name in [
            "SUPERVISOR_ENABLED",
            "SUPERVISOR_SERVER_URL",
            "SUPERVISOR_PROCESS_NAME",
            "SUPERVISOR_GROUP_NAME",
            "TASKMASTER_ENABLED",
            "TASKMASTER_PROCESS_NAME",
            "TASKMASTER_GROUP_NAME",
            "TASKMASTER_SOCKET",
            "NOTIFY_SOCKET",
        ] {
            spec.env.insert(name.to_string(), "mine".to_string());
        }
        let env = environment("site:web", &spec, &context());
        for name in [
            "SUPERVISOR_ENABLED",
            "SUPERVISOR_SERVER_URL",
            "SUPERVISOR_PROCESS_NAME",
            "SUPERVISOR_GROUP_NAME",
        ] {
            assert_eq!(variable(&env, name).as_deref(), Some("mine"), "{name}");
        }
        assert_eq!(variable(&env, "TASKMASTER_ENABLED").as_deref(), Some("1"));
        assert_eq!(
            variable(&env, "TASKMASTER_PROCESS_NAME").as_deref(),
            Some("web")
        );
        assert_eq!(
            variable(&env, "TASKMASTER_GROUP_NAME").as_deref(),
            Some("web")
        );
        assert_eq!(
            variable(&env, "TASKMASTER_SOCKET").as_deref(),
            Some("/srv/t.sock")
        );
        assert_eq!(
            variable(&env, "NOTIFY_SOCKET").as_deref(),
            Some("/srv/t.notify")
        );
    }

    #[test]
    fn the_users_login_variables_come_between_taskmasters_and_the_programs() {
        let mut spec = spec("x", Some(ghost()));
        let names = variable;
        let env = environment("web", &spec, &context());
        assert_eq!(names(&env, "HOME").as_deref(), Some("/home/ghost"));
        assert_eq!(names(&env, "USER").as_deref(), Some("ghost"));
        assert_eq!(names(&env, "LOGNAME").as_deref(), Some("ghost"));
        assert_eq!(names(&env, "SHELL").as_deref(), Some("/bin/ghostsh"));
        assert_eq!(names(&env, "PATH").as_deref(), Some("/bin"));
        spec.env.insert("HOME".to_string(), "/srv/web".to_string());
        let env = environment("web", &spec, &context());
        assert_eq!(names(&env, "HOME").as_deref(), Some("/srv/web"));
        assert_eq!(names(&env, "USER").as_deref(), Some("ghost"));
        spec.user = None;
        let env = environment("web", &spec, &context());
        assert_eq!(names(&env, "HOME").as_deref(), Some("/srv/web"));
        assert_eq!(names(&env, "USER"), None);
    }
}
