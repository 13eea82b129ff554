//! The network health probes (`healthcheck: http:` and `healthcheck: tcp:`). Each is one
//! attempt bounded by a timeout; the answer is `Ok` with a short detail when healthy and `Err`
//! with the reason, both in words for the event log ("HTTP 503", "connection refused",
//! "timed out after 5s").
//!
//! The HTTP probe behaves like Docker's `curl -f`: a 2xx status is healthy, anything else is
//! not, and redirects are not followed (a health endpoint that redirects is misconfigured, and
//! following it could leave the machine). Only the status line matters: the body is not read.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use taskmaster_config::{os_reason, HttpProbe};
use tokio::net::TcpStream;

/// A GET of `probe.path` on `probe.address` with `Host: probe.host`, healthy on a 2xx status.
/// `Ok` carries a short detail ("HTTP 200"); `Err` says why in words a user reads in a log:
/// "HTTP 503", "connection refused", "timed out after 5s", "not HTTP: ...". The whole probe
/// (connect, request and status line) is bounded by `timeout`.
pub async fn http(probe: &HttpProbe, timeout: Duration) -> Result<String, String> {
    let status = tokio::time::timeout(timeout, status_of(probe))
        .await
        .map_err(|_| timed_out(timeout))??;
    let code = status.as_u16();
    if status.is_success() {
        Ok(format!("HTTP {code}"))
    } else if status.is_redirection() {
        Err(format!("HTTP {code} (a redirect: not followed)"))
    } else {
        Err(format!("HTTP {code}"))
    }
}

/// Healthy when a TCP connection to `address` ("host:port"; a name is resolved) is accepted
/// within `timeout`. The connection is closed at once.
pub async fn tcp(address: &str, timeout: Duration) -> Result<String, String> {
    tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| timed_out(timeout))?
        .map_err(|error| io_reason(&error))?;
    Ok("connected".to_string())
}

/// Connects, sends the GET and reads the answer's status line.
async fn status_of(probe: &HttpProbe) -> Result<hyper::StatusCode, String> {
    let stream = TcpStream::connect(&probe.address)
        .await
        .map_err(|error| io_reason(&error))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| http_reason(&error))?;
    let request = hyper::Request::get(probe.path.as_str())
        .header(hyper::header::HOST, probe.host.as_str())
        .header(hyper::header::USER_AGENT, "taskmaster-healthcheck")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("cannot make a request of {}: {error}", probe.url))?;
    // The connection does the reading and writing; it is driven here, beside the request,
    // rather than in a task of its own, so nothing outlives the probe.
    let answer = sender.send_request(request);
    tokio::pin!(answer, connection);
    let response = tokio::select! {
        biased;
        response = &mut answer => response,
        // The connection ends before handing over an answer only when it failed or closed;
        // the request then resolves with that error (or with an answer read just before).
        _ = &mut connection => answer.await,
    };
    response
        .map(|response| response.status())
        .map_err(|error| http_reason(&error))
}

/// A hyper error in a log's words.
fn http_reason(error: &hyper::Error) -> String {
    if error.is_parse() || error.is_parse_status() {
        return format!("not HTTP: {error}");
    }
    if error.is_incomplete_message() || error.is_canceled() {
        return "the connection closed before an answer".to_string();
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<std::io::Error>() {
            return io_reason(io_error);
        }
        source = cause.source();
    }
    error.to_string()
}

