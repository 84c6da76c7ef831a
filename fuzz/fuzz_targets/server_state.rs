//! The server state machine driven by a fuzzer-chosen script of connects,
//! frames, raw bytes, stalls, short writes, ends of stream and clock jumps;
//! `run_ops` checks the protocol's invariants (consistent rosters, one global
//! history, exactly one LEFT per departure, bounded queues) as it goes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chat_core::fuzzing::drive_server(data));
