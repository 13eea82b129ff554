//! `alerting:` (issue 16): alerts that reach people, proven with real receivers on loopback:
//! an HTTP server written here that records each webhook (and variants that fail once, or
//! never answer), aiosmtpd (from the tests' venv) recording mail, and a syslog socket the
//! test binds. Every wait is for a condition, with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;

use crate::support::{
    fixture_cmd, program, send_signal, supervisor_venv_bin, wait_until, yaml_quote, Process,
    Sandbox, Taskmaster, TIMEOUT,
};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Posted {
    head: String,
    body: String,
}

impl Posted {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// How a receiver answers.
#[derive(Clone, Copy)]
enum Answers {
    /// 500 to the first request, 200 to the others.
    FailOnce,
    /// 200 to every one.
    Ok,
    /// Reads the request and never answers (holds the connection).
    Never,
}

/// A webhook receiver on 127.0.0.1: records each request, answers as told. Its thread ends
/// with the test binary; it starts no process.
struct Receiver {
    port: u16,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl Receiver {
    fn start(answers: Answers) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let port = listener.local_addr().expect("its address").port();
        let posted = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&posted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                if let Ok(mut posted) = record.lock() {
                    posted.push(request);
                }
                let status = match answers {
                    Answers::Never => {
                        held.push(stream);
                        continue;
                    }
                    Answers::FailOnce if n == 0 => "500 Internal Server Error",
                    _ => "200 OK",
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, posted }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/taskmaster", self.port)
    }

