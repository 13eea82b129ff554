//! Starting a child the way a program's settings say.
//!
//! std's `Command` does the fork/exec and reports exec and chdir failures back to us
//! synchronously. Its pre-exec step (`sys::setup_child`) resets signal dispositions and sets
//! the umask, with async-signal-safe calls only.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use taskmaster_core::ProgramSpec;

/// A started child.
pub struct Spawned {
    pub pid: u32,
}

/// Starts one child for process `name` of program `spec`. `base_env` is taskmaster's own
/// environment, which the program's `env` is merged over. The error text says what failed,
/// for the process's status and the event log.
pub fn spawn(
    name: &str,
    spec: &ProgramSpec,
    base_env: &[(OsString, OsString)],
) -> Result<Spawned, String> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| "cmd is empty".to_string())?;
    let mut command = Command::new(program);
    command
        .args(&spec.argv[1..])
        .env_clear()
        .envs(base_env.iter().map(|(k, v)| (k, v)))
        .envs(&spec.env)
        // As supervisord's SUPERVISOR_PROCESS_NAME: the name within its group (`workers_00`).
        .env(
            "TASKMASTER_PROCESS_NAME",
            name.rsplit(':').next().unwrap_or(name),
        )
        .env("TASKMASTER_GROUP_NAME", &spec.name)
        .stdin(Stdio::null())
        .stdout(output(spec.stdout.as_deref(), "stdout")?)
        .stderr(output(spec.stderr.as_deref(), "stderr")?)
        // Its own process group, so a stop reaches the grandchildren of `sh -c` too.
        .process_group(0);
    if let Some(dir) = &spec.workingdir {
        // Checked here because the error std reports for a failed chdir cannot be told apart
        // from a failed exec.
        if let Err(e) = std::fs::metadata(dir).and_then(|m| {
            if m.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
            }
        }) {
            return Err(format!("workingdir {}: {}", dir.display(), plain(&e)));
        }
        command.current_dir(dir);
    }
    crate::sys::setup_child(&mut command, spec.umask);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot execute {program}: {}", plain(&e)))?;
    Ok(Spawned { pid: child.id() })
}

/// Where a child's stdout or stderr goes: the file, opened for appending, or nowhere.
fn output(path: Option<&Path>, stream: &str) -> Result<Stdio, String> {
    let Some(path) = path else {
        return Ok(Stdio::null());
    };
    let file: File = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open {stream} file {}: {}",
                path.display(),
                plain(&e)
            )
        })?;
    Ok(Stdio::from(file))
}

/// An I/O error's text without Rust's " (os error N)" suffix.
fn plain(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
