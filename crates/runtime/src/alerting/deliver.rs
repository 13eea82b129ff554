//! Delivery: a message to one destination (a webhook's POST, a mail through SMTP, syslog
//! datagrams), on a task of its own, with bounded retries and exponential backoff. Nothing
//! here runs on the loop's turn: a dead receiver costs this task its retries, never the loop.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use taskmaster_config::{os_reason, EmailRoute, SmtpTls, Webhook};
use tokio::net::TcpStream;

use super::message::Message;
use super::tls;

/// How hard a message is pushed: `attempts` tries, each bounded by `timeout`, the n-th
/// retry after `first_wait` * 2^(n-1).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: u32,
    pub first_wait: Duration,
    pub timeout: Duration,
}

/// 3 attempts, 1 s then 2 s apart, 5 s each: a dead receiver costs at most 18 s of a task.
pub const POLICY: Policy = Policy {
    attempts: 3,
    first_wait: Duration::from_secs(1),
    timeout: Duration::from_secs(5),
};

/// Where a message goes. `ca_file` is `alerting`'s, trusted beside the system's roots.
#[derive(Debug, Clone)]
pub enum Destination {
    Webhook {
        webhook: Webhook,
        ca_file: Option<PathBuf>,
    },
    Email {
        route: EmailRoute,
        ca_file: Option<PathBuf>,
    },
    Syslog(PathBuf),
}

impl Destination {
    /// Its name in the event log, `alerts test` and the metrics: `webhook http://...`,
    /// `email smtp 127.0.0.1:25`, `syslog`.
    pub fn name(&self) -> String {
        match self {
            Destination::Webhook { webhook, .. } => format!("webhook {}", webhook.url.url),
            Destination::Email { route, .. } => format!("email smtp {}", route.smtp),
            Destination::Syslog(_) => "syslog".to_string(),
        }
    }
}

/// Why an attempt failed, and whether another could do better.
#[derive(Debug)]
pub struct Failed {
    pub reason: String,
    /// A refusal that will not change (HTTP 400, a mail address refused): no retry.
    pub permanent: bool,
}

fn transient(reason: String) -> Failed {
    Failed {
        reason,
        permanent: false,
    }
}

/// A failure another attempt would repeat: a refused address, an unreadable `ca_file`.
fn permanent(reason: String) -> Failed {
    Failed {
        reason,
        permanent: true,
    }
}

/// One attempt, bounded by `timeout`: what the destination answered.
pub async fn once(
    destination: &Destination,
    message: &Message,
    host: &str,
    timeout: Duration,
) -> Result<String, Failed> {
    let attempt = async {
        match destination {
            Destination::Webhook { webhook, ca_file } => {
                post(webhook, ca_file, message.json()).await
            }
            Destination::Email { route, ca_file } => {
                mail(route, ca_file, message, host, timeout).await
            }
            Destination::Syslog(socket) => syslog(socket.clone(), message).await,
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| transient(format!("no answer within {}s", timeout.as_secs_f64())))?
}

/// Up to `policy.attempts` attempts; the answer, or the last failure; and the attempts made.
pub async fn with_retries(
    destination: &Destination,
    message: &Message,
    host: &str,
    policy: Policy,
) -> (Result<String, String>, u32) {
    let mut wait = policy.first_wait;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match once(destination, message, host, policy.timeout).await {
            Ok(answer) => return (Ok(answer), attempt),
            Err(failed) if failed.permanent || attempt >= policy.attempts => {
                return (Err(failed.reason), attempt)
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
    }
}

/// A POST of `body` (JSON) to the webhook, over TLS for `https://`; a 2xx status is
/// delivered.
async fn post(
    webhook: &Webhook,
    ca_file: &Option<PathBuf>,
    body: Vec<u8>,
) -> Result<String, Failed> {
    let stream = TcpStream::connect(&webhook.url.address)
        .await
        .map_err(|e| transient(os_reason(&e)))?;
    if !webhook.https {
        return post_on(stream, webhook, body).await;
    }
    let config = tls::client_config(ca_file.clone())
        .await
        .map_err(permanent)?;
    let host = webhook.url.host_name();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| permanent(format!("{host}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| {
            // A certificate that does not check will not check on the next attempt either.
            let rustls_error = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            Failed {
                permanent: matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_))),
                reason: format!("TLS: {e}"),
            }
        })?;
    post_on(stream, webhook, body).await
}

