use super::*;
use crate::codec::{Deframer, HEADER_LEN, check_header};
use crate::text::MAX_TEXT;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

/// Splits one whole encoded frame (header included) into a [`RawFrame`],
/// checking that the header's length matches the bytes exactly. The same bytes
/// fed to a [`Deframer`] must give the same single frame.
fn raw(bytes: &[u8]) -> RawFrame<'_> {
    let (header, body) = bytes.split_first_chunk::<HEADER_LEN>().unwrap();
    assert_eq!(
        check_header(*header),
        Ok(body.len()),
        "header of {bytes:02x?}"
    );
    let (&op, payload) = body.split_first().unwrap();

    let mut deframer = Deframer::new();
    let mut input = bytes;
    let frame = deframer.next_frame(&mut input).unwrap().unwrap();
    assert_eq!((frame.op, frame.payload), (op, payload));
    assert!(input.is_empty());
    assert_eq!(deframer.finish(), Ok(()));

    RawFrame { op, payload }
}

/// Decodes a client frame from its op and payload; when the frame is
/// structurally broken, `RawClientFrame::parse` must report the same defect.
fn client(op: u8, payload: &[u8]) -> Result<ClientFrame, DecodeError> {
    let frame = RawFrame { op, payload };
    let decoded = ClientFrame::decode(frame);
    match RawClientFrame::parse(frame) {
        Err(malformed) => assert_eq!(decoded, Err(DecodeError::Malformed(malformed))),
        Ok(parsed) => assert_eq!(parsed.validate(), decoded),
    }
    decoded
}

fn server(op: u8, payload: &[u8]) -> Result<ServerFrame, DecodeError> {
    ServerFrame::decode(RawFrame { op, payload })
}

fn truncated(op: &'static str, field: &'static str) -> DecodeError {
    DecodeError::Malformed(Malformed::Truncated { op, field })
}

fn trailing(op: &'static str, extra: usize) -> DecodeError {
    DecodeError::Malformed(Malformed::TrailingBytes { op, extra })
}

/// Asserts that `frame` encodes to exactly `wire` and that `wire` decodes back
/// to `frame`.
#[track_caller]
fn assert_client_wire(frame: &ClientFrame, wire: &[u8]) {
    assert_eq!(frame.to_bytes(), wire, "encoding {frame:?}");
    let mut out = vec![0xee];
    frame.encode(&mut out);
    assert_eq!(out.get(1..), Some(wire), "encode appends");
    assert_eq!(ClientFrame::decode(raw(wire)).as_ref(), Ok(frame));
}

#[track_caller]
fn assert_server_wire(frame: &ServerFrame, wire: &[u8]) {
    assert_eq!(frame.to_bytes().unwrap(), wire, "encoding {frame:?}");
    let mut out = vec![0xee];
    frame.encode(&mut out).unwrap();
    assert_eq!(out.get(1..), Some(wire), "encode appends");
    assert_eq!(ServerFrame::decode(raw(wire)).as_ref(), Ok(frame));
}

const TOKEN: u64 = 0x0102_0304_0506_0708;

// ---------------------------------------------------------------------------
// Client -> server: exact bytes both ways
// ---------------------------------------------------------------------------

#[test]
fn hello_wire_bytes() {
    assert_client_wire(
        &ClientFrame::Hello {
            name: name("alice"),
        },
        &[
            0x00, 0x00, 0x00, 0x08, 0x01, 0x01, 0x05, 0x61, 0x6c, 0x69, 0x63, 0x65,
        ],
    );
    // The name keeps its spelling on the wire.
    assert_client_wire(
        &ClientFrame::Hello {
            name: name("B-0_z"),
        },
        &[
            0x00, 0x00, 0x00, 0x08, 0x01, 0x01, 0x05, 0x42, 0x2d, 0x30, 0x5f, 0x7a,
        ],
    );
    // A one-byte name.
    assert_client_wire(
        &ClientFrame::Hello { name: name("x") },
        &[0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x01, 0x78],
    );
}

#[test]
fn hello_with_a_32_byte_name() {
    let long = "abcdefghijklmnopqrstuvwxyz012345";
    let mut wire = vec![0x00, 0x00, 0x00, 0x23, 0x01, 0x01, 0x20];
    wire.extend_from_slice(long.as_bytes());
    assert_client_wire(&ClientFrame::Hello { name: name(long) }, &wire);
}

#[test]
fn say_wire_bytes() {
    assert_client_wire(
        &ClientFrame::Say { text: text("hi") },
        &[0x00, 0x00, 0x00, 0x03, 0x02, 0x68, 0x69],
    );
    // Multi-byte UTF-8, TAB and LF travel as they are.
    assert_client_wire(
        &ClientFrame::Say {
            text: text("é\t\n"),
        },
        &[0x00, 0x00, 0x00, 0x05, 0x02, 0xc3, 0xa9, 0x09, 0x0a],
    );
}

