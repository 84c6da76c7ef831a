//! The client state machine driven by a fuzzer-chosen script of server bytes,
//! clock advances, partial writes, user intents and end of stream; `drive`
//! checks it against a model of its own (one `Closed`, always last; no output
//! after close; the idle exit and its deadline exactly when the model says;
//! roster and input buffer bounded).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    chat_core::fuzzing::drive_client(std::time::Instant::now(), data)
});
