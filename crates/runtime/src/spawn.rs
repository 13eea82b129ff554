//! Starting a child the way a program's settings say.
//!
//! Everything a child needs is prepared here once (its files, its environment, a check of its
//! working directory), then one of two launchers starts it:
//! - `sys::posix_spawn`, for almost every program: vfork-class cost, no copy of taskmaster.
//! - std's `Command` with a pre-exec step, for a program with a `umask`, which posix_spawn
//!   cannot set. std reports exec and chdir failures back through its close-on-exec pipe.
//!
//! Both give the child its own process group, stdin from /dev/null, an empty signal mask and
//! default signal dispositions.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use taskmaster_config::os_reason;
use taskmaster_core::ProgramSpec;

use crate::sys;

/// A started child.
pub struct Spawned {
    pub pid: u32,
}

/// Starts one child for process `name` (`web`, or `workers:workers_00`) of program `spec`.
/// `base_env` is taskmaster's own environment, which the program's `env` is merged over. The
/// error text says what failed, for the process's status and the event log.
pub fn spawn(
    name: &str,
    spec: &ProgramSpec,
    base_env: &[(OsString, OsString)],
) -> Result<Spawned, String> {
    let program = spec.argv.first().ok_or("cmd is empty")?;
    if let Some(dir) = &spec.workingdir {
        // Checked here because a failed chdir and a failed exec report the same errors.
        check_directory(dir)
            .map_err(|e| format!("workingdir {}: {}", dir.display(), os_reason(&e)))?;
    }
    let stdio = [
        File::open("/dev/null").map_err(|e| format!("cannot open /dev/null: {}", os_reason(&e)))?,
        output(spec.stdout.as_deref(), "stdout")?,
        output(spec.stderr.as_deref(), "stderr")?,
    ];
    let env = environment(name, spec, base_env);
    let launched = match spec.umask {
        None => sys::posix_spawn(&sys::Launch {
            argv: &spec.argv,
            env: &env,
            cwd: spec.workingdir.as_deref(),
            stdio: [stdio[0].as_fd(), stdio[1].as_fd(), stdio[2].as_fd()],
        }),
        Some(umask) => fork_exec(spec, &env, stdio, umask),
    };
    let pid = launched.map_err(|e| format!("cannot execute {program}: {}", os_reason(&e)))?;
    Ok(Spawned { pid })
}

/// The std launcher, for a program with a umask: fork, set the umask and empty the mask in the
/// child, exec.
fn fork_exec(
    spec: &ProgramSpec,
    env: &[(OsString, OsString)],
    stdio: [File; 3],
    umask: u32,
) -> std::io::Result<u32> {
    let [stdin, stdout, stderr] = stdio;
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    if let Some(dir) = &spec.workingdir {
        command.current_dir(dir);
    }
    sys::setup_child(&mut command, Some(umask));
    Ok(command.spawn()?.id())
}

/// taskmaster's environment, then the program's `env`, then the names of the process, each
/// overriding the one before.
fn environment(
    name: &str,
    spec: &ProgramSpec,
    base_env: &[(OsString, OsString)],
) -> Vec<(OsString, OsString)> {
    let mut env: BTreeMap<OsString, OsString> = base_env.iter().cloned().collect();
    env.extend(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
    // As supervisord's SUPERVISOR_PROCESS_NAME: the name within its group (`workers_00`).
    // supervisord's own names are set too, for programs that come from it and read them.
    let process_name = name.rsplit(':').next().unwrap_or(name);
    for (prefix, enabled) in [
        ("TASKMASTER", "TASKMASTER_ENABLED"),
        ("SUPERVISOR", "SUPERVISOR_ENABLED"),
    ] {
        env.insert(format!("{prefix}_PROCESS_NAME").into(), process_name.into());
        env.insert(format!("{prefix}_GROUP_NAME").into(), (&spec.name).into());
        env.insert(enabled.into(), "1".into());
    }
    env.into_iter().collect()
}

fn check_directory(dir: &Path) -> std::io::Result<()> {
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
    }
}

/// Where a child's stdout or stderr goes: the file, opened for appending, or /dev/null.
fn output(path: Option<&Path>, stream: &str) -> Result<File, String> {
    let Some(path) = path else {
        return File::options()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("cannot open /dev/null: {}", os_reason(&e)));
    };
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open {stream} file {}: {}",
                path.display(),
                os_reason(&e)
            )
        })
}