#[test]
fn say_with_the_longest_text() {
    let long = "y".repeat(MAX_TEXT);
    let mut wire = vec![0x00, 0x00, 0x10, 0x01, 0x02];
    wire.extend_from_slice(long.as_bytes());
    assert_client_wire(&ClientFrame::Say { text: text(&long) }, &wire);
}

#[test]
fn whisper_wire_bytes() {
    assert_client_wire(
        &ClientFrame::Whisper {
            to: name("bob"),
            text: text("hey"),
        },
        &[
            0x00, 0x00, 0x00, 0x08, 0x03, 0x03, 0x62, 0x6f, 0x62, 0x68, 0x65, 0x79,
        ],
    );
}

#[test]
fn who_wire_bytes() {
    assert_client_wire(&ClientFrame::Who, &[0x00, 0x00, 0x00, 0x01, 0x04]);
}

#[test]
fn ping_and_pong_wire_bytes() {
    assert_client_wire(
        &ClientFrame::Ping { token: TOKEN },
        &[
            0x00, 0x00, 0x00, 0x09, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        ],
    );
    assert_client_wire(
        &ClientFrame::Pong { token: TOKEN },
        &[
            0x00, 0x00, 0x00, 0x09, 0x06, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        ],
    );
    assert_client_wire(
        &ClientFrame::Ping { token: 0 },
        &[
            0x00, 0x00, 0x00, 0x09, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ],
    );
    assert_client_wire(
        &ClientFrame::Pong { token: u64::MAX },
        &[
            0x00, 0x00, 0x00, 0x09, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
}

#[test]
fn bye_wire_bytes() {
    assert_client_wire(&ClientFrame::Bye, &[0x00, 0x00, 0x00, 0x01, 0x07]);
}

#[test]
fn raw_client_frames_borrow_the_unchecked_fields() {
    let whisper = [
        0x00, 0x00, 0x00, 0x08, 0x03, 0x03, 0x62, 0x6f, 0x62, 0x68, 0x65, 0x79,
    ];
    assert_eq!(
        RawClientFrame::parse(raw(&whisper)),
        Ok(RawClientFrame::Whisper {
            to: b"bob",
            text: b"hey"
        })
    );
    // Structure only: a bad name and an empty text still parse.
    assert_eq!(
        RawClientFrame::parse(RawFrame {
            op: 0x01,
            payload: &[0x01, 0x02, b' ', b'!'],
        }),
        Ok(RawClientFrame::Hello { name: b" !" })
    );
    assert_eq!(
        RawClientFrame::parse(RawFrame {
            op: 0x02,
            payload: &[],
        }),
        Ok(RawClientFrame::Say { text: b"" })
    );
    assert_eq!(
        RawClientFrame::parse(RawFrame {
            op: 0x03,
            payload: &[0x00],
        }),
        Ok(RawClientFrame::Whisper { to: b"", text: b"" })
    );
}

// ---------------------------------------------------------------------------
// Server -> client: exact bytes both ways
// ---------------------------------------------------------------------------

#[test]
fn server_ping_and_pong_wire_bytes() {
    let ping = [
        0x00, 0x00, 0x00, 0x09, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    ];
    let pong = [
        0x00, 0x00, 0x00, 0x09, 0x06, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    ];
    assert_server_wire(&ServerFrame::Ping { token: TOKEN }, &ping);
    assert_server_wire(&ServerFrame::Pong { token: TOKEN }, &pong);
    let mut out = Vec::new();
    encode_ping(&mut out, TOKEN);
    encode_pong(&mut out, TOKEN);
    assert_eq!(out, [ping, pong].concat());
}

#[test]
fn welcome_wire_bytes() {
    let wire = [
        0x00, 0x00, 0x00, 0x08, 0x81, 0x01, 0x05, 0x41, 0x6c, 0x69, 0x63, 0x65,
    ];
    assert_server_wire(
        &ServerFrame::Welcome {
            name: name("Alice"),
        },
        &wire,
    );
    let mut out = Vec::new();
    encode_welcome(&mut out, &name("Alice"));
    assert_eq!(out, wire);
    // The registered spelling survives the round trip.
    let Ok(ServerFrame::Welcome { name: decoded }) = ServerFrame::decode(raw(&wire)) else {
        panic!("not a WELCOME");
    };
    assert_eq!(decoded.as_str(), "Alice");
}

#[test]
fn error_wire_bytes() {
    let wire = [
        0x00, 0x00, 0x00, 0x07, 0x82, 0x01, 0x74, 0x61, 0x6b, 0x65, 0x6e,
    ];
    let frame = ServerFrame::Error {
        code: ErrorCode::NameTaken,
        detail: "taken".into(),
    };
    assert_server_wire(&frame, &wire);
    let mut out = Vec::new();
    encode_error(&mut out, ErrorCode::NameTaken, "taken");
    assert_eq!(out, wire);
    // An empty detail.
    assert_server_wire(
        &ServerFrame::Error {
            code: ErrorCode::BadText,
            detail: String::new(),
        },
        &[0x00, 0x00, 0x00, 0x02, 0x82, 0x06],
    );
}

#[test]
fn every_error_code_has_its_wire_byte() {
    let codes = [
        (1, ErrorCode::NameTaken),
        (2, ErrorCode::NameInvalid),
        (3, ErrorCode::NoSuchUser),
        (4, ErrorCode::NotRegistered),
        (5, ErrorCode::AlreadyRegistered),
        (6, ErrorCode::BadText),
    ];
    for (byte, code) in codes {
        assert_eq!(ErrorCode::from_u8(byte), Some(code));
        assert_server_wire(
            &ServerFrame::Error {
                code,
                detail: String::new(),
            },
            &[0x00, 0x00, 0x00, 0x02, 0x82, byte],
        );
    }
    assert_eq!(ErrorCode::from_u8(0), None);
    assert_eq!(ErrorCode::from_u8(7), None);
}

#[test]
fn message_and_private_wire_bytes() {
    let message = [
        0x00, 0x00, 0x00, 0x07, 0x83, 0x03, 0x62, 0x6f, 0x62, 0x68, 0x69,
    ];
    let private = [
        0x00, 0x00, 0x00, 0x07, 0x84, 0x03, 0x62, 0x6f, 0x62, 0x68, 0x69,
    ];
    assert_server_wire(
        &ServerFrame::Message {
            from: name("bob"),
            text: text("hi"),
        },
        &message,
    );
    assert_server_wire(
        &ServerFrame::Private {
            from: name("bob"),
            text: text("hi"),
        },
        &private,
    );
    let mut out = Vec::new();
    encode_message(&mut out, &name("bob"), b"hi");
    encode_private(&mut out, &name("bob"), b"hi");
    assert_eq!(out, [message, private].concat());
}

#[test]
fn joined_wire_bytes() {
    let wire = [0x00, 0x00, 0x00, 0x05, 0x85, 0x03, 0x62, 0x6f, 0x62];
    assert_server_wire(&ServerFrame::Joined { name: name("bob") }, &wire);
    let mut out = Vec::new();
    encode_joined(&mut out, &name("bob"));
    assert_eq!(out, wire);
}

#[test]
fn left_wire_bytes_for_every_reason() {
    let reasons = [
        (0, Reason::Quit),
        (1, Reason::Timeout),
        (2, Reason::Disconnected),
        (3, Reason::ProtocolError),
        (4, Reason::SlowConsumer),
        (5, Reason::ServerFull),
        (6, Reason::Shutdown),
    ];
    for (byte, reason) in reasons {
        assert_eq!(Reason::from_u8(byte), Some(reason));
        let wire = [0x00, 0x00, 0x00, 0x06, 0x86, 0x03, 0x62, 0x6f, 0x62, byte];
        assert_server_wire(
            &ServerFrame::Left {
                name: name("bob"),
                reason,
            },
            &wire,
        );
        let mut out = Vec::new();
        encode_left(&mut out, &name("bob"), reason);
        assert_eq!(out, wire);
    }
    assert_eq!(Reason::from_u8(7), None);
    assert_eq!(Reason::from_u8(0xff), None);
}

#[test]
fn users_wire_bytes() {
    assert_server_wire(
        &ServerFrame::Users {
            last: true,
            names: vec![name("alice"), name("bob")],
        },
        &[
            0x00, 0x00, 0x00, 0x0e, 0x87, 0x01, 0x00, 0x02, 0x05, 0x61, 0x6c, 0x69, 0x63, 0x65,
            0x03, 0x62, 0x6f, 0x62,
        ],
    );
    assert_server_wire(
        &ServerFrame::Users {
            last: false,
            names: vec![name("x")],
        },
        &[0x00, 0x00, 0x00, 0x06, 0x87, 0x00, 0x00, 0x01, 0x01, 0x78],
    );
    assert_server_wire(
        &ServerFrame::Users {
            last: true,
            names: vec![],
        },
        &[0x00, 0x00, 0x00, 0x04, 0x87, 0x01, 0x00, 0x00],
    );
}

#[test]
fn server_bye_wire_bytes() {
    let wire = [0x00, 0x00, 0x00, 0x05, 0x88, 0x03, 0x62, 0x61, 0x64];
    assert_server_wire(
        &ServerFrame::Bye {
            reason: Reason::ProtocolError,
            detail: "bad".into(),
        },
        &wire,
    );
    let mut out = Vec::new();
    encode_bye(&mut out, Reason::ProtocolError, "bad");
    assert_eq!(out, wire);
    assert_server_wire(
        &ServerFrame::Bye {
            reason: Reason::Shutdown,
            detail: String::new(),
        },
        &[0x00, 0x00, 0x00, 0x02, 0x88, 0x06],
    );
    // A UTF-8 detail.
    assert_server_wire(
        &ServerFrame::Bye {
            reason: Reason::Quit,
            detail: "ü".into(),
        },
        &[0x00, 0x00, 0x00, 0x04, 0x88, 0x00, 0xc3, 0xbc],
    );
}

// ---------------------------------------------------------------------------
// Malformed: op
// ---------------------------------------------------------------------------

#[test]
fn client_decoder_rejects_unknown_ops() {
    for op in [0x00, 0x08, 0x09, 0x10, 0x7f, 0x80, 0x89, 0x90, 0xfe, 0xff] {
        assert_eq!(
            client(op, &[]),
            Err(DecodeError::Malformed(Malformed::UnknownOp(op))),
            "op 0x{op:02x}"
        );
        assert_eq!(
            client(op, b"payload"),
            Err(DecodeError::Malformed(Malformed::UnknownOp(op))),
            "op 0x{op:02x}"
        );
    }
}

#[test]
fn client_decoder_rejects_server_only_ops() {
    for op in 0x81..=0x88 {
        assert_eq!(
            client(op, &[]),
            Err(DecodeError::Malformed(Malformed::WrongDirection(op))),
            "op 0x{op:02x}"
        );
    }
    // A perfectly good WELCOME is still the wrong direction.
    assert_eq!(
        client(0x81, &[0x01, 0x05, b'a', b'l', b'i', b'c', b'e']),
        Err(DecodeError::Malformed(Malformed::WrongDirection(0x81)))
    );
}

#[test]
fn server_decoder_rejects_unknown_ops() {
    for op in [0x00, 0x08, 0x7f, 0x80, 0x89, 0xff] {
        assert_eq!(
            server(op, &[]),
            Err(DecodeError::Malformed(Malformed::UnknownOp(op))),
            "op 0x{op:02x}"
        );
    }
}

#[test]
fn server_decoder_rejects_client_only_ops() {
    for op in [0x01, 0x02, 0x03, 0x04, 0x07] {
        assert_eq!(
            server(op, &[]),
            Err(DecodeError::Malformed(Malformed::WrongDirection(op))),
            "op 0x{op:02x}"
        );
    }
    // A perfectly good HELLO is still the wrong direction.
    assert_eq!(
        server(0x01, &[0x01, 0x05, b'a', b'l', b'i', b'c', b'e']),
        Err(DecodeError::Malformed(Malformed::WrongDirection(0x01)))
    );
}

// ---------------------------------------------------------------------------
// Malformed: client fields running past the end
// ---------------------------------------------------------------------------

#[test]
fn hello_fields_running_past_the_end() {
    assert_eq!(client(0x01, &[]), Err(truncated("HELLO", "version")));
    assert_eq!(client(0x01, &[0x01]), Err(truncated("HELLO", "name")));
    assert_eq!(
        client(0x01, &[0x01, 0x05, b'a', b'l', b'i', b'c']),
        Err(truncated("HELLO", "name"))
    );
    assert_eq!(
        client(0x01, &[0x01, 0xff, b'a']),
        Err(truncated("HELLO", "name"))
    );
}

#[test]
fn whisper_fields_running_past_the_end() {
    assert_eq!(client(0x03, &[]), Err(truncated("WHISPER", "to")));
    assert_eq!(
        client(0x03, &[0x03, b'b', b'o']),
        Err(truncated("WHISPER", "to"))
    );
    assert_eq!(client(0x03, &[0x01]), Err(truncated("WHISPER", "to")));
}

#[test]
fn ping_and_pong_tokens_running_past_the_end() {
    for len in 0..8 {
        let payload = vec![0xab; len];
        assert_eq!(client(0x05, &payload), Err(truncated("PING", "token")));
        assert_eq!(client(0x06, &payload), Err(truncated("PONG", "token")));
        assert_eq!(server(0x05, &payload), Err(truncated("PING", "token")));
        assert_eq!(server(0x06, &payload), Err(truncated("PONG", "token")));
    }
}

// ---------------------------------------------------------------------------
// Malformed: trailing bytes after fixed-layout client frames
// ---------------------------------------------------------------------------

#[test]
fn hello_with_trailing_bytes() {
    assert_eq!(
        client(0x01, &[0x01, 0x05, b'a', b'l', b'i', b'c', b'e', 0x00]),
        Err(trailing("HELLO", 1))
    );
    assert_eq!(
        client(0x01, &[0x01, 0x01, b'a', b'b', b'c']),
        Err(trailing("HELLO", 2))
    );
    // Structure comes before validity: trailing bytes after an invalid name
    // are malformed, not NAME_INVALID.
    assert_eq!(
        client(0x01, &[0x01, 0x01, b' ', b'x']),
        Err(trailing("HELLO", 1))
    );
}

#[test]
fn who_bye_ping_pong_with_trailing_bytes() {
    assert_eq!(client(0x04, &[0x00]), Err(trailing("WHO", 1)));
    assert_eq!(client(0x04, b"abc"), Err(trailing("WHO", 3)));
    assert_eq!(client(0x07, &[0x00]), Err(trailing("BYE", 1)));
    assert_eq!(client(0x07, &[1, 2, 3, 4]), Err(trailing("BYE", 4)));
    let nine = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    assert_eq!(client(0x05, &nine), Err(trailing("PING", 1)));
    assert_eq!(client(0x06, &nine), Err(trailing("PONG", 1)));
    assert_eq!(client(0x05, &[0; 16]), Err(trailing("PING", 8)));
    assert_eq!(server(0x05, &nine), Err(trailing("PING", 1)));
    assert_eq!(server(0x06, &nine), Err(trailing("PONG", 1)));
}

// ---------------------------------------------------------------------------
// Malformed: HELLO version
// ---------------------------------------------------------------------------

#[test]
fn hello_with_another_version_is_malformed() {
    for version in [0, 2, 3, 0x7f, 0x80, 0xff] {
        assert_eq!(
            client(0x01, &[version, 0x05, b'a', b'l', b'i', b'c', b'e']),
            Err(DecodeError::Malformed(Malformed::UnsupportedVersion(
                version
            ))),
            "version {version}"
        );
    }
}

#[test]
fn hello_version_is_checked_first() {
    // Version before the name's structure...
    assert_eq!(
        client(0x01, &[0x02]),
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(2)))
    );
    assert_eq!(
        client(0x01, &[0x02, 0x09, b'a']),
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(2)))
    );
    // ...and before its validity (the contract: version is fatal, then
    // NAME_INVALID).
    assert_eq!(
        client(0x01, &[0x00, 0x02, b' ', b' ']),
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(0)))
    );
}