/// The OS's words for an I/O error, as the middle of a sentence: "connection refused".
fn io_reason(error: &std::io::Error) -> String {
    let reason = os_reason(error);
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => reason,
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}s", timeout.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    /// Generous: only the timeout tests wait for the probe's own timeout.
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn probe_of(address: SocketAddr, path: &str) -> HttpProbe {
        HttpProbe {
            url: format!("http://{address}{path}"),
            address: address.to_string(),
            host: format!("health.test:{}", address.port()),
            path: path.to_string(),
        }
    }

    /// A listener on a free loopback port that answers its first connection with `answer`,
    /// once the request's head has arrived, and then keeps the connection open until the test
    /// ends. The request's head comes back through the receiver.
    async fn serve_once(answer: &'static [u8]) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (head_sender, head) = oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let Some(request) = read_head(&mut stream).await else {
                return;
            };
            let _ = head_sender.send(request);
            let _ = stream.write_all(answer).await;
            // Hold the connection: the probe must not need the server to close it.
            let _ = stream.read(&mut [0u8; 1024]).await;
        });
        (address, head)
    }

    /// Reads a request's head, through its empty line.
    async fn read_head(stream: &mut TcpStream) -> Option<String> {
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        Some(String::from_utf8_lossy(&request).into_owned())
    }

    /// A loopback port nobody listens on (bound, then closed).
    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn http_200_is_healthy_and_sends_the_path_and_host() {
        let (address, head) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let result = http(&probe_of(address, "/health?deep=1"), TIMEOUT).await;
        assert_eq!(result, Ok("HTTP 200".to_string()));
        let head = head.await.unwrap().to_lowercase();
        assert!(
            head.starts_with("get /health?deep=1 http/1.1\r\n"),
            "{head}"
        );
        let host = format!("\r\nhost: health.test:{}\r\n", address.port());
        assert!(head.contains(&host), "{head}");
    }

    #[tokio::test]
    async fn http_204_is_healthy() {
        let (address, _head) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        assert_eq!(result, Ok("HTTP 204".to_string()));
    }

    #[tokio::test]
    async fn http_503_is_unhealthy() {
        let (address, _head) =
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        assert_eq!(result, Err("HTTP 503".to_string()));
    }

    #[tokio::test]
    async fn http_redirect_is_unhealthy_and_not_followed() {
        let (address, _head) = serve_once(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        assert_eq!(
            result,
            Err("HTTP 301 (a redirect: not followed)".to_string())
        );
    }

    #[tokio::test]
    async fn http_to_a_closed_port_is_connection_refused() {
        let address = closed_port().await;
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        assert_eq!(result, Err("connection refused".to_string()));
    }

    #[tokio::test]
    async fn http_to_a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepted by the kernel (the backlog), never read nor answered.
        let result = http(&probe_of(address, "/"), Duration::from_millis(300)).await;
        assert_eq!(result, Err("timed out after 0.3s".to_string()));
        drop(listener);
    }

    #[tokio::test]
    async fn http_to_something_else_is_not_http() {
        let (address, _head) = serve_once(b"SSH-2.0-OpenSSH_9.2p1\r\n").await;
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        let reason = result.unwrap_err();
        assert_eq!(reason, "not HTTP: invalid HTTP version parsed");
    }

    #[tokio::test]
    async fn http_closed_without_an_answer_says_so() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            // The whole request read first, so that closing sends FIN, not RST.
            let _ = read_head(&mut stream).await;
            // Dropped: closed without a word.
        });
        let result = http(&probe_of(address, "/"), TIMEOUT).await;
        assert_eq!(
            result,
            Err("the connection closed before an answer".to_string())
        );
    }

    #[tokio::test]
    async fn tcp_to_a_listening_port_is_healthy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(
            tcp(&address.to_string(), TIMEOUT).await,
            Ok("connected".to_string())
        );
    }

    #[tokio::test]
    async fn tcp_resolves_a_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("localhost:{}", listener.local_addr().unwrap().port());
        assert_eq!(tcp(&address, TIMEOUT).await, Ok("connected".to_string()));
    }

    #[tokio::test]
    async fn tcp_to_a_closed_port_is_connection_refused() {
        let address = closed_port().await;
        assert_eq!(
            tcp(&address.to_string(), TIMEOUT).await,
            Err("connection refused".to_string())
        );
    }

    #[tokio::test]
    async fn tcp_to_an_address_without_a_port_says_why() {
        let reason = tcp("127.0.0.1", TIMEOUT).await.unwrap_err();
        assert_eq!(reason, "invalid socket address");
    }
}