    fn posted(&self) -> Vec<Posted> {
        self.posted.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Waits for at least `n` requests; all of them.
    fn wait_for(&self, n: usize) -> Vec<Posted> {
        wait_until(&format!("{n} webhook request(s)"), TIMEOUT, || {
            let posted = self.posted();
            (posted.len() >= n).then_some(posted)
        })
    }
}

/// A request's head and body (by its Content-Length).
fn read_request(stream: &TcpStream) -> Option<Posted> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Posted {
        head,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// `alerting:` with one webhook to `receiver`, `batch`, and `extra` keys.
fn alerting_to(receiver: &Receiver, batch: &str, extra: &str) -> String {
    format!(
        "alerting:\n  batch: {batch}\n  webhooks:\n    - url: {}\n      headers: {{Authorization: \"Bearer s3cret\"}}\n{extra}",
        yaml_quote(&receiver.url())
    )
}

/// A program that writes two stderr lines and its pid, then sleeps: one to SIGSEGV.
fn victim(sandbox: &Sandbox, name: &str) -> String {
    let pidfile = sandbox.file_str(&format!("{name}.pid"));
    program(
        name,
        &fixture_cmd(&[
            "eprint",
            "db connection lost",
            "eprint",
            "about to fail",
            "pidfile",
            &pidfile,
            "sleep",
            "forever",
        ]),
        &[
            "starttime: 0",
            "stoptime: 1",
            &format!("stderr: {name}.err"),
            "backoff: off",
        ],
    )
}

fn start(sandbox: &Sandbox, head: &str, programs: &[String]) -> Taskmaster {
    sandbox.write_config(&format!("{head}programs:\n{}", programs.concat()));
    Taskmaster::start_serving(sandbox, &[])
}

/// The pid in `name.pid` once it is there and differs from `not`.
fn new_pid(sandbox: &Sandbox, name: &str, not: u32) -> u32 {
    wait_until(&format!("a new pid for {name}"), TIMEOUT, || {
        let text = std::fs::read_to_string(sandbox.file(&format!("{name}.pid"))).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        (pid != not).then_some(pid)
    })
}

#[test]
fn a_crash_is_posted_with_its_cause_the_host_and_the_last_lines_of_its_stderr() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let mut tm = start(
        &sandbox,
        &alerting_to(&receiver, "0", ""),
        &[victim(&sandbox, "web")],
    );
    let pid = tm.running_pid("web");
    sandbox.wait_for_contents("web.err", |text| text.contains("about to fail"), TIMEOUT);
    send_signal(pid, Signal::SEGV).expect("SIGSEGV");

    let posted = receiver.wait_for(1);
    let request = &posted[0];
    assert!(
        request
            .head
            .starts_with("POST /hooks/taskmaster HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    let head = request.head.to_ascii_lowercase();
    assert!(head.contains("authorization: bearer s3cret"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let body = request.json();
    assert_eq!(body["version"], 1, "{body}");
    assert!(
        body["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{body}"
    );
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{body}");
    let event = &events[0];
    assert_eq!(event["event"], "crashed", "{body}");
    assert_eq!(event["program"], "web", "{body}");
    assert_eq!(event["process"], "web", "{body}");
    assert_eq!(event["pid"], pid, "{body}");
    assert_eq!(event["cause"], "crashed", "{body}");
    assert!(
        event["exit"]
            .as_str()
            .is_some_and(|e| e.contains("SIGSEGV")),
        "{body}"
    );
    assert_eq!(
        event["stderr_tail"],
        serde_json::json!(["db connection lost", "about to fail"]),
        "{body}"
    );
    tm.wait_for_log(
        &format!(
            "alert (1 event(s)) sent to webhook {}: 200 OK",
            receiver.url()
        ),
        TIMEOUT,
    );
    // Counted, for /metrics.
    let metrics = crate::support::unix_http::Api::connect(sandbox.file("taskmaster.sock"))
        .get("/metrics")
        .body;
    let sample = format!(
        "taskmaster_alerts_sent_total{{destination=\"webhook {}\",result=\"ok\"}} 1",
        receiver.url()
    );
    assert!(metrics.contains(&sample), "{metrics}");
}

#[test]
fn a_program_that_cannot_start_is_fatal() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let broken = program(
        "broken",
        &yaml_quote(&sandbox.file_str("no-such-program")),
        &["startretries: 0"],
    );
    let _tm = start(&sandbox, &alerting_to(&receiver, "0", ""), &[broken]);
    let body = receiver.wait_for(1)[0].json();
    let event = &body["events"][0];
    assert_eq!(event["event"], "fatal", "{body}");
    assert_eq!(event["process"], "broken", "{body}");
    assert_eq!(event["cause"], "spawn_failed", "{body}");
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("FATAL")),
        "{body}"
    );
}

#[test]
fn a_program_whose_heartbeats_stop_is_hung() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let silent = program(
        "silent",
        &fixture_cmd(&["sleep", "forever"]),
        &[
            "starttime: 0",
            "watchdog: 1s",
            "stoptime: 1",
            "autorestart: never",
        ],
    );
    let _tm = start(&sandbox, &alerting_to(&receiver, "0", ""), &[silent]);
    let body = receiver.wait_for(1)[0].json();
    let event = &body["events"][0];
    assert_eq!(event["event"], "hung", "{body}");
    assert_eq!(event["cause"], "hung", "{body}");
    assert!(
        event["exit"]
            .as_str()
            .is_some_and(|e| e.contains("no heartbeat")),
        "{body}"
    );
}

#[test]
fn crashes_within_the_batch_window_go_out_as_one_message_and_without_one_each_alone() {
    for (batch, posts) in [("5s", 1), ("0", 2)] {
        let sandbox = Sandbox::new();
        let receiver = Receiver::start(Answers::Ok);
        let mut tm = start(
            &sandbox,
            &alerting_to(&receiver, batch, ""),
            &[victim(&sandbox, "one"), victim(&sandbox, "two")],
        );
        let pids = [tm.running_pid("one"), tm.running_pid("two")];
        for pid in pids {
            send_signal(pid, Signal::SEGV).expect("SIGSEGV");
        }
        // Both restarted: both crashes are known to taskmaster.
        new_pid(&sandbox, "one", pids[0]);
        new_pid(&sandbox, "two", pids[1]);
        let posted = receiver.wait_for(posts);
        let events: Vec<Vec<String>> = posted
            .iter()
            .map(|p| {
                let body = p.json();
                let events = body["events"].as_array().cloned().unwrap_or_default();
                events
                    .iter()
                    .map(|e| format!("{} {}", e["process"], e["event"]))
                    .collect()
            })
            .collect();
        let mut all: Vec<String> = events.concat();
        all.sort();
        assert_eq!(
            all,
            ["\"one\" \"crashed\"", "\"two\" \"crashed\""],
            "batch {batch}: {events:?}"
        );
        assert_eq!(events.len(), posts, "batch {batch}: {events:?}");
    }
}

#[test]
fn a_receiver_that_answers_500_gets_the_message_again_and_takes_it() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::FailOnce);
    let mut tm = start(
        &sandbox,
        &alerting_to(&receiver, "0", ""),
        &[victim(&sandbox, "web")],
    );
    send_signal(tm.running_pid("web"), Signal::SEGV).expect("SIGSEGV");
    let posted = receiver.wait_for(2);
    assert_eq!(posted[0].body, posted[1].body, "the same message again");
    tm.wait_for_log("sent to webhook", TIMEOUT);
    assert!(!tm.log().contains("failed after"), "{}", tm.log());
}

#[test]
fn a_receiver_that_never_answers_does_not_hold_up_a_restart_or_a_request() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Never);
    let mut tm = start(
        &sandbox,
        &alerting_to(&receiver, "0", ""),
        &[victim(&sandbox, "web")],
    );
    let pid = tm.running_pid("web");
    let crashed = Instant::now();
    send_signal(pid, Signal::SEGV).expect("SIGSEGV");
    // The first attempt is under way: the receiver holds it unanswered.
    receiver.wait_for(1);
    let restarted = new_pid(&sandbox, "web", pid);
    let status = tm.status("web");
    let took = crashed.elapsed();
    assert_eq!(status.state, "RUNNING", "{status:?}");
    assert_eq!(status.pid(), Some(restarted));
    // An attempt times out after 5 s: the restart and the answer came before it could.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(receiver.posted().len(), 1, "no second attempt yet");
    assert!(!tm.log().contains("failed after"), "{}", tm.log());
}