// ---------------------------------------------------------------------------
// Validation of client names and texts
// ---------------------------------------------------------------------------

#[test]
fn hello_with_an_invalid_name_is_a_name_error() {
    assert_eq!(
        client(0x01, &[0x01, 0x00]),
        Err(DecodeError::Name(NameError::Empty))
    );
    assert_eq!(
        client(0x01, &[0x01, 0x03, b'a', b' ', b'b']),
        Err(DecodeError::Name(NameError::BadByte(b' ')))
    );
    assert_eq!(
        client(0x01, &[0x01, 0x02, 0xc3, 0xa9]),
        Err(DecodeError::Name(NameError::BadByte(0xc3)))
    );
    let mut too_long = vec![0x01, 33];
    too_long.extend_from_slice(&[b'a'; 33]);
    assert_eq!(
        client(0x01, &too_long),
        Err(DecodeError::Name(NameError::TooLong(33)))
    );
}

#[test]
fn say_with_an_invalid_text_is_a_text_error() {
    assert_eq!(client(0x02, &[]), Err(DecodeError::Text(TextError::Empty)));
    assert_eq!(
        client(0x02, b"\x1b[31mred"),
        Err(DecodeError::Text(TextError::Control(0x1b)))
    );
    assert_eq!(
        client(0x02, b"a\rb"),
        Err(DecodeError::Text(TextError::Control(0x0d)))
    );
    assert_eq!(
        client(0x02, b"del\x7f"),
        Err(DecodeError::Text(TextError::Control(0x7f)))
    );
    assert_eq!(
        client(0x02, "c1 \u{85}".as_bytes()),
        Err(DecodeError::Text(TextError::Control(0x85)))
    );
    assert_eq!(
        client(0x02, b"ok\xff"),
        Err(DecodeError::Text(TextError::NotUtf8 { valid_up_to: 2 }))
    );
    // Too long for a text, yet well within a frame: structurally fine.
    let long = vec![b'a'; MAX_TEXT + 1];
    assert_eq!(
        client(0x02, &long),
        Err(DecodeError::Text(TextError::TooLong(MAX_TEXT + 1)))
    );
}

