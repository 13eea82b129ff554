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
    ("api_routes", api_routes),
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

/// A whole HTTP request to the control socket's routes, answered by a real supervision core
/// (of [`ROUTES_CONFIG`], running nothing): the first line is the method and the target
/// (`POST /v1/processes/web/signal?x=1`), the rest the body, sent as JSON. No answer may be a
/// 500, and the handlers must not panic.
pub fn api_routes(data: &[u8]) {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return;
    };
    let (method, target) = (&line[..space], &line[space + 1..]);
    let Ok(method) = axum::http::Method::from_bytes(method) else {
        return;
    };
    let Ok(uri) = axum::http::Uri::try_from(target) else {
        return;
    };
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_vec()));
    let Ok(request) = request else {
        return;
    };
    let asked = format!("{} {}", request.method(), request.uri());
    ROUTES.with(|(runtime, config)| {
        runtime.block_on(async {
            let handle = taskmaster_runtime::fuzzing::core_handle(config.clone());
            let router = taskmaster_api::server::router(handle);
            let Ok(response) = tower::ServiceExt::oneshot(router, request).await;
            assert_ne!(
                response.status(),
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "{asked} answered 500"
            );
            // The body as far as it is ready: event streams and followed logs never end.
            let mut body = response.into_body().into_data_stream();
            for _ in 0..64 {
                match futures_util::FutureExt::now_or_never(futures_util::StreamExt::next(
                    &mut body,
                )) {
                    Some(Some(Ok(_))) => continue,
                    _ => break,
                }
            }
        })
    });
}

thread_local! {
    /// The routes target's event loop, and its configuration read once.
    static ROUTES: (tokio::runtime::Runtime, taskmaster_config::Config) = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the routes target");
        let path = Path::new("/nonexistent/fuzz/taskmaster.yaml");
        let accounts = taskmaster_config::Accounts::listed(0, Vec::new());
        let config = taskmaster_config::Config::parse_with(ROUTES_CONFIG, path, &accounts)
            .expect("the routes target's configuration is valid");
        (runtime, config)
    };
}

/// The programs the routes target's core supervises (none is started: autostart is off).
pub const ROUTES_CONFIG: &str = "programs:
  web:
    cmd: sleep 1000
    numprocs: 2
    autostart: false
  worker:
    cmd: sleep 1000
    autostart: false
    stdin: pipe
";

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