#[test]
fn syslog_gets_a_datagram_per_event_with_its_severity() {
    let sandbox = Sandbox::new();
    let socket_path = sandbox.file("log.sock");
    let syslog = UnixDatagram::bind(&socket_path).expect("bind syslog");
    syslog.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let head = format!(
        "syslog_socket: {}\nalerting: {{batch: 0, syslog: true}}\n",
        yaml_quote(&socket_path.to_string_lossy())
    );
    let mut tm = start(&sandbox, &head, &[victim(&sandbox, "web")]);
    send_signal(tm.running_pid("web"), Signal::SEGV).expect("SIGSEGV");
    let mut buffer = vec![0u8; 65536];
    let read = syslog.recv(&mut buffer).expect("a datagram");
    let datagram = String::from_utf8_lossy(&buffer[..read]).to_string();
    // Facility daemon (3), severity err (3).
    assert!(datagram.starts_with("<27>"), "{datagram}");
    let daemon = format!(" taskmaster[{}]: web: crashed: ", tm.daemon_pid());
    assert!(datagram.contains(&daemon), "{datagram}");
    assert!(datagram.contains("SIGSEGV"), "{datagram}");
}

/// aiosmtpd on 127.0.0.1:`port`, writing each message to `mail/mail-N.eml` in the sandbox.
fn smtp_server(sandbox: &Sandbox, port: u16) -> Process {
    smtp_server_with(sandbox, port, None)
}

