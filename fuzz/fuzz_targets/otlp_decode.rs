//! libFuzzer entry point: OTLP bytes → decode (protobuf or JSON, traces or logs) → normalise.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| promptlog_fuzz::run(data));
