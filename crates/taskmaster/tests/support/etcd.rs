//! A real etcd for the tests of taskmaster's clusters, and a TCP proxy to cut a node off from it.
//!
//! Theory of operation. [`binary`] finds etcd 3.4: `$TASKMASTER_ETCD`, else Debian's
//! `etcd-server` unpacked (never installed: installing starts a daemon on etcd's default port)
//! into `target/etcd/`, which the first test to need it downloads with `apt-get download`.
//!
//! [`EtcdCluster::start`] runs 1 or 3 members on 127.0.0.1, each a [`Process`] (so each is
//! SIGKILLed by its pid when the cluster drops, even when the test panics), with its data in
//! `etcd-N/` and its output in `etcd-N.log` of the folder it is given. Ports are free ones the
//! kernel picks, never etcd's default 2379/2380; since another test may take a port between
//! the pick and etcd's bind, a start whose member failed with `address already in use` is
//! retried, a bounded number of times, on new ports. `start` returns once every member answers
//! `/health` with `{"health":"true"}`, which etcd only does once the cluster has a leader: about
//! 0.2 s for one member, 0.3 to 2.5 s for three (etcd 3.4 spends up to a second or two asking
//! its peers, not serving yet, whether the cluster exists). Elections are fast (50 ms
//! heartbeats, 500 ms election timeout): a new leader is known 0.5 to 1 s after the old one is
//! killed.
//!
//! The tests talk to etcd through its JSON gateway ([`Gateway`]: POST `/v3/...`, keys and values
//! in base64) over a plain HTTP/1.0 connection of their own: a test of taskmaster's etcd client
//! must not read etcd through that client. The cluster's own [`EtcdCluster::get`],
//! [`EtcdCluster::put`]... try each running member in turn until one answers, up to [`TIMEOUT`],
//! so they work across a leader's death; a put or delete may then be applied twice, which is
//! harmless for the values tests write.
//!
//! [`Proxy`] stands between a client and one endpoint, and plays the network: [`Proxy::pass`]
//! forwards, [`Proxy::freeze`] is a partition, [`Proxy::reset`] kills every connection with a
//! TCP RST. A freeze holds the bytes (see [`Proxy`]).
//!
//! As in the rest of the harness, no sleep decides a result and every loop is bounded, by a
//! deadline, a count, or (the proxy's threads) a flag its `Drop` sets.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{json, Value};

use crate::support::unix_http::dechunk;
use crate::support::{
    is_alive, run_to_completion, send_signal, wait_until_or_none, Process, TIMEOUT,
};

/// The variable naming an etcd binary to use instead of the unpacked Debian one.
pub const ETCD_VARIABLE: &str = "TASKMASTER_ETCD";

/// The Debian package whose etcd is unpacked into the target folder.
const PACKAGE: &str = "etcd-server";

/// The deadline of `apt-get download`: a download, not a hang, may take longer than [`TIMEOUT`].
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// How many times [`EtcdCluster::start`] tries new ports when one it picked was taken.
const START_ATTEMPTS: usize = 5;

/// etcd's Raft timing, in milliseconds: a heartbeat every 50 ms, an election after 500 ms
/// without one (etcd's defaults are 100 and 1000).
const HEARTBEAT_MS: u32 = 50;
const ELECTION_MS: u32 = 500;

/// The deadline of one gateway request of the cluster's own reads and writes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The deadline of one probe (`/health`, `maintenance/status`) while polling for a condition.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline of the first `/health` probes of a starting member (see `try_start`).
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// The pause between two looks of the proxy's threads at their flags and sockets.
const PROXY_POLL: Duration = Duration::from_millis(20);

/// How many lines of each member's log a failure shows.
const LOG_TAIL: usize = 60;

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

/// The etcd binary: `$TASKMASTER_ETCD` if set, else `usr/bin/etcd` of Debian's `etcd-server`
/// unpacked in `<target>/etcd/` (`<target>` is `$CARGO_TARGET_DIR`, a relative one taken from the
/// workspace, else the workspace's `target/`). When missing, it is made once per test process:
/// `apt-get download etcd-server` in a temporary folder of `<target>/etcd-deb/` (unless a
/// package is kept there from before), `dpkg -x` into that folder, and a rename into place, so
/// that a test process doing the same at the same time finds either no tree or a whole one. Fails the test, saying what to run by hand,
/// when that is impossible.
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| match std::env::var_os(ETCD_VARIABLE) {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "{ETCD_VARIABLE}={} is not a file: unset it, or point it at an etcd binary",
                    path.display()
                );
                path
            }
            None => unpacked_binary(),
        })
        .clone()
}