/// [`smtp_server`]; with `starttls`, a folder holding `cert.pem` and `key.pem`, it takes mail
/// only after STARTTLS, and says `250 kept over TLS`.
fn smtp_server_with(sandbox: &Sandbox, port: u16, starttls: Option<&str>) -> Process {
    let folder = sandbox.file_str("mail");
    std::fs::create_dir_all(&folder).expect("a mail folder");
    let (context, answer) = match starttls {
        Some(certs) => (
            format!(
                "ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\ncontext.load_cert_chain(os.path.join({certs:?}, \"cert.pem\"), os.path.join({certs:?}, \"key.pem\"))"
            ),
            "250 kept over TLS",
        ),
        None => ("None".to_string(), "250 kept"),
    };
    let script = format!(
        r#"
import asyncio, itertools, logging, os, ssl, time
from aiosmtpd.controller import Controller
# A client that refuses the certificate is expected in a test: no traceback for it.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
count = itertools.count()
class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = next(count)
        path = os.path.join({folder:?}, "mail-%d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Rcpt: %s\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.content)
        os.rename(path + ".tmp", path)
        return {answer:?}
context = {context}
controller = Controller(Keep(), hostname="127.0.0.1", port={port}, tls_context=context,
                        require_starttls=context is not None)
controller.start()
open(os.path.join({folder:?}, "ready"), "w").close()
while True:
    time.sleep(3600)
"#
    );
    let mut cmd = Command::new(supervisor_venv_bin("python"));
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let server = Process::spawn(cmd);
    sandbox.wait_for_file("mail/ready", TIMEOUT);
    server
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[test]
fn mail_goes_through_smtp_with_from_to_subject_and_the_program() {
    let sandbox = Sandbox::new();
    let port = free_port();
    let _server = smtp_server(&sandbox, port);
    let head = format!(
        "alerting:\n  batch: 0\n  email:\n    smtp: \"127.0.0.1:{port}\"\n    from: taskmaster@example.org\n    to: [ops@example.com, dev@example.com]\n"
    );
    let mut tm = start(&sandbox, &head, &[victim(&sandbox, "web")]);
    let pid = tm.running_pid("web");
    // The mail quotes the last stderr lines: the crash comes once they are written.
    sandbox.wait_for_contents("web.err", |text| text.contains("about to fail"), TIMEOUT);
    send_signal(pid, Signal::SEGV).expect("SIGSEGV");
    let mail = sandbox.wait_for_file("mail/mail-0.eml", TIMEOUT);
    assert!(
        mail.contains("X-Rcpt: ops@example.com,dev@example.com"),
        "{mail}"
    );
    assert!(mail.contains("From: taskmaster@example.org"), "{mail}");
    assert!(
        mail.contains("To: ops@example.com, dev@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: [taskmaster] web crashed on "),
        "{mail}"
    );
    assert!(mail.contains("web: crashed on "), "{mail}");
    assert!(mail.contains("| about to fail"), "{mail}");
    tm.wait_for_log(
        &format!("sent to email smtp 127.0.0.1:{port}: 250 kept"),
        TIMEOUT,
    );
}

#[test]
fn ctl_alerts_test_says_what_each_destination_answered() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let port = free_port();
    let _server = smtp_server(&sandbox, port);
    let socket_path = sandbox.file("log.sock");
    let syslog = UnixDatagram::bind(&socket_path).expect("bind syslog");
    syslog.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let head = format!(
        "syslog_socket: {}\n{}  email: {{smtp: \"127.0.0.1:{port}\", from: tm@example.org, to: ops@example.com}}\n  syslog: true\n",
        yaml_quote(&socket_path.to_string_lossy()),
        alerting_to(&receiver, "1h", "")
    );
    let _tm = start(&sandbox, &head, &[]);
    let ran = sandbox.ctl(&["alerts", "test"]);
    ran.expect_code(0);
    assert_eq!(
        ran.lines(),
        [
            format!("webhook {}: 200 OK", receiver.url()).as_str(),
            &format!("email smtp 127.0.0.1:{port}: 250 kept"),
            "syslog: sent (1 line(s))",
        ],
        "{}",
        ran.output()
    );
    // Each got the test message.
    let body = receiver.wait_for(1)[0].json();
    assert_eq!(body["test"], true, "{body}");
    let mail = sandbox.wait_for_file("mail/mail-0.eml", TIMEOUT);
    assert!(
        mail.contains("Subject: [taskmaster] test message from "),
        "{mail}"
    );
    let mut buffer = vec![0u8; 4096];
    let read = syslog.recv(&mut buffer).expect("a datagram");
    let datagram = String::from_utf8_lossy(&buffer[..read]);
    assert!(datagram.contains("test message from "), "{datagram}");
}

#[test]
fn a_crash_loop_is_one_restart_storm_and_events_choose_what_is_sent() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let looping = program(
        "looping",
        &fixture_cmd(&["eprint", "cannot open config", "exit", "1"]),
        &["starttime: 0", "stderr: looping.err"],
    );
    let _tm = start(
        &sandbox,
        &alerting_to(&receiver, "0", "  events: [restart_storm]\n"),
        &[looping],
    );
    let body = receiver.wait_for(1)[0].json();
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{body}");
    let event = &events[0];
    assert_eq!(event["event"], "restart_storm", "{body}");
    assert_eq!(event["cause"], "exited", "{body}");
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("restarted 5 times in a row")),
        "{body}"
    );
    assert_eq!(event["stderr_tail"][0], "cannot open config", "{body}");
}

#[test]
fn an_output_match_is_sent_as_an_alert() {
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(Answers::Ok);
    let talker = program(
        "talker",
        &fixture_cmd(&[
            "sleep",
            "0.2",
            "eprint",
            "ERROR: Corrupted data 42",
            "sleep",
            "forever",
        ]),
        &[
            "starttime: 0",
            "stderr: talker.err",
            "alerts: [{match: Corrupted data, level: error}]",
        ],
    );
    let _tm = start(
        &sandbox,
        &alerting_to(&receiver, "0", "  events: [alert]\n"),
        &[talker],
    );
    let body = receiver.wait_for(1)[0].json();
    let event = &body["events"][0];
    assert_eq!(event["event"], "alert", "{body}");
    assert_eq!(event["program"], "talker", "{body}");
    assert_eq!(
        event["message"], "alert (error) on stderr: ERROR: Corrupted data 42",
        "{body}"
    );
}

