#![no_main]
// See crates/fuzzing: what this target runs, and the test that replays its corpus.
libfuzzer_sys::fuzz_target!(|data: &[u8]| taskmaster_fuzzing::api_routes(data));
