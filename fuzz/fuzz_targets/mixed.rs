//! Native and IRC connections on one server, driven by a fuzzer-chosen
//! script (connects of either protocol, registrations, lobby and channel
//! joins, parts, renames, messages, bursts, garbage, stalls, ends of stream,
//! clock jumps); `drive_mixed` checks bounded queues, well-formed output in
//! each wire format, one close per connection, lobby rosters equal to the
//! server's for members of both protocols, and one order in the lobby.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chat_core::fuzzing::drive_mixed(data));
