//! `cargo +nightly fuzz run decode` (from protocol/): arbitrary bytes through the
//! frame decoder and the stream reader. New crashes go to corpus/decode/ as
//! regression inputs; the test suite replays that directory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    anthill_protocol::wire::fuzz_one(data);
});