/// The workspace's target folder.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        // `join` keeps an absolute folder as it is.
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// `<target>/etcd/usr/bin/etcd`, downloaded and unpacked first if missing.
fn unpacked_binary() -> PathBuf {
    let target = target_dir();
    let root = target.join("etcd");
    let etcd = root.join("usr/bin/etcd");
    if etcd.is_file() {
        return etcd;
    }
    let debs = target.join("etcd-deb");
    let by_hand = format!(
        "the tests need etcd 3.4 unpacked from Debian's {PACKAGE} (not installed: that starts a \
         daemon). By hand: `mkdir -p {debs} && cd {debs} && apt-get download {PACKAGE} && dpkg -x \
         {PACKAGE}_*.deb {root}` (run `apt-get update` first if apt knows no {PACKAGE}), or set \
         {ETCD_VARIABLE} to an etcd binary",
        debs = debs.display(),
        root = root.display(),
    );
    for tool in ["apt-get", "dpkg"] {
        assert!(in_path(tool), "no {tool} in $PATH: {by_hand}");
    }
    fs::create_dir_all(&debs)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}\n{by_hand}", debs.display()));
    let work = tempfile::Builder::new()
        .prefix("download-")
        .tempdir_in(&debs)
        .unwrap_or_else(|e| panic!("cannot create a folder in {}: {e}", debs.display()));

    // A package an earlier download kept is whole (it was renamed into place) and as good.
    let deb = match find_deb(&debs) {
        Some(deb) => deb,
        None => download_deb(work.path(), &by_hand),
    };

    let unpacked = work.path().join("root");
    let mut unpack = Command::new("dpkg");
    unpack.arg("-x").arg(&deb).arg(&unpacked);
    let ran = run_to_completion(unpack, TIMEOUT);
    if !ran.status.success() || !unpacked.join("usr/bin/etcd").is_file() {
        panic!(
            "`dpkg -x {}` failed ({}) or gave no usr/bin/etcd:\n{}\n{by_hand}",
            deb.display(),
            ran.status,
            String::from_utf8_lossy(&ran.stderr),
        );
    }
    // A whole tree appears at once. Another test process may have been first: the rename then
    // fails (the folder exists and is not empty), and its tree is as good as ours.
    if let Err(e) = fs::rename(&unpacked, &root) {
        if !etcd.is_file() {
            panic!(
                "cannot move {} to {}: {e}\n{by_hand}",
                unpacked.display(),
                root.display()
            );
        }
    }
    // Kept for the next unpacking (after a `cargo clean` of `etcd/` alone, say); the temporary
    // folder goes.
    if deb.starts_with(work.path()) {
        if let Some(name) = deb.file_name() {
            let _ = fs::rename(&deb, debs.join(name));
        }
    }
    etcd
}

/// Whether `$PATH` has a program `name`.
fn in_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// The `etcd-server_*.deb` in `folder`, if there is one.
fn find_deb(folder: &Path) -> Option<PathBuf> {
    fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with(&format!("{PACKAGE}_")) && name.ends_with(".deb")
                })
        })
}

/// `apt-get download etcd-server` in `folder`; the path of the package it leaves.
fn download_deb(folder: &Path, by_hand: &str) -> PathBuf {
    let mut download = Command::new("apt-get");
    download.args(["download", PACKAGE]).current_dir(folder);
    let ran = run_to_completion(download, DOWNLOAD_TIMEOUT);
    if !ran.status.success() {
        panic!(
            "`apt-get download {PACKAGE}` failed ({}):\n{}{}\n{by_hand}",
            ran.status,
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr),
        );
    }
    find_deb(folder)
        .unwrap_or_else(|| panic!("`apt-get download {PACKAGE}` left no .deb\n{by_hand}"))
}

/// A command running `binary()` with none of the `ETCD_*` variables of the environment the
/// tests run in (etcd reads its flags from them too).
fn etcd_command() -> Command {
    let mut cmd = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// `--unsafe-no-fsync` if this etcd accepts it (3.4.23 does, though its `--help` does not list
/// it): the tests' data need not survive a crash of the machine, and fsyncs are most of the cost
/// of a write. Asked once per test process, by running `etcd --unsafe-no-fsync --version`, which
/// an etcd without the flag refuses.
fn fsync_flags() -> &'static [&'static str] {
    static FLAGS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let mut probe = etcd_command();
        probe.args(["--unsafe-no-fsync", "--version"]);
        if run_to_completion(probe, TIMEOUT).status.success() {
            vec!["--unsafe-no-fsync"]
        } else {
            Vec::new()
        }
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP and base64
// ---------------------------------------------------------------------------------------------

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The body, de-chunked, lossily decoded.
    pub body: String,
}

