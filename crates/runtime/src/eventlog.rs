//! The event log: one timestamped line per event, appended to `logfile`, and echoed to stderr
//! with `-v`. Lines are gathered while the loop handles one wake-up and written together at its
//! end ([`EventLog::flush`]): starting 1000 programs is one write, not 2000. A reply flushes
//! first, so that whoever receives it finds in the log everything that led to it.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use taskmaster_config::Rotation;
use taskmaster_core::Notice;

pub struct EventLog {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    echo: bool,
    /// Lines not yet written.
    pending: String,
}

impl EventLog {
    pub fn open(path: &Path, rotation: Rotation, echo: bool) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(EventLog {
            path: path.to_path_buf(),
            rotation,
            file,
            echo,
            pending: String::new(),
        })
    }

    /// Opens its file again at the same path (after an outside `logrotate` renamed it).
    pub fn reopen_in_place(&mut self) -> std::io::Result<()> {
        self.flush();
        let path = self.path.clone();
        *self = EventLog::open(&path, self.rotation, self.echo)?;
        Ok(())
    }

    pub fn write(&mut self, notice: &Notice) {
        let stamp = timestamp();
        match &notice.process {
            Some(process) => {
                let _ = writeln!(self.pending, "{stamp} {process}: {}", notice.message);
            }
            None => {
                let _ = writeln!(self.pending, "{stamp} {}", notice.message);
            }
        }
    }

    /// Writes the lines gathered so far. A full disk must not stop supervision, so a failed
    /// write is only reported on stderr.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(self.pending.as_bytes()) {
            eprintln!(
                "taskmaster: cannot write event log {}: {e}",
                self.path.display()
            );
        }
        if self.echo {
            let _ = std::io::stderr().write_all(self.pending.as_bytes());
        }
        self.pending.clear();
        self.rotate_if_full();
    }

    /// Rotates the file as the programs' logs rotate, once it holds `logfile_maxbytes`. Lines
    /// are written whole, so a rotated event log ends with a whole line.
    fn rotate_if_full(&mut self) {
        let maxbytes = self.rotation.maxbytes;
        let size = self.file.metadata().map_or(0, |m| m.len());
        if maxbytes == 0 || size < maxbytes {
            return;
        }
        let rotated = crate::capture::rotate(&self.path, self.rotation.backups, &mut self.file)
            .and_then(|()| {
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&self.path)
            });
        match rotated {
            Ok(file) => self.file = file,
            Err(e) => eprintln!(
                "taskmaster: cannot rotate the event log {}: {e}",
                self.path.display()
            ),
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
