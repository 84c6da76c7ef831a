//! Abuse, exhaustion and fault cases against the `chat-server` binary.

harness::hardening_cases!(env!("CARGO_BIN_EXE_chat-server"));