/// The bytes of an HTTP/1.0 request with a JSON `body` (none when empty), which the server
/// answers and then closes the connection after.
pub fn request_bytes(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A whole answer, read until the server closed the connection; `None` if it is not HTTP.
pub fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if !head.starts_with("http/") {
        return None;
    }
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .lines()
        .any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"));
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest).0
    } else {
        rest.to_vec()
    };
    Some(Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends one request to `addr` on a new connection and reads the answer, all within `timeout`.
/// Errors: the connection's own (refused, reset...), `TimedOut` when no whole answer came in
/// time, `UnexpectedEof` when the connection closed with no answer at all, `InvalidData` when
/// what came is not HTTP.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<Reply> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&request_bytes(method, path, body))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    // Bounded by the deadline: each read waits at most until then.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("{method} {path} to {addr}: no whole answer within {timeout:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A read timeout shows as WouldBlock on Unix; the next round reports it.
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if raw.is_empty() {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            format!("{method} {path} to {addr}: closed with no answer"),
        ));
    }
    parse_reply(&raw).ok_or_else(|| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "{method} {path} to {addr}: not an HTTP answer: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        )
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in standard base64, padded, as etcd's gateway writes `bytes` fields.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(BASE64[(group >> (18 - 6 * i)) as usize & 63]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// The bytes of standard base64 `text`, padded or not; `None` if it holds another character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let value = BASE64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6 | value) & 0xffff;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    Some(bytes)
}

/// A number of the gateway's JSON: 64-bit ones are strings there; an absent one is 0 (the
/// gateway leaves zero values out).
fn json_u64(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        Some(value) => value.as_u64().unwrap_or(0),
        None => 0,
    }
}

/// The end of the range of every key starting with `prefix`: the prefix with its last byte
/// below 0xff plus one, after dropping the 0xff ones; `\0` (to the end) when there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

// ---------------------------------------------------------------------------------------------
// The JSON gateway
// ---------------------------------------------------------------------------------------------

/// What a member's `maintenance/status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// The answering member's id.
    pub member_id: u64,
    /// The leader's id as this member knows it; 0 when it knows none.
    pub leader: u64,
    pub raft_term: u64,
}

/// etcd's JSON gateway at one address (a member's client port, or a [`Proxy`] in front of
/// one): gRPC's requests as JSON, POSTed to `/v3/SERVICE/METHOD` (3.4 also serves
/// `/v3beta/`), each on a new connection. Every call has a deadline and returns the error
/// rather than failing the test, for tests that expect failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway {
    addr: SocketAddr,
    timeout: Duration,
}