/// The POST itself, on a connection made (plain or TLS).
async fn post_on(
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    webhook: &Webhook,
    body: Vec<u8>,
) -> Result<String, Failed> {
    let url = &webhook.url;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transient(e.to_string()))?;
    let mut request = hyper::Request::post(url.path.as_str())
        .header(hyper::header::HOST, url.host.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "taskmaster-alerts")
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in &webhook.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failed {
            reason: format!("cannot make a request of {}: {e}", url.url),
            permanent: true,
        })?;
    let answer = sender.send_request(request);
    tokio::pin!(answer, connection);
    let response = tokio::select! {
        biased;
        response = &mut answer => response,
        _ = &mut connection => answer.await,
    };
    let status = response
        .map_err(|e| {
            transient(if e.is_incomplete_message() || e.is_canceled() {
                "the connection closed before an answer".to_string()
            } else {
                e.to_string()
            })
        })?
        .status();
    let said = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if status.is_success() {
        return Ok(said);
    }
    // A server's trouble may pass; a refusal of the request will not, but for these two.
    let passing = status.is_server_error()
        || status == hyper::StatusCode::REQUEST_TIMEOUT
        || status == hyper::StatusCode::TOO_MANY_REQUESTS;
    Err(Failed {
        reason: format!("HTTP {said}"),
        permanent: !passing,
    })
}

/// The message as a mail, through the route's SMTP server (plain, STARTTLS or TLS).
async fn mail(
    route: &EmailRoute,
    ca_file: &Option<PathBuf>,
    message: &Message,
    host: &str,
    timeout: Duration,
) -> Result<String, Failed> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::client::Tls;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let refused = permanent;
    let from = route
        .from
        .parse()
        .map_err(|e| refused(format!("from {}: {e}", route.from)))?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(message.subject())
        .header(ContentType::TEXT_PLAIN);
    for to in &route.to {
        let to = to.parse().map_err(|e| refused(format!("to {to}: {e}")))?;
        builder = builder.to(to);
    }
    let mail = builder
        .body(message.text())
        .map_err(|e| refused(e.to_string()))?;
    let tls = match route.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls | SmtpTls::Tls => {
            let parameters = tls::smtp_parameters(route.host.clone(), ca_file.clone())
                .await
                .map_err(permanent)?;
            if route.tls == SmtpTls::Tls {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            }
        }
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&route.host)
        .port(route.port)
        .tls(tls)
        .timeout(Some(timeout))
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            host.to_string(),
        ));
    if let Some((username, password)) = &route.credentials {
        transport =
            transport.credentials(lettre::transport::smtp::authentication::Credentials::new(
                username.clone(),
                password.clone(),
            ));
    }
    let response = transport.build().send(mail).await.map_err(|e| Failed {
        permanent: e.is_permanent(),
        reason: e.to_string(),
    })?;
    let text: Vec<&str> = response.message().collect();
    Ok(format!("{} {}", response.code(), text.join(" ")))
}

