//! The event log: one timestamped line per event, appended to `logfile`, and echoed to stderr
//! with `-v`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use taskmaster_core::Notice;

pub struct EventLog {
    path: PathBuf,
    file: File,
    echo: bool,
}

impl EventLog {
    pub fn open(path: &Path, echo: bool) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(EventLog {
            path: path.to_path_buf(),
            file,
            echo,
        })
    }

    /// Switches to another file (a reload changed `logfile`); keeps the old one on error.
    pub fn reopen(&mut self, path: &Path) -> std::io::Result<()> {
        if path != self.path {
            *self = EventLog::open(path, self.echo)?;
        }
        Ok(())
    }

    pub fn write(&mut self, notice: &Notice) {
        let line = match &notice.process {
            Some(process) => format!("{} {process}: {}\n", timestamp(), notice.message),
            None => format!("{} {}\n", timestamp(), notice.message),
        };
        // One write per line, so lines from concurrent writers never interleave. A full disk
        // must not stop supervision, so a failed write is only echoed.
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            eprintln!(
                "taskmaster: cannot write event log {}: {e}",
                self.path.display()
            );
        }
        if self.echo {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    pub fn say(&mut self, message: impl Into<String>) {
        self.write(&Notice {
            process: None,
            message: message.into(),
        });
    }
}

fn timestamp() -> String {
    jiff::Zoned::now()
        .strftime("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}
