//! # What taskmaster's fuzz targets run
//!
//! Theory of operation: each function here takes arbitrary bytes and hands them to one of
//! taskmaster's parsers of outside input, the way the daemon would. None may panic, hang or
//! allocate without bound, whatever the bytes. The fuzz targets in `fuzz/` (cargo-fuzz,
//! libFuzzer) call them with generated inputs; `tests/corpus.rs` calls them with every input
//! the fuzzers kept (`fuzz/corpus/TARGET/`) and every crash they found
//! (`fuzz/regressions/TARGET/`), in `cargo test`. [`TARGETS`] lists them by name.

use std::path::Path;

/// What a target runs on one input.
pub type Target = fn(&[u8]);

/// Every target: its name (the folder of its corpus) and what it runs.
pub const TARGETS: &[(&str, Target)] = &[
    ("yaml_config", yaml_config),
    ("ini_config", ini_config),
    ("xmlrpc_call", xmlrpc_call),
    ("json_bodies", json_bodies),
    ("notify_datagram", notify_datagram),
    ("listener_protocol", listener_protocol),
    ("handover_frame", handover_frame),
];

/// taskmaster's YAML configuration, read as `check` reads it (and, when valid, written back
/// as `convert` writes it and read again).
pub fn yaml_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/fuzz/taskmaster.yaml");
    let accounts = taskmaster_config::Accounts::listed(0, Vec::new());
    if let Ok(config) = taskmaster_config::Config::parse_with(text, path, &accounts) {
        let yaml = taskmaster_config::to_yaml(&config);
        let _ = taskmaster_config::Config::parse_with(&yaml, path, &accounts);
    }
}

/// A supervisord INI file (its `[include]`s name files that do not exist: an error each).
pub fn ini_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/fuzz/supervisord.conf");
    let host = taskmaster_config::Host::default();
    if let Ok(ini) = taskmaster_config::ini::parse(text, path, &host) {
        let _ = taskmaster_config::to_yaml(&ini.config);
    }
}

/// An XML-RPC request body, as supervisorctl sends them.
pub fn xmlrpc_call(data: &[u8]) {
    let _ = taskmaster_api::xmlrpc::value::parse_call(data);
}

/// The JSON API's request bodies.
pub fn json_bodies(data: &[u8]) {
    let _ = serde_json::from_slice::<taskmaster_api::wire::Targets>(data);
    let _ = serde_json::from_slice::<taskmaster_api::wire::SignalRequest>(data);
    let _ = serde_json::from_slice::<taskmaster_api::wire::KillRequest>(data);
    let _ = serde_json::from_slice::<taskmaster_api::wire::LogrotateRequest>(data);
}

/// An sd_notify datagram from a child.
pub fn notify_datagram(data: &[u8]) {
    let _ = taskmaster_core::notify::parse(data);
}

/// An event listener's stdout, in pieces: the first byte says where to cut.
pub fn listener_protocol(data: &[u8]) {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let cuts: Vec<usize> = (step..rest.len()).step_by(step).collect();
    taskmaster_runtime::fuzzing::listener_protocol(rest, &cuts);
}

/// A message of the pair's handover channel (its frame's prefix, and its header as JSON).
pub fn handover_frame(data: &[u8]) {
    taskmaster_runtime::fuzzing::handover_frame(data);
}