#[test]
fn whisper_validation_checks_text_before_recipient() {
    // Both invalid: the text error wins (registered, then text, then recipient).
    assert_eq!(
        client(0x03, &[0x01, b' ']),
        Err(DecodeError::Text(TextError::Empty))
    );
    assert_eq!(
        client(0x03, &[0x00, 0x01]),
        Err(DecodeError::Text(TextError::Control(0x01)))
    );
    assert_eq!(
        client(0x03, &[0x02, b'!', b'!', b'o', b'k', 0xc0]),
        Err(DecodeError::Text(TextError::NotUtf8 { valid_up_to: 2 }))
    );
    // Only the recipient invalid.
    assert_eq!(
        client(0x03, &[0x00, b'h', b'i']),
        Err(DecodeError::Name(NameError::Empty))
    );
    assert_eq!(
        client(0x03, &[0x02, b'b', b'.', b'h', b'i']),
        Err(DecodeError::Name(NameError::BadByte(b'.')))
    );
    // Only the text invalid.
    assert_eq!(
        client(0x03, &[0x03, b'b', b'o', b'b']),
        Err(DecodeError::Text(TextError::Empty))
    );
}

// ---------------------------------------------------------------------------
// Malformed and invalid server frames
// ---------------------------------------------------------------------------

#[test]
fn welcome_defects() {
    assert_eq!(server(0x81, &[]), Err(truncated("WELCOME", "version")));
    assert_eq!(server(0x81, &[0x01]), Err(truncated("WELCOME", "name")));
    assert_eq!(
        server(0x81, &[0x01, 0x03, b'b', b'o']),
        Err(truncated("WELCOME", "name"))
    );
    assert_eq!(
        server(0x81, &[0x02, 0x03, b'b', b'o', b'b']),
        Err(DecodeError::Malformed(Malformed::UnsupportedVersion(2)))
    );
    assert_eq!(
        server(0x81, &[0x01, 0x03, b'b', b'o', b'b', 0x00]),
        Err(trailing("WELCOME", 1))
    );
    assert_eq!(
        server(0x81, &[0x01, 0x03, b'b', b'o', b'/']),
        Err(DecodeError::Name(NameError::BadByte(b'/')))
    );
}

