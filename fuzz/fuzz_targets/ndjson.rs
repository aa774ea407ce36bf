#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hoosh_fuzz::ndjson(data));
