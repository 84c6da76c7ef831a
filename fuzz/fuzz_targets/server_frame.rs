//! Server frame decoding against re-encoding.
//!
//! Input: op byte, then payload. Whenever `ServerFrame::decode` succeeds, the
//! frame must encode back to exactly header + op + payload (a USERS `last`
//! byte other than 0 or 1 is a `BadFlag` error, so every accepted byte
//! survives), and the re-encoding must decode to the same frame. Errors must
//! match the op: unknown ops are `UnknownOp`, client-only ops
//! `WrongDirection`, and a structural defect names the frame it was found in.
//! `decode_lenient` agrees with `decode` except on a MESSAGE or PRIVATE whose
//! only defect is its text, which it keeps as a valid, escaped text.

#![no_main]

use chat_core::codec::RawFrame;
use chat_core::frame::op_name;
use chat_core::{DecodeError, MAX_FRAME, Malformed, ServerFrame, Text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&op, payload)) = data.split_first() else {
        return;
    };
    if data.len() > MAX_FRAME {
        return; // No such frame gets past the deframer.
    }
    let raw = RawFrame { op, payload };
    let decoded = ServerFrame::decode(raw);
    match (&decoded, ServerFrame::decode_lenient(raw)) {
        (Err(DecodeError::Text(_)), Ok(ServerFrame::Message { text, .. }))
        | (Err(DecodeError::Text(_)), Ok(ServerFrame::Private { text, .. })) => {
            assert!(Text::new(text.as_str()).is_ok(), "lenient text is valid");
        }
        (strict, lenient) => assert_eq!(strict, &lenient, "lenient differs without a text error"),
    }

    let server_op = matches!(op, 0x05 | 0x06 | 0x81..=0x88);
    let client_only_op = matches!(op, 0x01..=0x04 | 0x07);
    match &decoded {
        Err(DecodeError::Malformed(Malformed::UnknownOp(o))) => {
            assert_eq!(*o, op);
            assert!(!server_op && !client_only_op);
        }
        Err(DecodeError::Malformed(Malformed::WrongDirection(o))) => {
            assert_eq!(*o, op);
            assert!(client_only_op);
        }
        Err(DecodeError::Malformed(Malformed::Truncated { op: name, .. }))
        | Err(DecodeError::Malformed(Malformed::TrailingBytes { op: name, .. }))
        | Err(DecodeError::Malformed(Malformed::DetailNotUtf8 { op: name })) => {
            assert!(server_op);
            assert_eq!(*name, op_name(op));
        }
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(v))) => {
            assert_eq!(op, 0x81);
            assert_eq!(payload.first(), Some(v));
            assert_ne!(*v, 1);
        }
        Err(DecodeError::Malformed(Malformed::BadFlag { op: name, value })) => {
            assert_eq!(op, 0x87);
            assert_eq!(*name, "USERS");
            assert_eq!(payload.first(), Some(value));
            assert!(*value > 1);
        }
        Err(DecodeError::Malformed(Malformed::UnknownErrorCode(c))) => {
            assert_eq!(op, 0x82);
            assert_eq!(payload.first(), Some(c));
        }
        Err(DecodeError::Malformed(Malformed::UnknownReason(r))) => {
            assert!(op == 0x86 || op == 0x88);
            assert!(*r > 6);
        }
        Err(DecodeError::Name(_)) => assert!(matches!(op, 0x81 | 0x83..=0x87)),
        Err(DecodeError::Text(_)) => assert!(op == 0x83 || op == 0x84),
        Ok(_) => assert!(server_op),
    }

    let Ok(frame) = decoded else {
        return;
    };
    let mut wire = ((1 + payload.len()) as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(data);
    let encoded = frame.to_bytes().expect("a decoded frame fits in MAX_FRAME");
    assert_eq!(encoded, wire, "re-encoding {frame:?}");
    let again = RawFrame {
        op: encoded[4],
        payload: &encoded[5..],
    };
    assert_eq!(ServerFrame::decode(again), Ok(frame));
});