#[test]
fn error_defects() {
    assert_eq!(server(0x82, &[]), Err(truncated("ERROR", "code")));
    for code in [0, 7, 0xff] {
        assert_eq!(
            server(0x82, &[code]),
            Err(DecodeError::Malformed(Malformed::UnknownErrorCode(code)))
        );
    }
    assert_eq!(
        server(0x82, &[0x01, b'a', 0xff]),
        Err(DecodeError::Malformed(Malformed::DetailNotUtf8 {
            op: "ERROR"
        }))
    );
}

#[test]
fn message_and_private_defects() {
    for (op, op_name) in [(0x83, "MESSAGE"), (0x84, "PRIVATE")] {
        assert_eq!(server(op, &[]), Err(truncated(op_name, "from")));
        assert_eq!(
            server(op, &[0x03, b'b', b'o']),
            Err(truncated(op_name, "from"))
        );
        assert_eq!(
            server(op, &[0x00, b'h', b'i']),
            Err(DecodeError::Name(NameError::Empty))
        );
        assert_eq!(
            server(op, &[0x03, b'b', b'o', b'b']),
            Err(DecodeError::Text(TextError::Empty))
        );
        assert_eq!(
            server(op, &[0x03, b'b', b'o', b'b', 0x07]),
            Err(DecodeError::Text(TextError::Control(0x07)))
        );
    }
}