/// One datagram per event on the syslog socket, facility `daemon`, tag `taskmaster`.
async fn syslog(socket: PathBuf, message: &Message) -> Result<String, Failed> {
    let lines = message.syslog_lines();
    let sent = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
        let link = std::os::unix::net::UnixDatagram::unbound()?;
        link.connect(&socket)?;
        link.set_write_timeout(Some(crate::syslog::SEND_TIMEOUT))?;
        let stamp = crate::syslog::timestamp();
        for (severity, line) in &lines {
            let datagram = format!(
                "<{}>{stamp} taskmaster[{}]: {line}",
                FACILITY_DAEMON | severity,
                std::process::id()
            );
            crate::syslog::send(&link, datagram.as_bytes())?;
        }
        Ok(lines.len())
    })
    .await
    .map_err(|e| transient(e.to_string()))?
    .map_err(|e| transient(os_reason(&e)))?;
    Ok(format!("sent ({sent} line(s))"))
}

/// syslog's facility `daemon` (3), shifted as PRI wants it.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The most read from the end of a stderr file for its last lines.
const TAIL_BYTES: u64 = 16 * 1024;

/// The last [`super::message::STDERR_LINES`] lines of `path` before byte `end` (its length
/// when the event happened). Blocking: called on tokio's blocking pool.
pub fn stderr_tail(path: &Path, end: u64) -> Vec<String> {
    let read = || -> std::io::Result<(Vec<u8>, bool)> {
        let mut file = std::fs::File::open(path)?;
        let end = end.min(file.metadata()?.len());
        let start = end.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.take(end - start).read_to_end(&mut bytes)?;
        Ok((bytes, start == 0))
    };
    match read() {
        Ok((bytes, whole)) => {
            super::message::last_lines(&bytes, super::message::STDERR_LINES, whole)
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn webhook(address: SocketAddr) -> Destination {
        Destination::Webhook {
            webhook: Webhook {
                url: taskmaster_config::HttpProbe {
                    url: format!("http://{address}/hook"),
                    address: address.to_string(),
                    host: address.to_string(),
                    path: "/hook".to_string(),
                },
                https: false,
                headers: vec![("Authorization".to_string(), "Bearer t".to_string())],
            },
            ca_file: None,
        }
    }

    /// A server answering each connection with the next of `statuses`; what it read.
    async fn answering(statuses: Vec<u16>) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut requests = Vec::new();
            for status in statuses {
                let Ok((mut stream, _)) = listener.accept().await else {
                    break;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Head and body: until the JSON's closing brace.
                while !request.ends_with(b"}") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                requests.push(String::from_utf8_lossy(&request).to_string());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            requests
        });
        (address, task)
    }

    fn quick() -> Policy {
        Policy {
            attempts: 3,
            first_wait: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_server_error_is_retried_and_a_refusal_is_not() {
        let message = Message::test("box");
        let (address, server) = answering(vec![500, 200]).await;
        let (result, attempts) = with_retries(&webhook(address), &message, "box", quick()).await;
        assert_eq!((result, attempts), (Ok("200 OK".to_string()), 2));
        let requests = server.await.expect("the server");
        assert!(
            requests[0].starts_with("POST /hook HTTP/1.1\r\n"),
            "{requests:?}"
        );
        assert!(
            requests[0].contains("authorization: Bearer t"),
            "{requests:?}"
        );
        assert!(requests[0].contains("\"version\": 1"), "{requests:?}");

        let (address, _server) = answering(vec![404, 200]).await;
        let (result, attempts) = with_retries(&webhook(address), &message, "box", quick()).await;
        assert_eq!(
            (result, attempts),
            (Err("HTTP 404 Not Found".to_string()), 1)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dead_receiver_costs_the_attempts_and_says_why() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let (result, attempts) =
            with_retries(&webhook(address), &Message::test("box"), "box", quick()).await;
        assert_eq!(attempts, 3);
        assert!(result.is_err_and(|why| why.contains("refused")));
    }

    #[test]
    fn the_tail_stops_where_the_event_was() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("err.log");
        std::fs::write(&path, "one\ntwo\nthree\nlater\n").expect("write");
        assert_eq!(stderr_tail(&path, 14), ["one", "two", "three"]);
        assert!(stderr_tail(&dir.path().join("missing"), 10).is_empty());
    }
}
