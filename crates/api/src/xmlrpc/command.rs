//! supervisord's check of a program's command before `startProcess` spawns it: a command that
//! cannot be found is `NO_FILE`, one that cannot be executed `NOT_EXECUTABLE`, so that
//! supervisorctl says `ERROR (no such file)` or `ERROR (file is not executable)` as it does
//! with supervisord. (The spawn itself would fail too, as a `SPAWN_ERROR`.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use taskmaster_config::ProgramSpec;

use super::fault::{Code, Fault};

/// Why `spec`'s command cannot be started, found as supervisord finds it: a word with a `/`
/// is a path, any other is looked up in `PATH` (the program's `env` one, or taskmaster's).
/// Reads the file system: run it off the loop.
pub fn check(spec: &ProgramSpec) -> Result<(), Fault> {
    let Some(program) = spec.argv.first() else {
        return Err(Fault::with(Code::NotExecutable, "command is empty"));
    };
    let found = if program.contains('/') {
        let path = match &spec.workingdir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        path.exists().then_some(path)
    } else {
        let search = spec
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        std::env::split_paths(&search)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.exists())
    };
    let Some(path) = found else {
        return Err(Fault::with(
            Code::NoFile,
            format!("can't find command '{program}'"),
        ));
    };
    executable(&path)
}

fn executable(path: &Path) -> Result<(), Fault> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|_| {
        Fault::with(
            Code::NotExecutable,
            format!("no permission to run command '{shown}'"),
        )
    })?;
    if metadata.is_dir() {
        return Err(Fault::with(
            Code::NotExecutable,
            format!("command at '{shown}' is a directory"),
        ));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(Fault::with(
            Code::NotExecutable,
            format!("command at '{shown}' is not executable"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cmd: &str) -> ProgramSpec {
        let text = format!("programs:\n  web: {{cmd: {cmd:?}}}\n");
        taskmaster_config::Config::parse(&text, Path::new("/tmp/t.yaml"))
            .expect("a configuration")
            .programs
            .remove("web")
            .expect("web")
    }

    fn code(cmd: &str) -> Option<String> {
        check(&spec(cmd)).err().map(|fault| fault.to_string())
    }

    #[test]
    fn commands_are_found_as_supervisord_finds_them() {
        assert_eq!(code("sh -c true"), None);
        assert_eq!(code("/bin/sh"), None);
        let missing = code("no-such-command-here").expect("a fault");
        assert!(
            missing.starts_with("NO_FILE: can't find command"),
            "{missing}"
        );
        let missing = code("/no/such/file").expect("a fault");
        assert!(missing.starts_with("NO_FILE"), "{missing}");
        let directory = code("/tmp").expect("a fault");
        assert!(directory.contains("is a directory"), "{directory}");
        let file = std::env::temp_dir().join(format!("tm-not-executable-{}", std::process::id()));
        std::fs::write(&file, "data").expect("write a plain file");
        let plain = code(&file.to_string_lossy());
        let _ = std::fs::remove_file(&file);
        let plain = plain.expect("a fault");
        assert!(plain.starts_with("NOT_EXECUTABLE"), "{plain}");
    }
}