#[test]
fn joined_defects() {
    assert_eq!(server(0x85, &[]), Err(truncated("JOINED", "name")));
    assert_eq!(
        server(0x85, &[0x02, b'a']),
        Err(truncated("JOINED", "name"))
    );
    assert_eq!(
        server(0x85, &[0x01, b'a', b'b']),
        Err(trailing("JOINED", 1))
    );
    assert_eq!(
        server(0x85, &[0x00]),
        Err(DecodeError::Name(NameError::Empty))
    );
}

#[test]
fn left_defects() {
    assert_eq!(server(0x86, &[]), Err(truncated("LEFT", "name")));
    assert_eq!(server(0x86, &[0x03, b'b']), Err(truncated("LEFT", "name")));
    assert_eq!(
        server(0x86, &[0x03, b'b', b'o', b'b']),
        Err(truncated("LEFT", "reason"))
    );
    assert_eq!(
        server(0x86, &[0x03, b'b', b'o', b'b', 0x07]),
        Err(DecodeError::Malformed(Malformed::UnknownReason(7)))
    );
    assert_eq!(
        server(0x86, &[0x03, b'b', b'o', b'b', 0x00, 0x00]),
        Err(trailing("LEFT", 1))
    );
}

#[test]
fn users_defects() {
    assert_eq!(server(0x87, &[]), Err(truncated("USERS", "last")));
    assert_eq!(server(0x87, &[0x01]), Err(truncated("USERS", "count")));
    assert_eq!(
        server(0x87, &[0x01, 0x00]),
        Err(truncated("USERS", "count"))
    );
    assert_eq!(
        server(0x87, &[0x01, 0x00, 0x01]),
        Err(truncated("USERS", "names"))
    );
    assert_eq!(
        server(0x87, &[0x01, 0x00, 0x02, 0x03, b'b', b'o', b'b']),
        Err(truncated("USERS", "names"))
    );
    assert_eq!(
        server(0x87, &[0x01, 0x00, 0x01, 0x03, b'b', b'o']),
        Err(truncated("USERS", "names"))
    );
    // A count far beyond what the payload holds.
    assert_eq!(
        server(0x87, &[0x01, 0xff, 0xff, 0x01, b'a']),
        Err(truncated("USERS", "names"))
    );
    assert_eq!(
        server(0x87, &[0x01, 0x00, 0x00, 0x01, b'a']),
        Err(trailing("USERS", 2))
    );
    assert_eq!(
        server(0x87, &[0x01, 0x00, 0x01, 0x01, b'?']),
        Err(DecodeError::Name(NameError::BadByte(b'?')))
    );
}

#[test]
fn server_bye_defects() {
    assert_eq!(server(0x88, &[]), Err(truncated("BYE", "reason")));
    assert_eq!(
        server(0x88, &[0x09]),
        Err(DecodeError::Malformed(Malformed::UnknownReason(9)))
    );
    assert_eq!(
        server(0x88, &[0x03, 0xe2, 0x82]),
        Err(DecodeError::Malformed(Malformed::DetailNotUtf8 {
            op: "BYE"
        }))
    );
}