/// A private CA and a certificate it signed for `localhost` and 127.0.0.1, made with the
/// openssl command in `folder`: `ca.pem`, and `cert.pem` with `key.pem` for the servers.
fn private_ca(folder: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let ran = Command::new("openssl")
            .args(args)
            .current_dir(folder)
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs (Debian's openssl)");
        assert!(
            ran.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
    };
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let words = |text: String| text.split(' ').map(str::to_string).collect::<Vec<_>>();
    let ca = words(format!(
        "req -x509 {new_key} -keyout ca.key -out ca.pem -days 2"
    ));
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    openssl(&[&ca[..], &["-subj", "/CN=taskmaster test CA"]].concat());
    let csr = words(format!("req {new_key} -keyout key.pem -out cert.csr"));
    let csr: Vec<&str> = csr.iter().map(String::as_str).collect();
    openssl(&[&csr[..], &["-subj", "/CN=localhost"]].concat());
    std::fs::write(
        folder.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// An HTTPS server on 127.0.0.1:`port` (Python's http.server with `cert.pem`), writing each
/// POST's body to `folder/hook-N.json`.
fn https_receiver(sandbox: &Sandbox, port: u16) -> Process {
    let folder = sandbox.file_str("tls");
    let script = format!(
        r#"
import http.server, itertools, os, ssl
count = itertools.count()
class Keep(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        path = os.path.join({folder:?}, "hook-%d.json" % next(count))
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.rename(path + ".tmp", path)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", {port}), Keep)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join({folder:?}, "cert.pem"), os.path.join({folder:?}, "key.pem"))
server.socket = context.wrap_socket(server.socket, server_side=True)
open(os.path.join({folder:?}, "https-ready"), "w").close()
server.serve_forever()
"#
    );
    let mut cmd = Command::new(supervisor_venv_bin("python"));
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let server = Process::spawn(cmd);
    sandbox.wait_for_file("tls/https-ready", TIMEOUT);
    server
}

#[test]
fn https_webhooks_and_starttls_mail_trust_the_ca_file_and_nothing_else() {
    let servers = Sandbox::new();
    std::fs::create_dir_all(servers.file("tls")).expect("a tls folder");
    private_ca(&servers.file("tls"));
    let (https_port, smtp_port) = (free_port(), free_port());
    let _https = https_receiver(&servers, https_port);
    let _smtp = smtp_server_with(&servers, smtp_port, Some(&servers.file_str("tls")));
    // `localhost` for the webhook, an address for the mail: the certificate names both.
    let alerting = |ca_file: &str| {
        format!(
            "alerting:\n  batch: 0\n{ca_file}  webhooks:\n    - url: \"https://localhost:{https_port}/hook\"\n  email:\n    smtp: \"127.0.0.1:{smtp_port}\"\n    tls: starttls\n    from: tm@example.org\n    to: [ops@example.com]\n"
        )
    };

    // Trusting the private CA: both destinations take the message, the mail after STARTTLS
    // (the server refuses mail before it).
    let trusting = Sandbox::new();
    let ca_file = format!(
        "  ca_file: {}\n",
        yaml_quote(&servers.file_str("tls/ca.pem"))
    );
    let mut tm = start(&trusting, &alerting(&ca_file), &[victim(&trusting, "web")]);
    let ran = trusting.ctl(&["alerts", "test"]);
    ran.expect_code(0);
    assert_eq!(
        ran.lines(),
        [
            format!("webhook https://localhost:{https_port}/hook: 200 OK").as_str(),
            &format!("email smtp 127.0.0.1:{smtp_port}: 250 kept over TLS"),
        ],
        "{}",
        ran.output()
    );
    let body: Value = serde_json::from_str(&servers.wait_for_file("tls/hook-0.json", TIMEOUT))
        .expect("a JSON body");
    assert_eq!(body["test"], true, "{body}");
    let mail = servers.wait_for_file("mail/mail-0.eml", TIMEOUT);
    assert!(
        mail.contains("Subject: [taskmaster] test message from "),
        "{mail}"
    );
    // And a real crash goes the same way.
    send_signal(tm.running_pid("web"), Signal::SEGV).expect("SIGSEGV");
    let crash = servers.wait_for_file("tls/hook-1.json", TIMEOUT);
    assert!(crash.contains("\"crashed\""), "{crash}");
    tm.wait_for_log(
        &format!("sent to email smtp 127.0.0.1:{smtp_port}: 250 kept over TLS"),
        TIMEOUT,
    );

    // Without it, the system's roots do not know the CA: both refuse to talk, and say why.
    let untrusting = Sandbox::new();
    let _tm = start(&untrusting, &alerting(""), &[]);
    let ran = untrusting.ctl(&["alerts", "test"]);
    assert_ne!(ran.code, Some(0), "{}", ran.output());
    let output = ran.output();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    for line in lines {
        assert!(line.contains("UnknownIssuer"), "{}", ran.output());
    }
    let received = std::fs::read_dir(servers.file("tls"))
        .expect("the tls folder")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("hook-"))
        .count();
    assert_eq!(received, 2, "nothing more reached the receiver");
}