impl Gateway {
    /// The gateway at `addr`, each call with a deadline of 5 s.
    pub fn new(addr: SocketAddr) -> Gateway {
        Gateway {
            addr,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same gateway, each call with a deadline of `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Gateway {
        Gateway { timeout, ..self }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// POSTs `body` to `/v3/METHOD` (`kv/range`, `maintenance/status`...) and returns the JSON
    /// answer; an answer other than 200 is an error naming etcd's message.
    pub fn call(&self, method: &str, body: &Value) -> io::Result<Value> {
        let path = format!("/v3/{method}");
        let reply = http(self.addr, "POST", &path, &body.to_string(), self.timeout)?;
        if reply.status != 200 {
            return Err(io::Error::other(format!(
                "POST {path} to {}: HTTP {}: {}",
                self.addr, reply.status, reply.body
            )));
        }
        serde_json::from_str(&reply.body).map_err(|e| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "POST {path} to {}: not JSON ({e}): {}",
                    self.addr, reply.body
                ),
            )
        })
    }

    /// Whether `GET /health` says `{"health":"true"}`: the member serves, and its cluster has a
    /// leader.
    pub fn health(&self) -> io::Result<bool> {
        let reply = http(self.addr, "GET", "/health", "", self.timeout)?;
        let health: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        Ok(reply.status == 200 && health["health"] == "true")
    }

    /// `maintenance/status`.
    pub fn status(&self) -> io::Result<MemberStatus> {
        let answer = self.call("maintenance/status", &json!({}))?;
        Ok(MemberStatus {
            member_id: json_u64(answer.pointer("/header/member_id")),
            leader: json_u64(answer.get("leader")),
            raft_term: json_u64(answer.get("raftTerm")),
        })
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &str, value: &str) -> io::Result<()> {
        let body = json!({
            "key": base64_encode(key.as_bytes()),
            "value": base64_encode(value.as_bytes()),
        });
        self.call("kv/put", &body).map(drop)
    }

    /// The value of `key`, if it has one.
    pub fn get(&self, key: &str) -> io::Result<Option<String>> {
        let body = json!({ "key": base64_encode(key.as_bytes()) });
        Ok(self
            .range(&body)?
            .into_iter()
            .next()
            .map(|(_, value)| value))
    }

    /// Every key starting with `prefix` and its value, by key.
    pub fn get_prefix(&self, prefix: &str) -> io::Result<Vec<(String, String)>> {
        self.range(&prefix_range(prefix))
    }

    /// Deletes `key`; returns how many keys went (0 or 1).
    pub fn delete(&self, key: &str) -> io::Result<u64> {
        let body = json!({ "key": base64_encode(key.as_bytes()) });
        let answer = self.call("kv/deleterange", &body)?;
        Ok(json_u64(answer.get("deleted")))
    }

    /// Deletes every key starting with `prefix`; returns how many went.
    pub fn delete_prefix(&self, prefix: &str) -> io::Result<u64> {
        let answer = self.call("kv/deleterange", &prefix_range(prefix))?;
        Ok(json_u64(answer.get("deleted")))
    }

    /// The keys and values of a `kv/range` answer, decoded.
    fn range(&self, body: &Value) -> io::Result<Vec<(String, String)>> {
        let answer = self.call("kv/range", body)?;
        let decode = |kv: &Value, field: &str| {
            let text = kv[field].as_str().unwrap_or("");
            base64_decode(text)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .ok_or_else(|| {
                    io::Error::new(
                        ErrorKind::InvalidData,
                        format!("kv/range: {field} is not base64: {answer}"),
                    )
                })
        };
        let Some(kvs) = answer.get("kvs").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        kvs.iter()
            .map(|kv| Ok((decode(kv, "key")?, decode(kv, "value")?)))
            .collect()
    }
}

/// The `key` and `range_end` of every key starting with `prefix` (every key for "").
fn prefix_range(prefix: &str) -> Value {
    let key = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    json!({
        "key": base64_encode(&key),
        "range_end": base64_encode(&prefix_end(prefix.as_bytes())),
    })
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// One member of an [`EtcdCluster`].
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    log: PathBuf,
    process: Process,
    /// Set by [`EtcdCluster::kill`]; the process is reaped then.
    killed: bool,
    /// Its etcd member id, learned once the cluster is up.
    id: u64,
}

impl Member {
    fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }
}

/// Why a start attempt must be tried again on new ports.
struct PortTaken(String);

/// An etcd cluster of this test, on loopback (see the module docs). Dropped, every member is
/// SIGKILLed by its pid; its data stays in the folder it was given.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    token: String,
    members: Vec<Member>,
    /// Set once a failure showed the logs, so that `Drop` does not show them again.
    reported: AtomicBool,
}

impl EtcdCluster {
    /// Starts `members` members (1 or 3; any number from 1 works) in `sandbox_dir`, and waits
    /// until each is healthy. Fails the test, with the members' logs, if they are not within
    /// [`TIMEOUT`], or if a member exits for another reason than a port taken.
    pub fn start(sandbox_dir: &Path, members: usize) -> EtcdCluster {
        assert!(members >= 1, "an etcd cluster has at least one member");
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match EtcdCluster::try_start(sandbox_dir, members, attempt) {
                Ok(cluster) => return cluster,
                Err(PortTaken(why)) => failures.push(format!("attempt {attempt}: {why}")),
            }
        }
        panic!(
            "etcd did not start in {START_ATTEMPTS} attempts, a port it was given being taken \
             each time:\n{}",
            failures.join("\n")
        );
    }

    fn try_start(dir: &Path, count: usize, attempt: usize) -> Result<EtcdCluster, PortTaken> {
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "taskmaster-test-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::SeqCst)
        );
        let ports = free_ports(2 * count);
        let (client_ports, peer_ports) = ports.split_at(count);
        let names: Vec<String> = (0..count).map(|i| format!("member-{i}")).collect();
        let initial_cluster = names
            .iter()
            .zip(peer_ports)
            .map(|(name, port)| format!("{name}=http://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");

        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let (client_port, peer_port) = (client_ports[i], peer_ports[i]);
            let data_dir = dir.join(format!("etcd-{i}"));
            // What an earlier attempt left would be another cluster's.
            let _ = fs::remove_dir_all(&data_dir);
            let client_url = format!("http://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let mut cmd = etcd_command();
            cmd.arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
                .args(["--election-timeout", &ELECTION_MS.to_string()])
                .args(fsync_flags());
            let log = dir.join(format!("etcd-{i}.log"));
            let mut file = File::options()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
            // Each attempt appends, after a header line: a failing test shows them all.
            writeln!(file, "=== attempt {attempt}: {cmd:?}")
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", log.display()));
            let stderr = file
                .try_clone()
                .unwrap_or_else(|e| panic!("cannot dup {}: {e}", log.display()));
            cmd.stdout(file).stderr(stderr);
            members.push(Member {
                name: name.clone(),
                client_port,
                peer_port,
                log,
                process: Process::spawn(cmd),
                killed: false,
                id: 0,
            });
        }
        let mut cluster = EtcdCluster {
            dir: dir.to_path_buf(),
            token,
            members,
            reported: AtomicBool::new(false),
        };

        // A request sent while a member listens but does not serve yet is never answered, while
        // one sent once it serves is in a few ms: probes start short, and double each time one
        // times out (a loaded machine), up to PROBE_TIMEOUT.
        let mut probe_timeout = FIRST_PROBE_TIMEOUT;
        let outcome = wait_until_or_none(TIMEOUT, || {
            for (i, member) in cluster.members.iter_mut().enumerate() {
                if let Some(status) = member.process.try_status() {
                    return Some(Err((i, status)));
                }
            }
            for member in &cluster.members {
                let gateway = Gateway::new(member.client_addr()).with_timeout(probe_timeout);
                match gateway.health() {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => {
                        if e.kind() == ErrorKind::TimedOut {
                            probe_timeout = (probe_timeout * 2).min(PROBE_TIMEOUT);
                        }
                        return None;
                    }
                }
            }
            Some(Ok(()))
        });
        match outcome {
            Some(Ok(())) => {}
            Some(Err((i, status))) => {
                let log = cluster.log(i);
                let this_attempt = log.rsplit("=== attempt").next().unwrap_or("");
                if let Some(line) = this_attempt
                    .lines()
                    .find(|line| line.contains("address already in use"))
                {
                    // Dropping `cluster` kills the others.
                    return Err(PortTaken(format!("member {i}: {}", line.trim())));
                }
                cluster.fail(&format!(
                    "etcd member {i} exited with {status} while starting"
                ));
            }
            None => cluster.fail(&format!("etcd not healthy within {TIMEOUT:?}")),
        }

        for i in 0..count {
            match cluster.gateway(i).status() {
                Ok(status) if status.member_id != 0 => cluster.members[i].id = status.member_id,
                Ok(status) => cluster.fail(&format!("member {i} gave no member id: {status:?}")),
                Err(e) => cluster.fail(&format!("member {i} status: {e}")),
            }
        }
        Ok(cluster)
    }

    /// How many members the cluster was started with (killed ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The client URL of every member (`http://127.0.0.1:PORT`), killed ones included, for a
    /// configuration's `etcd:` list.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.client_addr(i))
    }

    /// The client port of member `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.member(i).client_port
    }