// ---------------------------------------------------------------------------
// USERS splitting
// ---------------------------------------------------------------------------

/// Decodes a stream of USERS frames, checking each is within MAX_FRAME and
/// that only the final one has `last = 1`; returns (frames, all names).
fn decode_roster(stream: &[u8]) -> (usize, Vec<Name>) {
    let mut deframer = Deframer::new();
    let mut input = stream;
    let mut frames = 0;
    let mut all = Vec::new();
    let mut ended = false;
    while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
        assert!(!ended, "a USERS frame after the one with last = 1");
        assert!(
            frame.payload.len() < MAX_FRAME,
            "op + payload within MAX_FRAME"
        );
        let ServerFrame::Users { last, names } = ServerFrame::decode(frame).unwrap() else {
            panic!("not a USERS frame");
        };
        assert!(names.len() <= usize::from(u16::MAX));
        frames += 1;
        all.extend(names);
        ended = last;
    }
    assert!(ended, "no USERS frame had last = 1");
    assert_eq!(deframer.finish(), Ok(()));
    (frames, all)
}

fn numbered_names(count: usize, len: usize) -> Vec<Name> {
    (0..count)
        .map(|i| {
            let s = format!("{i:0>len$}");
            assert_eq!(s.len(), len);
            name(&s)
        })
        .collect()
}

#[test]
fn roster_of_1000_long_names_splits_into_several_frames() {
    let names = numbered_names(1000, MAX_NAME);
    let mut out = Vec::new();
    encode_roster(&mut out, &names);
    let (frames, decoded) = decode_roster(&out);
    // 496 names of 33 bytes fit the 16380 bytes a frame has for names.
    assert_eq!(MAX_USERS_PER_FRAME, 496);
    assert_eq!(frames, 3);
    assert_eq!(decoded.len(), names.len());
    for (got, want) in decoded.iter().zip(&names) {
        assert_eq!(got.as_bytes(), want.as_bytes());
    }
}

#[test]
fn roster_that_exactly_fills_one_frame_is_one_frame() {
    let names = numbered_names(MAX_USERS_PER_FRAME, MAX_NAME);
    let mut out = Vec::new();
    encode_roster(&mut out, &names);
    assert_eq!(decode_roster(&out), (1, names.clone()));
    let one_more = numbered_names(MAX_USERS_PER_FRAME + 1, MAX_NAME);
    let mut out = Vec::new();
    encode_roster(&mut out, &one_more);
    assert_eq!(decode_roster(&out), (2, one_more));
}

#[test]
fn roster_of_many_short_names_packs_each_frame_full() {
    // 20000 one-byte names: 8190 per frame (2 bytes each in 16380).
    let names: Vec<Name> = (0..20_000)
        .map(|i| name(&char::from(b'a' + (i % 26) as u8).to_string()))
        .collect();
    let mut out = Vec::new();
    encode_roster(&mut out, &names);
    let (frames, decoded) = decode_roster(&out);
    assert_eq!(frames, 3);
    assert_eq!(decoded.len(), names.len());
    for (got, want) in decoded.iter().zip(&names) {
        assert_eq!(got.as_bytes(), want.as_bytes());
    }
    // The first frame is filled to the byte.
    assert_eq!(out.get(..4), Some(&(MAX_FRAME as u32).to_be_bytes()[..]));
}

#[test]
fn roster_of_mixed_lengths_round_trips() {
    let names: Vec<Name> = (0..3000)
        .map(|i| name(&"n".repeat(1 + i % MAX_NAME)))
        .collect();
    let mut out = Vec::new();
    encode_roster(&mut out, &names);
    let (frames, decoded) = decode_roster(&out);
    assert!(frames > 1);
    let got: Vec<&[u8]> = decoded.iter().map(Name::as_bytes).collect();
    let want: Vec<&[u8]> = names.iter().map(Name::as_bytes).collect();
    assert_eq!(got, want);
}

#[test]
fn empty_roster_is_one_empty_last_frame() {
    let mut out = Vec::new();
    encode_roster(&mut out, &[]);
    assert_eq!(out, [0x00, 0x00, 0x00, 0x04, 0x87, 0x01, 0x00, 0x00]);
}

#[test]
fn small_roster_is_the_same_bytes_as_one_users_frame() {
    let names = vec![name("alice"), name("bob")];
    let mut out = Vec::new();
    encode_roster(&mut out, &names);
    assert_eq!(
        out,
        [
            0x00, 0x00, 0x00, 0x0e, 0x87, 0x01, 0x00, 0x02, 0x05, 0x61, 0x6c, 0x69, 0x63, 0x65,
            0x03, 0x62, 0x6f, 0x62,
        ]
    );
}

// ---------------------------------------------------------------------------
// Encoding limits
// ---------------------------------------------------------------------------

