//! The client state machine (in progress).