    /// The client address of member `i`, for a [`Proxy`] in front of it.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.member(i).client_addr()
    }

    /// The peer port of member `i`.
    pub fn peer_port(&self, i: usize) -> u16 {
        self.member(i).peer_port
    }

    /// The pid of member `i`'s etcd.
    pub fn pid(&self, i: usize) -> u32 {
        self.member(i).process.pid()
    }

    /// The etcd member id of member `i`.
    pub fn member_id(&self, i: usize) -> u64 {
        self.member(i).id
    }

    /// The gateway of member `i`, each call with a deadline of 5 s.
    pub fn gateway(&self, i: usize) -> Gateway {
        Gateway::new(self.client_addr(i))
    }

    /// Whether member `i` runs: neither killed nor exited.
    pub fn is_running(&self, i: usize) -> bool {
        let member = self.member(i);
        !member.killed && is_alive(member.process.pid())
    }

    /// The members that run, by index.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_running(i)).collect()
    }

    /// SIGKILLs member `i` by its pid, and waits until it is dead (and reaped).
    pub fn kill(&mut self, i: usize) {
        let member = &mut self.members[i];
        let pid = member.process.pid();
        if member.process.try_status().is_none() {
            if let Err(e) = send_signal(pid, Signal::KILL) {
                panic!("cannot SIGKILL etcd member {i} (pid {pid}): {e}");
            }
        }
        member.process.wait_exit(TIMEOUT);
        member.killed = true;
    }

    /// The leader, if the running members agree on one: a majority of all the members (killed
    /// ones count, as for Raft) name it, and it runs and names itself. `None` during an
    /// election, or while a killed leader is still believed in.
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<(usize, MemberStatus)> = self
            .running()
            .into_iter()
            .filter_map(|i| {
                let gateway = self.gateway(i).with_timeout(PROBE_TIMEOUT);
                Some((i, gateway.status().ok()?))
            })
            .collect();
        let mut votes: HashMap<u64, usize> = HashMap::new();
        for (_, status) in &statuses {
            if status.leader != 0 {
                *votes.entry(status.leader).or_default() += 1;
            }
        }
        let quorum = self.len() / 2 + 1;
        let (&leader_id, _) = votes.iter().find(|&(_, &count)| count >= quorum)?;
        let leader = self.members.iter().position(|m| m.id == leader_id)?;
        let names_itself = statuses
            .iter()
            .any(|&(i, status)| i == leader && status.leader == leader_id);
        names_itself.then_some(leader)
    }

    /// Waits until [`EtcdCluster::leader`] names one, and returns it.
    pub fn wait_for_leader(&self) -> usize {
        wait_until_or_none(TIMEOUT, || self.leader())
            .unwrap_or_else(|| self.fail(&format!("no etcd leader within {TIMEOUT:?}")))
    }

    /// The value of `key`, if it has one; read from the first running member that answers.
    pub fn get(&self, key: &str) -> Option<String> {
        self.on_any_member(&format!("get {key:?}"), |g| g.get(key))
    }

    /// Every key starting with `prefix` and its value, by key.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.on_any_member(&format!("get prefix {prefix:?}"), |g| g.get_prefix(prefix))
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &str, value: &str) {
        self.on_any_member(&format!("put {key:?}"), |g| g.put(key, value));
    }

    /// Deletes `key`; returns whether it was there (a delete retried after a first try that
    /// was applied but not answered says `false`).
    pub fn delete(&self, key: &str) -> bool {
        self.on_any_member(&format!("delete {key:?}"), |g| g.delete(key)) > 0
    }

    /// Everything member `i` wrote, every start attempt's.
    pub fn log(&self, i: usize) -> String {
        let path = &self.member(i).log;
        fs::read_to_string(path)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
    }

    /// The last lines of every member's log, for a failure's message.
    pub fn diagnostics(&self) -> String {
        let mut text = String::new();
        for (i, member) in self.members.iter().enumerate() {
            let log = self.log(i);
            let lines: Vec<&str> = log.lines().collect();
            let state = if member.killed {
                "killed".to_owned()
            } else if is_alive(member.process.pid()) {
                format!("running, pid {}", member.process.pid())
            } else {
                format!("exited, pid {}", member.process.pid())
            };
            let _ = writeln!(
                text,
                "--- etcd member {i} ({state}, client port {}, peer port {}): last {} lines of \
                 {} ---\n{}",
                member.client_port,
                member.peer_port,
                LOG_TAIL.min(lines.len()),
                member.log.display(),
                lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n"),
            );
        }
        text
    }

    /// `f` on each running member's gateway in turn until one succeeds, for up to [`TIMEOUT`].
    fn on_any_member<T>(&self, what: &str, f: impl Fn(&Gateway) -> io::Result<T>) -> T {
        let mut last_error = String::from("no member runs");
        let found = wait_until_or_none(TIMEOUT, || {
            for i in self.running() {
                match f(&self.gateway(i)) {
                    Ok(value) => return Some(value),
                    Err(e) => last_error = format!("member {i}: {e}"),
                }
            }
            None
        });
        found.unwrap_or_else(|| {
            self.fail(&format!(
                "etcd {what} failed for {TIMEOUT:?}; last error: {last_error}"
            ))
        })
    }

    fn member(&self, i: usize) -> &Member {
        self.members
            .get(i)
            .unwrap_or_else(|| panic!("no etcd member {i}: the cluster has {}", self.members.len()))
    }

    fn fail(&self, message: &str) -> ! {
        self.reported.store(true, Ordering::SeqCst);
        panic!("{message}\n{}", self.diagnostics())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        if thread::panicking() && !self.reported.load(Ordering::SeqCst) {
            eprintln!("{}", self.diagnostics());
        }
        // The members' `Process`es drop next: each etcd is SIGKILLed by its pid.
    }
}

