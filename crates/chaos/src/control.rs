//! Control requests with a deadline, and what became of each.
//!
//! `taskmaster_api::Client` waits as long as taskmaster takes: a `start` answers once the
//! process is RUNNING or has failed. The run must tell "answered late" from "never answered",
//! so each request goes to a thread that owns a client, and the caller waits for the answer
//! at most the request timeout. A thread whose request never came back is left waiting (it
//! ends with taskmaster's connection) and a new one takes its place: at most one thread per
//! unanswered request, and each of those is a failure of the run.
//!
//! The shell's language goes through `taskmaster ctl`, a process per request, killed by its
//! pid at the deadline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use taskmaster_api::{Client, ClientError};
use taskmaster_core::{Reply, Request};

/// What became of one request.
#[derive(Debug)]
pub enum Answer {
    /// An answer, with the errors of its per-process outcomes (`not running`, `abnormal
    /// termination`...: expected under chaos).
    Answered { failures: Vec<String> },
    /// A reload that taskmaster refused: the file was invalid (it never is in this run).
    Rejected(String),
    /// An HTTP status other than 2xx (or 404, which carries results).
    Status { status: u16, message: String },
    /// The connection failed, or the answer could not be read.
    Broken(String),
    /// No answer within the timeout.
    Never,
}

/// A client of the JSON API whose every request has a deadline.
pub struct TimedClient {
    socket: PathBuf,
    timeout: Duration,
    worker: Option<Worker>,
}

struct Worker {
    requests: Sender<Request>,
    replies: Receiver<Result<Reply, ClientError>>,
}

impl TimedClient {
    pub fn new(socket: &Path, timeout: Duration) -> TimedClient {
        TimedClient {
            socket: socket.to_path_buf(),
            timeout,
            worker: None,
        }
    }

    /// Sends `request`; its reply, or what went wrong.
    pub fn call(&mut self, request: Request) -> Result<Reply, Answer> {
        let worker = match self.worker.take() {
            Some(worker) => worker,
            None => self.spawn_worker().map_err(Answer::Broken)?,
        };
        if worker.requests.send(request).is_err() {
            return Err(Answer::Broken("the client's thread ended".to_string()));
        }
        match worker.replies.recv_timeout(self.timeout) {
            Ok(result) => {
                self.worker = Some(worker);
                result.map_err(classify)
            }
            // The thread is abandoned with its request; the next call starts another.
            Err(RecvTimeoutError::Timeout) => Err(Answer::Never),
            Err(RecvTimeoutError::Disconnected) => {
                Err(Answer::Broken("the client's thread ended".to_string()))
            }
        }
    }

    /// Sends `request` and sorts out its answer.
    pub fn send(&mut self, request: Request) -> Answer {
        match self.call(request) {
            Ok(Reply::Outcomes(outcomes))
            | Ok(Reply::Status {
                errors: outcomes, ..
            })
            | Ok(Reply::Pids {
                errors: outcomes, ..
            }) => Answer::Answered {
                failures: outcomes
                    .iter()
                    .filter_map(|o| o.result.as_ref().err())
                    .map(|failure| failure.to_string())
                    .collect(),
            },
            Ok(Reply::ReloadRejected(errors)) => Answer::Rejected(errors.join("; ")),
            Ok(_) => Answer::Answered {
                failures: Vec::new(),
            },
            Err(answer) => answer,
        }
    }

    fn spawn_worker(&self) -> Result<Worker, String> {
        let client = Client::new(&self.socket).map_err(|e| e.to_string())?;
        let (requests, incoming) = mpsc::channel::<Request>();
        let (outgoing, replies) = mpsc::channel();
        thread::Builder::new()
            .name("chaos-client".to_string())
            .spawn(move || {
                for request in incoming {
                    if outgoing.send(client.call(request)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a client thread: {e}"))?;
        Ok(Worker { requests, replies })
    }
}

fn classify(error: ClientError) -> Answer {
    match error {
        ClientError::Refused { status, message } => Answer::Status { status, message },
        other => Answer::Broken(other.to_string()),
    }
}

/// Runs `taskmaster ctl -s SOCKET WORDS...` (the shell's language) with a deadline.
pub fn ctl(taskmaster: &Path, socket: &Path, words: &[String], timeout: Duration) -> Answer {
    let mut child = match Command::new(taskmaster)
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(words)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Answer::Broken(format!("cannot run taskmaster ctl: {e}")),
    };
    // stderr is read by a thread, so that a chatty ctl cannot block on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => break None,
        }
    };
    let Some(status) = status else {
        // Ended by its pid (std's kill is kill(2) on the child's pid), then reaped.
        let _ = child.kill();
        let _ = child.wait();
        return Answer::Never;
    };
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    match status.code() {
        // 0: done; 3: a process not RUNNING or an action that did not reach its goal.
        Some(0) => Answer::Answered {
            failures: Vec::new(),
        },
        Some(3) => Answer::Answered {
            failures: vec!["(ctl) a process not RUNNING or an action short of its goal".to_string()],
        },
        _ => match http_status(&stderr) {
            Some(status) => Answer::Status {
                status,
                message: stderr.trim().to_string(),
            },
            None => Answer::Broken(format!(
                "taskmaster ctl {}: {}",
                words.join(" "),
                stderr.trim()
            )),
        },
    }
}

/// The status in ctl's `taskmaster answered 503: ...`, if that is what it said.
fn http_status(stderr: &str) -> Option<u16> {
    let rest = &stderr[stderr.find("taskmaster answered ")? + "taskmaster answered ".len()..];
    rest.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_ctl_reports() {
        assert_eq!(
            http_status("taskmaster ctl: taskmaster answered 503: shutting down\n"),
            Some(503)
        );
        assert_eq!(http_status("cannot connect"), None);
    }
}
