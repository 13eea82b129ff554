//! `cluster:` and `singleton`: read, defaulted, and refused with their places.

use std::path::Path;
use std::time::Duration;

use taskmaster_config::{Config, ConfigErrors};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("t.yaml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_cluster_is_read_with_its_defaults() {
    let config = parse(
        "\
cluster:
  etcd: [\"http://10.0.0.5:2379\", http://10.0.0.6:2379]
  node: web-3
programs:
  scheduler:
    cmd: /bin/scheduler
    singleton: true
    stoptime: 3
",
    )
    .expect("valid");
    let cluster = config.daemon.cluster.as_deref().expect("a cluster");
    assert_eq!(
        cluster.endpoints,
        ["http://10.0.0.5:2379", "http://10.0.0.6:2379"]
    );
    assert_eq!(cluster.node, "web-3");
    assert_eq!(cluster.prefix, "/taskmaster");
    assert_eq!(cluster.ttl, Duration::from_secs(15));
    assert!(config.programs["scheduler"].singleton);
    assert!(config.programs["scheduler"].processes[0].spec.singleton);
}

#[test]
fn a_singleton_needs_a_cluster_and_a_stoptime_that_fits_its_lease() {
    assert_eq!(
        errors(
            "\
programs:
  scheduler:
    cmd: /bin/scheduler
    singleton: true
"
        ),
        ["t.yaml:4:16: programs.scheduler.singleton: a singleton runs on one node of a cluster: write the cluster's etcd in `cluster:`"]
    );
    // The default stoptime (10 s) does not fit the default lease's 3.5 s.
    assert_eq!(
        errors(
            "\
programs:
  scheduler:
    cmd: /bin/scheduler
    singleton: true
cluster:
  etcd: http://127.0.0.1:2379
  node: a
"
        ),
        ["t.yaml:4:16: programs.scheduler.singleton: a singleton's stoptime (10s) must fit between the cluster's renew deadline (10s into the 15s lease) and its kill deadline (13.5s): at most 3.5s; lower stoptime or raise cluster.ttl to at least 43s"]
    );
}

#[test]
fn cluster_settings_are_checked_each_at_its_value() {
    assert_eq!(
        errors(
            "\
cluster:
  etcd: [https://x:1, http://y]
  node: web 3
  prefix: taskmaster
  ttl: 1s
  bogus: 1
"
        ),
        [
            "t.yaml:2:10: cluster.etcd[0]: \"https://x:1\" is not an etcd endpoint: expected http://HOST:PORT such as http://10.0.0.5:2379",
            "t.yaml:2:23: cluster.etcd[1]: \"http://y\" is not an etcd endpoint: expected http://HOST:PORT such as http://10.0.0.5:2379",
            "t.yaml:3:9: cluster.node: \"web 3\" is not a node name: letters, digits, '-', '_' and '.' only, such as web-3",
            "t.yaml:4:11: cluster.prefix: \"taskmaster\" is not a key prefix: expected a path such as /taskmaster/prod",
            "t.yaml:5:8: cluster.ttl: 1s is out of range: a lease lasts from 2s to 1h",
            "t.yaml:6:3: cluster: unknown key \"bogus\" (valid keys: etcd, node, prefix, ttl)",
        ]
    );
    assert_eq!(
        errors("cluster:\n  node: a\n"),
        ["t.yaml:2:3: cluster: missing required key \"etcd\""]
    );
}