/// `count` distinct free ports of 127.0.0.1, none of them etcd's default 2379 and 2380: each
/// bound to learn it, all held until all are known, then released for etcd to bind.
fn free_ports(count: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut refused = Vec::new();
    // Bounded: the kernel gives 2379 or 2380 at most twice while they are held.
    for _ in 0..count + 2 {
        if held.len() == count {
            break;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("the address of a bound port")
            .port();
        if port == 2379 || port == 2380 {
            refused.push(listener);
        } else {
            held.push((port, listener));
        }
    }
    assert_eq!(held.len(), count, "cannot find {count} free ports");
    held.into_iter().map(|(port, _)| port).collect()
}

// ---------------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------------

/// What a [`Proxy`] does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Freeze,
    Reset,
}

/// What a proxy's threads share.
#[derive(Debug)]
struct ProxyShared {
    upstream: SocketAddr,
    /// Read-locked by a thread for as long as it forwards a chunk, so that when a mode setter
    /// returns no thread is still forwarding under the old mode.
    mode: RwLock<Mode>,
    /// Set on drop: every thread ends.
    stop: AtomicBool,
    connections: Mutex<Vec<Connection>>,
}

/// A connection's thread, and the flag that resets it.
#[derive(Debug)]
struct Connection {
    reset: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A TCP proxy on 127.0.0.1 in front of one `upstream` address, that plays the network between
/// a client and an etcd member. Its mode changes at any time:
///
/// - [`Proxy::pass`] (and [`Proxy::heal`]): bytes go both ways.
/// - [`Proxy::freeze`]: a partition. Every connection stays open but no byte goes either way;
///   new connections are accepted (the kernel does that anyway) but not connected upstream.
///   Bytes are *held*, not dropped: the proxy stops reading, so they wait in the kernel's
///   buffers, and [`Proxy::heal`] delivers them, as TCP's retransmissions do after a partition
///   shorter than their timeout. A connection is never cut mid-stream. To play a partition
///   long enough for connections to die, call [`Proxy::reset`] before [`Proxy::heal`].
/// - [`Proxy::reset`]: every connection is closed at once with a TCP RST (SO_LINGER 0) on both
///   sides, and so is every new one, until the mode changes again.
///
/// Threads: one accepting, one per connection (its client-to-upstream direction, after
/// connecting upstream) and one for each connection's other direction. Each looks at its flags
/// at least every 20 ms, and all end when the proxy drops.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `upstream` on a free port of 127.0.0.1, passing.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy's port");
        listener
            .set_nonblocking(true)
            .expect("make the proxy's listener non-blocking");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(ProxyShared {
            upstream,
            mode: RwLock::new(Mode::Pass),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_connections(listener, shared))
        };
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a configuration's `etcd:` list.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// How many client connections are open through it now.
    pub fn open_connections(&self) -> usize {
        self.shared
            .connections
            .lock()
            .expect("proxy connections lock")
            .iter()
            .filter(|connection| !connection.thread.is_finished())
            .count()
    }

