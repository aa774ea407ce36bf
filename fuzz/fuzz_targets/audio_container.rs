#![no_main]

libfuzzer_sys::fuzz_target!(
    init: hoosh_fuzz::audio::tolerate_contained_decoder_panics(),
    |data: &[u8]| hoosh_fuzz::audio_container(data)
);
