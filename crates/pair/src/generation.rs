//! The generation file, `DIR/NAME.gen`: `GENERATION PID running|stopped`, one line.
//!
//! The generation is the pair's fencing token. Every process that becomes primary writes a
//! generation higher than any before it (a backup taking over writes it *before* it does
//! anything else), and a primary re-reads the file before every unit of work: finding a
//! higher generation there means another process took over while this one was paused, and it
//! must stop at once. `stopped` marks a pair whose work is over, so that its backup exits
//! instead of taking over.
//!
//! The file is replaced whole (a temporary file, then `rename`), so a reader sees the old
//! line or the new one, never half of one.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// What the generation file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The newest primary's generation; 1 for the first.
    pub generation: u64,
    /// That primary's pid.
    pub pid: u32,
    /// The pair's work is over ([`Flow::Stop`](crate::Flow::Stop)).
    pub stopped: bool,
}

impl Record {
    pub fn render(&self) -> String {
        let state = if self.stopped { "stopped" } else { "running" };
        format!("{} {} {state}\n", self.generation, self.pid)
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut words = text.split_whitespace();
        let generation = words.next()?.parse().ok()?;
        let pid = words.next()?.parse().ok()?;
        let stopped = match words.next()? {
            "running" => false,
            "stopped" => true,
            _ => return None,
        };
        words.next().is_none().then_some(Record {
            generation,
            pid,
            stopped,
        })
    }
}

/// The record in `path`; `None` when there is no file yet (the pair's first start).
pub(crate) fn read(path: &Path) -> io::Result<Option<Record>> {
    match fs::read_to_string(path) {
        Ok(text) => Record::parse(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a generation record: {text:?}"),
            )
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Replaces the file at `path` with `record`, atomically: readers see the old record or the
/// new one. Not flushed to disk: the file outlives a process, not a power cut, and so does
/// the state it guards (it lives in memory).
pub(crate) fn write(path: &Path, record: Record) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("generation");
    let draft = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&draft)?;
    file.write_all(record.render().as_bytes())?;
    drop(file);
    fs::rename(&draft, path).inspect_err(|_| {
        let _ = fs::remove_file(&draft);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.gen");
        assert_eq!(read(&path).expect("read"), None);
        for record in [
            Record {
                generation: 1,
                pid: 4242,
                stopped: false,
            },
            Record {
                generation: 2,
                pid: 4343,
                stopped: true,
            },
        ] {
            write(&path, record).expect("write");
            assert_eq!(read(&path).expect("read"), Some(record));
        }
        assert_eq!(fs::read_to_string(&path).expect("read"), "2 4343 stopped\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["counter.gen"], "the draft was renamed");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_generation_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.gen");
        for text in ["", "x 1 running", "1 2", "1 2 paused", "1 2 running extra"] {
            fs::write(&path, text).expect("write");
            let error = read(&path).expect_err(text);
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        }
    }
}
