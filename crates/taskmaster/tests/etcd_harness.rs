//! The etcd harness (`support::etcd`) proven on its own, without taskmaster: a cluster that
//! starts, answers, elects, and a proxy that forwards, partitions, resets and heals. If these
//! fail, no cluster test's result means anything.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::etcd::{self, EtcdCluster, Gateway, Proxy};
use crate::support::{Sandbox, TIMEOUT};

/// How long a test waits for an answer it expects never to come. A short read timeout is the
/// expected outcome there, not a timing that decides a pass: an answer in that time fails.
const NO_ANSWER_WAIT: Duration = Duration::from_millis(300);

/// Whether `kind` is how a client sees its connection reset (by a RST, or closed before any
/// answer).
fn is_reset(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe
    )
}

/// A raw `kv/range` request of `key` on a connection of its own to `addr`, not yet answered.
fn send_range(addr: std::net::SocketAddr, key: &str) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to the proxy");
    let body = json!({ "key": etcd::base64_encode(key.as_bytes()) }).to_string();
    stream
        .write_all(&etcd::request_bytes("POST", "/v3/kv/range", &body))
        .expect("send a range request");
    stream
}

#[test]
fn base64_round_trips_the_rfc_4648_vectors() {
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in vectors {
        assert_eq!(etcd::base64_encode(plain.as_bytes()), encoded);
        assert_eq!(
            etcd::base64_decode(encoded).as_deref(),
            Some(plain.as_bytes())
        );
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(
        etcd::base64_decode(&etcd::base64_encode(&all)).as_deref(),
        Some(&all[..])
    );
    assert_eq!(etcd::base64_decode("Zm9v!"), None);
}

#[test]
fn single_member_puts_gets_and_deletes_through_the_gateway() {
    let sandbox = Sandbox::new();
    let cluster = EtcdCluster::start(sandbox.path(), 1);
    let port = cluster.client_port(0);
    assert!(port != 2379 && port != 2380 && cluster.peer_port(0) != 2380);
    assert_eq!(cluster.endpoints(), [format!("http://127.0.0.1:{port}")]);
    assert_eq!(cluster.endpoint(0), cluster.endpoints()[0]);
    assert!(sandbox.file("etcd-0.log").exists() && sandbox.file("etcd-0").is_dir());
    assert_eq!(cluster.leader(), Some(0));

    assert_eq!(cluster.get("tm/a"), None);
    cluster.put("tm/a", "one");
    cluster.put("tm/b", "two = 2 ✓");
    cluster.put("tn/c", "three");
    assert_eq!(cluster.get("tm/a").as_deref(), Some("one"));
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(
        cluster.get_prefix("tm/"),
        pairs(&[("tm/a", "one"), ("tm/b", "two = 2 ✓")])
    );
    assert_eq!(cluster.get_prefix("").len(), 3);
    cluster.put("tm/a", "uno");
    assert_eq!(cluster.get("tm/a").as_deref(), Some("uno"));

    assert!(cluster.delete("tm/a"));
    assert_eq!(cluster.get("tm/a"), None);
    assert!(!cluster.delete("tm/a"));
    assert_eq!(cluster.get_prefix("tm/"), pairs(&[("tm/b", "two = 2 ✓")]));
    assert_eq!(
        cluster.gateway(0).delete_prefix("t").expect("delete all"),
        2
    );
    assert_eq!(cluster.get_prefix(""), pairs(&[]));
}

#[test]
fn killing_the_leader_of_three_elects_another() {
    let sandbox = Sandbox::new();
    let mut cluster = EtcdCluster::start(sandbox.path(), 3);
    assert_eq!(cluster.endpoints().len(), 3);
    let old = cluster.wait_for_leader();
    cluster.put("tm/survives", "yes");

    let pid = cluster.pid(old);
    cluster.kill(old);
    assert!(!cluster.is_running(old) && !crate::support::is_alive(pid));
    assert_eq!(cluster.running().len(), 2);

    let new = cluster.wait_for_leader();
    assert_ne!(new, old, "the killed member cannot lead");
    assert!(cluster.is_running(new));
    assert_eq!(cluster.get("tm/survives").as_deref(), Some("yes"));
    cluster.put("tm/after", "written with two of three");
    assert_eq!(
        cluster.get("tm/after").as_deref(),
        Some("written with two of three")
    );
}

#[test]
fn proxy_passes_freezes_resets_and_heals() {
    let sandbox = Sandbox::new();
    let cluster = EtcdCluster::start(sandbox.path(), 1);
    let proxy = Proxy::start(cluster.client_addr(0));
    assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
    assert_eq!(proxy.upstream(), cluster.client_addr(0));
    let through = Gateway::new(proxy.addr());

    through
        .put("tm/p", "1")
        .expect("put through a passing proxy");
    assert_eq!(
        through.get("tm/p").expect("get through a passing proxy"),
        Some("1".to_owned())
    );

    proxy.freeze();
    let mut held = send_range(proxy.addr(), "tm/p");
    held.set_read_timeout(Some(NO_ANSWER_WAIT))
        .expect("set a read timeout");
    let mut buf = [0u8; 1024];
    match held.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a frozen proxy answered: {other:?}"),
    }
    let short = through.with_timeout(NO_ANSWER_WAIT);
    match short.get("tm/p") {
        Err(e) if e.kind() == ErrorKind::TimedOut => {}
        other => panic!("a frozen proxy answered a new connection: {other:?}"),
    }
    // Nothing reached etcd: the put through the frozen proxy is not applied.
    let _ = short.put("tm/p", "frozen");
    assert_eq!(cluster.get("tm/p").as_deref(), Some("1"));

    proxy.reset();
    held.set_read_timeout(Some(TIMEOUT))
        .expect("set a read timeout");
    match held.read(&mut buf) {
        Ok(0) => {}
        Err(e) if is_reset(e.kind()) => {}
        other => panic!("a connection held across a reset was not reset: {other:?}"),
    }
    match through.get("tm/p") {
        Err(e) if is_reset(e.kind()) => {}
        other => panic!("a resetting proxy let a new connection through: {other:?}"),
    }

    proxy.heal();
    through
        .put("tm/p", "2")
        .expect("put through a healed proxy");
    assert_eq!(
        through.get("tm/p").expect("get through a healed proxy"),
        Some("2".to_owned())
    );
}

#[test]
fn proxy_delivers_what_it_held_when_healed() {
    let sandbox = Sandbox::new();
    let cluster = EtcdCluster::start(sandbox.path(), 1);
    cluster.put("tm/held", "delivered");
    let proxy = Proxy::start(cluster.client_addr(0));

    proxy.freeze();
    let mut held = send_range(proxy.addr(), "tm/held");
    held.set_read_timeout(Some(NO_ANSWER_WAIT))
        .expect("set a read timeout");
    let mut buf = [0u8; 1024];
    match held.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a frozen proxy answered: {other:?}"),
    }
    assert_eq!(proxy.open_connections(), 1);

    proxy.heal();
    held.set_read_timeout(Some(TIMEOUT))
        .expect("set a read timeout");
    let mut raw = Vec::new();
    held.read_to_end(&mut raw)
        .expect("the held request's answer, after the heal");
    let reply = etcd::parse_reply(&raw).expect("an HTTP answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.body.contains(&etcd::base64_encode(b"delivered")),
        "{reply:?}"
    );
}