#[test]
fn server_encode_refuses_an_oversized_detail() {
    // Op + code + detail: MAX_FRAME - 2 detail bytes is the most that fits.
    for make in [
        (|detail: String| ServerFrame::Error {
            code: ErrorCode::NoSuchUser,
            detail,
        }) as fn(String) -> ServerFrame,
        |detail: String| ServerFrame::Bye {
            reason: Reason::ProtocolError,
            detail,
        },
    ] {
        let fits = make("d".repeat(MAX_FRAME - 2));
        let bytes = fits.to_bytes().unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + MAX_FRAME);
        assert_eq!(ServerFrame::decode(raw(&bytes)), Ok(fits));

        let too_big = make("d".repeat(MAX_FRAME - 1));
        let mut out = vec![1, 2, 3];
        assert_eq!(
            too_big.encode(&mut out),
            Err(EncodeError::TooLarge(MAX_FRAME + 1))
        );
        assert_eq!(
            out,
            [1, 2, 3],
            "a refused frame leaves the buffer untouched"
        );
        assert_eq!(
            make("é".repeat(MAX_FRAME)).to_bytes(),
            Err(EncodeError::TooLarge(2 + 2 * MAX_FRAME))
        );
    }
}

#[test]
fn server_encode_refuses_too_many_users() {
    let names = numbered_names(MAX_USERS_PER_FRAME + 1, MAX_NAME);
    let frame = ServerFrame::Users { last: true, names };
    let mut out = Vec::new();
    assert_eq!(
        frame.encode(&mut out),
        Err(EncodeError::TooLarge(
            USERS_OVERHEAD + (MAX_USERS_PER_FRAME + 1) * (1 + MAX_NAME)
        ))
    );
    assert!(out.is_empty());
}

#[test]
fn free_detail_encoders_cut_on_a_character_boundary() {
    // 6000 three-byte characters: 18000 bytes, cut to 16380 (not 16382, which
    // would split a character).
    let detail = "€".repeat(6000);
    for (op, code) in [(0x82, 1), (0x88, 3)] {
        let mut out = Vec::new();
        if op == 0x82 {
            encode_error(&mut out, ErrorCode::NameTaken, &detail);
        } else {
            encode_bye(&mut out, Reason::ProtocolError, &detail);
        }
        assert_eq!(out.len(), HEADER_LEN + 2 + 16380);
        assert_eq!(out.get(4..6), Some(&[op, code][..]));
        let decoded = ServerFrame::decode(raw(&out)).unwrap();
        let (ServerFrame::Error { detail: got, .. } | ServerFrame::Bye { detail: got, .. }) =
            decoded
        else {
            panic!("not ERROR or BYE");
        };
        assert_eq!(got, "€".repeat(5460));
    }
}

#[test]
fn largest_client_frames_fit() {
    let whisper = ClientFrame::Whisper {
        to: name(&"w".repeat(MAX_NAME)),
        text: text(&"🎉".repeat(MAX_TEXT / 4)),
    };
    let bytes = whisper.to_bytes();
    assert_eq!(bytes.len(), HEADER_LEN + 1 + 1 + MAX_NAME + MAX_TEXT);
    assert_eq!(ClientFrame::decode(raw(&bytes)), Ok(whisper));
}

#[test]
fn op_names_follow_the_contract() {
    let expected = [
        (0x01, "HELLO"),
        (0x02, "SAY"),
        (0x03, "WHISPER"),
        (0x04, "WHO"),
        (0x05, "PING"),
        (0x06, "PONG"),
        (0x07, "BYE"),
        (0x81, "WELCOME"),
        (0x82, "ERROR"),
        (0x83, "MESSAGE"),
        (0x84, "PRIVATE"),
        (0x85, "JOINED"),
        (0x86, "LEFT"),
        (0x87, "USERS"),
        (0x88, "BYE"),
    ];
    for (byte, want) in expected {
        assert_eq!(op_name(byte), want, "op 0x{byte:02x}");
    }
    assert_eq!(op_name(0x00), "unknown");
    assert_eq!(op_name(0x80), "unknown");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// A roster grown a name at a time is byte for byte the roster encoded
    /// at once, at every size on the way (frames fill and split alike).
    #[test]
    fn a_roster_grown_name_by_name_is_the_roster_encoded_at_once(
        lengths in proptest::collection::vec(1..=MAX_NAME, 0..1200),
    ) {
        let names: Vec<Name> = lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| name(&format!("{i:0>len$}").chars().rev().take(len).collect::<String>()))
            .collect();
        let mut grown = RosterFrames::new();
        let mut whole = Vec::new();
        encode_roster(&mut whole, &[]);
        proptest::prop_assert_eq!(grown.as_bytes(), &whole[..]);
        for (i, n) in names.iter().enumerate() {
            grown.push(n);
            if i % 97 == 0 || i + 1 == names.len() {
                whole.clear();
                encode_roster(&mut whole, &names[..=i]);
                proptest::prop_assert_eq!(grown.as_bytes(), &whole[..]);
            }
        }
    }
}
