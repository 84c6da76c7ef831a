//! Client frame decoding against re-encoding.
//!
//! Input: op byte, then payload. Whenever `ClientFrame::decode` succeeds, the
//! frame must encode back to exactly header + op + payload; when
//! `RawClientFrame::parse` fails, decode must fail with the same `Malformed`;
//! when parse succeeds, decode must equal `validate()` and never be malformed.

#![no_main]

use chat_core::codec::{Deframer, RawFrame};
use chat_core::frame::{RawClientFrame, op_name};
use chat_core::{ClientFrame, DecodeError, MAX_FRAME, Malformed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&op, payload)) = data.split_first() else {
        return;
    };
    if data.len() > MAX_FRAME {
        return; // No such frame gets past the deframer.
    }
    let raw = RawFrame { op, payload };
    let decoded = ClientFrame::decode(raw);

    match RawClientFrame::parse(raw) {
        Err(malformed) => assert_eq!(decoded, Err(DecodeError::Malformed(malformed))),
        Ok(parsed) => {
            assert_eq!(parsed.validate(), decoded);
            assert!(!matches!(decoded, Err(DecodeError::Malformed(_))));
        }
    }

    let client_op = (0x01..=0x07).contains(&op);
    let server_only_op = (0x81..=0x88).contains(&op);
    match &decoded {
        Err(DecodeError::Malformed(Malformed::UnknownOp(o))) => {
            assert_eq!(*o, op);
            assert!(!client_op && !server_only_op);
        }
        Err(DecodeError::Malformed(Malformed::WrongDirection(o))) => {
            assert_eq!(*o, op);
            assert!(server_only_op);
        }
        Err(DecodeError::Malformed(Malformed::Truncated { op: name, .. }))
        | Err(DecodeError::Malformed(Malformed::TrailingBytes { op: name, .. })) => {
            assert!(client_op);
            assert_eq!(*name, op_name(op));
        }
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(v))) => {
            assert_eq!(op, 0x01);
            assert_eq!(payload.first(), Some(v));
            assert_ne!(*v, 1);
        }
        Err(DecodeError::Malformed(other)) => panic!("not a client-side defect: {other:?}"),
        Err(DecodeError::Name(_)) => assert!(op == 0x01 || op == 0x03),
        Err(DecodeError::Text(_)) => assert!(op == 0x02 || op == 0x03),
        Ok(_) => assert!(client_op),
    }

    let mut wire = ((1 + payload.len()) as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(data);

    if let Ok(frame) = &decoded {
        assert_eq!(frame.to_bytes(), wire, "re-encoding {frame:?}");
    }

    // The deframer hands out this very frame.
    let mut deframer = Deframer::new();
    let mut input = &wire[..];
    let frame = deframer.next_frame(&mut input).unwrap().unwrap();
    assert_eq!(frame, raw);
    assert!(input.is_empty());
});
