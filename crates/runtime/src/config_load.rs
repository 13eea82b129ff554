//! Reading the configuration file again, for a reload or a reread, beside the loop: the file of
//! 10,000 programs takes a tenth of a second to read and check, which no heartbeat, deadline or
//! request may wait for. The supervisor hears the result as [`Event::ConfigLoaded`], as before.
//!
//! One read at a time, in the order they were asked for: two reads in flight could end in
//! either order, and an older file applied after a newer one would undo it.

use std::collections::VecDeque;

use taskmaster_config::{Config, ConfigErrors, ConfigWarning};
use taskmaster_core::{Event, LoadPurpose, Ticket};

use crate::daemon::Daemon;
use crate::tasks::TaskEvent;

/// A read in flight, and the ones asked for meanwhile.
#[derive(Default)]
pub(crate) struct ConfigLoads {
    reading: bool,
    waiting: VecDeque<(Option<Ticket>, LoadPurpose)>,
}

/// What a read gave.
pub(crate) struct ConfigRead {
    ticket: Option<Ticket>,
    purpose: LoadPurpose,
    result: Result<(Config, Vec<ConfigWarning>), ConfigErrors>,
}

impl Daemon {
    /// Reads the configuration file again, once the read before (if any) is done.
    pub(crate) fn load_config(&mut self, ticket: Option<Ticket>, purpose: LoadPurpose) {
        if self.config_loads.reading {
            self.config_loads.waiting.push_back((ticket, purpose));
        } else {
            self.start_read(ticket, purpose);
        }
    }

    fn start_read(&mut self, ticket: Option<Ticket>, purpose: LoadPurpose) {
        self.config_loads.reading = true;
        let path = self.config_path.clone();
        let events = self.task_events.clone();
        tokio::task::spawn_blocking(move || {
            let result = Config::load_with_warnings(&path);
            let read = ConfigRead {
                ticket,
                purpose,
                result,
            };
            let _ = events.send(TaskEvent::ConfigRead(Box::new(read)));
        });
    }

    /// A read is done: its warnings said, what a reload takes at once taken, the supervisor
    /// told; then the next read asked for starts.
    pub(crate) fn config_read(&mut self, read: ConfigRead) {
        let ConfigRead {
            ticket,
            purpose,
            result,
        } = read;
        self.release_memory = true;
        self.release_unused_memory_soon();
        let result = result
            .map(|(config, warnings)| {
                for warning in &warnings {
                    eprintln!("warning: {warning}");
                }
                self.config_warnings(&warnings);
                // A program the reload drops leaves its AUTO files to clean at exit.
                self.auto_logs
                    .extend(config.daemon.auto_logs.iter().cloned());
                if purpose == LoadPurpose::Apply {
                    self.apply_rotations(&config);
                    self.raise_nofile_for(&config);
                }
                Box::new(config)
            })
            .map_err(|errors| errors.iter().map(|e| e.to_string()).collect());
        self.dispatch(Event::ConfigLoaded {
            ticket,
            purpose,
            result,
        });
        self.config_loads.reading = false;
        if let Some((ticket, purpose)) = self.config_loads.waiting.pop_front() {
            self.start_read(ticket, purpose);
        }
    }
}