    /// Forwards both ways, what was held while frozen first.
    pub fn pass(&self) {
        self.set_mode(Mode::Pass);
    }

    /// Forwards nothing, and holds every connection open (see [`Proxy`]).
    pub fn freeze(&self) {
        self.set_mode(Mode::Freeze);
    }

    /// Resets every connection, and every new one, until the mode changes. Returns once each
    /// connection open before is closed.
    pub fn reset(&self) {
        self.set_mode(Mode::Reset);
        let connections = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .expect("proxy connections lock"),
        );
        for connection in &connections {
            connection.reset.store(true, Ordering::SeqCst);
        }
        join_connections(connections);
    }

    /// The partition is over: [`Proxy::pass`].
    pub fn heal(&self) {
        self.pass();
    }

    /// Once this returns, every thread forwards under `mode`: the write lock waits for the
    /// chunks being forwarded under the old one.
    fn set_mode(&self, mode: Mode) {
        *self.shared.mode.write().expect("proxy mode lock") = mode;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            if acceptor.join().is_err() && !thread::panicking() {
                panic!("the proxy's accepting thread panicked");
            }
        }
        // The acceptor is gone: no connection is added any more.
        let connections = self
            .shared
            .connections
            .lock()
            .map(|mut connections| std::mem::take(&mut *connections))
            .unwrap_or_default();
        join_connections(connections);
    }
}

/// Waits for each connection's thread, which ends within a poll of its flag being set.
fn join_connections(connections: Vec<Connection>) {
    for connection in connections {
        if connection.thread.join().is_err() && !thread::panicking() {
            panic!("a proxy connection thread panicked");
        }
    }
}

/// The accepting thread: until the proxy drops, each new connection is reset at once or
/// handed to a thread of its own.
fn accept_connections(listener: TcpListener, shared: Arc<ProxyShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => admit(client, &shared),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                thread::sleep(PROXY_POLL);
            }
            Err(e) => {
                eprintln!("proxy {:?}: accept: {e}", listener.local_addr());
                thread::sleep(PROXY_POLL);
            }
        }
    }
}

