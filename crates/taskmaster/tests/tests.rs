//! taskmaster's integration tests: one test binary, one harness (`support`), a module per
//! subject. Each runs the real `taskmaster` binary on real processes, sockets, files and
//! signals; `cargo test -p taskmaster --test integration NAME` runs those whose path has NAME
//! (`supervisord_conf::`, `pair::`...).

mod support;
mod views;

// Shared with the fixture binary, which uses the rest of it.
#[allow(dead_code)]
#[path = "fixture/pattern.rs"]
mod pattern;

mod alerting;
mod api;
mod capture;
mod child_examples;
mod childutils;
mod cluster;
mod container;
mod corpus;
mod ctl;
mod dependencies;
mod etcd_harness;
mod event_log;
mod example_config;
mod exit_causes;
mod failure_types;
mod guard;
mod harness_selftest;
mod health;
mod helper_groups;
mod hostile;
mod lifecycle;
mod listeners;
mod liveness;
mod metrics;
mod notify;
mod page;
mod pair;
mod pair_demo;
mod program_keys;
mod recovery;
mod reload;
mod shell_pty;
mod stdin;
mod supervisorctl;
mod supervisord_conf;
mod syslog;
mod user;
