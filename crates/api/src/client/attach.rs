//! `attach`: a running process's output as it comes, and input sent to its stdin, until the
//! user detaches or the process exits.
//!
//! Output comes from its log files, followed from their current end (`GET .../log/{stream}`
//! with `follow`), both streams at once; input goes to `POST .../stdin` as it is typed. The
//! terminal itself is the caller's business: this takes the keystrokes as chunks of bytes,
//! and ends at the first detach key in them.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyStream;
use hyper::{Method, StatusCode};
use taskmaster_core::{Failure, Reply, State};
use tokio::sync::mpsc;

use super::{collect, decode, refused, Client, ClientError};
use crate::wire;

/// How often the session checks that its process still runs.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How an attach session ended. In every case the process itself is left as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detached {
    /// A detach key was typed.
    ByUser,
    /// The process attached to exited (its pid is gone).
    Exited { pid: u32 },
    /// The input ended.
    InputClosed,
}

impl Client {
    /// Attaches to process `name`: writes `greeting` to `out` once its output is followed (so
    /// that all written after the greeting shows), then its output as it comes, and sends each
    /// chunk of `keys` to its stdin, until a chunk holds a byte of `detach_keys` (that chunk is
    /// not sent: it is a line the user did not finish), `keys` ends, or the process exits. A
    /// process whose stdin is not a pipe still shows its output; `out` is told once that input
    /// is not sent.
    pub fn attach(
        &self,
        name: &str,
        greeting: &str,
        mut keys: mpsc::UnboundedReceiver<Vec<u8>>,
        detach_keys: &[u8],
        out: &mut dyn Write,
    ) -> Result<Detached, ClientError> {
        let Reply::Status { processes, .. } = self.status(&[name.to_string()])? else {
            return Err(ClientError::Decode(
                "a status without processes".to_string(),
            ));
        };
        let [process] = processes.as_slice() else {
            return Err(ClientError::Refused {
                status: StatusCode::NOT_FOUND.as_u16(),
                message: format!("no single process named {name}"),
            });
        };
        let Some(pid) = process.pid.filter(|_| process.state != State::Stopping) else {
            return Err(ClientError::Refused {
                status: StatusCode::CONFLICT.as_u16(),
                message: format!("{} is not running", process.name),
            });
        };
        // One stream when stderr goes into stdout's file.
        let mut streams = vec!["stdout"];
        if process.stderr.is_some() && process.stderr != process.stdout {
            streams.push("stderr");
        }
        let name = process.name.as_str();
        self.runtime()?.block_on(async {
            let mut output = futures_util::stream::SelectAll::new();
            for stream in streams {
                // An offset past the end starts at the end: what comes from now on.
                let path = format!(
                    "/v1/processes/{name}/log/{stream}?offset={}&follow=true",
                    i64::MAX
                );
                let response = self.request(Method::GET, &path, None).await?;
                // A stream with no file has nothing to show.
                if response.status().is_success() {
                    output.push(BodyStream::new(response.into_body()));
                }
            }
            write_out(out, greeting.as_bytes())?;
            let mut check = tokio::time::interval(CHECK_EVERY);
            let mut input_refused = false;
            loop {
                tokio::select! {
                    Some(frame) = output.next() => {
                        let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
                        if let Some(data) = frame.data_ref() {
                            write_out(out, data)?;
                        }
                    }
                    chunk = keys.recv() => {
                        let Some(chunk) = chunk else {
                            return Ok(Detached::InputClosed);
                        };
                        if chunk.iter().any(|b| detach_keys.contains(b)) {
                            return Ok(Detached::ByUser);
                        }
                        if !input_refused {
                            if let Err(why) = self.send_input(name, &chunk).await? {
                                input_refused = true;
                                let note = format!("\n[input is not sent to {name}: {why}]\n");
                                write_out(out, note.as_bytes())?;
                            }
                        }
                    }
                    _ = check.tick() => {
                        if !self.still_runs(name, pid).await? {
                            return Ok(Detached::Exited { pid });
                        }
                    }
                }
            }
        })
    }

    /// Sends what was typed to the process's stdin: `Err` with the reason it was refused.
    async fn send_input(&self, name: &str, data: &[u8]) -> Result<Result<(), String>, ClientError> {
        let outcomes = self.post_stdin(name, data).await?;
        Ok(match outcomes.into_iter().find_map(|o| o.result.err()) {
            Some(Failure::NoStdin(why)) => Err(why),
            Some(failure) => Err(failure.to_string()),
            None => Ok(()),
        })
    }

    /// Whether process `name` still has the child `pid`.
    async fn still_runs(&self, name: &str, pid: u32) -> Result<bool, ClientError> {
        let response = self
            .request(Method::GET, &format!("/v1/processes/{name}"), None)
            .await?;
        let answer = collect(response).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(false); // removed by a reload
        }
        if !answer.status.is_success() {
            return Err(refused(answer.status, &answer.body));
        }
        let process: wire::Process = decode(&answer.body)?;
        Ok(process.pid == Some(pid))
    }
}

fn write_out(out: &mut dyn Write, data: &[u8]) -> Result<(), ClientError> {
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| ClientError::Http(format!("cannot write the output: {e}")))
}