fn admit(client: TcpStream, shared: &Arc<ProxyShared>) {
    let mut connections = shared.connections.lock().expect("proxy connections lock");
    // Finished threads are joined; dropping their handles is enough.
    connections.retain(|connection| !connection.thread.is_finished());
    // Read under the connections' lock: `reset` sets the mode before taking that lock, so a
    // connection either sees the reset mode here or is in the list `reset` takes.
    let mode = *shared.mode.read().expect("proxy mode lock");
    if mode == Mode::Reset {
        send_reset(&[&client]);
        return;
    }
    let reset = Arc::new(AtomicBool::new(false));
    let thread = {
        let (shared, reset) = (shared.clone(), reset.clone());
        thread::spawn(move || relay(client, shared, reset))
    };
    connections.push(Connection { reset, thread });
}

/// Makes closing each socket send a RST rather than a FIN: it is closed when its last
/// descriptor is.
fn send_reset(sockets: &[&TcpStream]) {
    for socket in sockets {
        let _ = rustix::net::sockopt::set_socket_linger(socket, Some(Duration::ZERO));
    }
}

/// A connection's thread: connects upstream once passing, then forwards both ways (the other
/// direction on a second thread) until both ends closed, an error, a reset or the proxy's end.
fn relay(client: TcpStream, shared: Arc<ProxyShared>, reset: Arc<AtomicBool>) {
    let ending = || shared.stop.load(Ordering::SeqCst) || reset.load(Ordering::SeqCst);
    // A connection made while frozen waits, as its SYN would, until the partition heals.
    let upstream = loop {
        if ending() {
            send_reset(&[&client]);
            return;
        }
        let mode = shared.mode.read().expect("proxy mode lock");
        match *mode {
            Mode::Pass => break TcpStream::connect_timeout(&shared.upstream, REQUEST_TIMEOUT),
            Mode::Freeze => {
                drop(mode);
                thread::sleep(PROXY_POLL);
            }
            Mode::Reset => {
                send_reset(&[&client]);
                return;
            }
        }
    };
    let Ok(upstream) = upstream else {
        // Upstream is down: the client sees its connection reset.
        send_reset(&[&client]);
        return;
    };
    for socket in [&client, &upstream] {
        let _ = socket.set_nodelay(true);
        socket
            .set_read_timeout(Some(PROXY_POLL))
            .expect("set a proxy socket's read timeout");
        socket
            .set_write_timeout(Some(PROXY_POLL))
            .expect("set a proxy socket's write timeout");
    }
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let broken = Arc::new(AtomicBool::new(false));
    let back = {
        let (from, to) = (upstream.clone(), client.clone());
        let (shared, reset, broken) = (shared.clone(), reset.clone(), broken.clone());
        thread::spawn(move || pump(&from, &to, &shared, &reset, &broken))
    };
    pump(&client, &upstream, &shared, &reset, &broken);
    let back_panicked = back.join().is_err();
    if broken.load(Ordering::SeqCst) || ending() {
        send_reset(&[&*client, &*upstream]);
    }
    assert!(!back_panicked, "a proxy forwarding thread panicked");
    // The last descriptors of both sockets close here.
}

/// Forwards `from` to `to` while passing; holds while frozen. Ends at `from`'s end (passed on
/// as a half-close of `to`), at an error (`broken`: the relay resets both ends), or when the
/// connection is reset or the proxy stopped.
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    shared: &ProxyShared,
    reset: &AtomicBool,
    broken: &AtomicBool,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut at_end = false;
    let mut buf = [0u8; 16 * 1024];
    // Bounded by the flags: each round takes at most a poll (the sockets' timeouts).
    loop {
        if shared.stop.load(Ordering::SeqCst)
            || reset.load(Ordering::SeqCst)
            || broken.load(Ordering::SeqCst)
        {
            return;
        }
        let passing = {
            let mode = shared.mode.read().expect("proxy mode lock");
            if *mode == Mode::Pass {
                if !pending.is_empty() {
                    match (&*to).write(&pending) {
                        Ok(n) => {
                            pending.drain(..n);
                        }
                        Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            broken.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                } else if at_end {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
            }
            *mode == Mode::Pass
        };
        if !passing {
            thread::sleep(PROXY_POLL);
            continue;
        }
        if !pending.is_empty() || at_end {
            continue;
        }
        match (&*from).read(&mut buf) {
            Ok(0) => at_end = true,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                broken.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}
