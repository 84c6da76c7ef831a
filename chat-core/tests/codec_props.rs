#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]
//! Property tests for the framing layer and the typed frames: round trips,
//! split-invariance, and the deframer's behaviour on arbitrary bytes.
//!
//! The case count is proptest's default (256), which `PROPTEST_CASES` overrides.

use chat_core::codec::{Deframer, HEADER_LEN, RawFrame};
use chat_core::frame::{MAX_USERS_PER_FRAME, RawClientFrame};
use chat_core::{
    ClientFrame, ErrorCode, FrameError, MAX_FRAME, MAX_NAME, MAX_TEXT, Name, Reason, ServerFrame,
    Text,
};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Every byte a name may hold.
const NAME_BYTES: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

fn name() -> impl Strategy<Value = Name> {
    prop::collection::vec(prop::sample::select(NAME_BYTES), 1..=MAX_NAME)
        .prop_map(|bytes| Name::from_bytes(&bytes).unwrap())
}

fn char_in(range: std::ops::Range<u32>) -> impl Strategy<Value = char> {
    range.prop_filter_map("not a char", char::from_u32)
}

/// A character allowed in a text: printable ASCII, TAB, LF, and multi-byte
/// characters of every UTF-8 length (never a C0, DEL or C1 control).
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => char_in(0x20..0x7f),
        1 => Just('\t'),
        1 => Just('\n'),
        2 => char_in(0xa0..0x800),
        2 => char_in(0x800..0xd800),
        1 => char_in(0xe000..0x1_0000),
        2 => char_in(0x1_0000..0x11_0000),
    ]
}

/// Repeats `pattern` until the string reaches `target` bytes or the next
/// character would pass `MAX_TEXT`.
fn cycled_text((pattern, target): (Vec<char>, usize)) -> String {
    let mut s = String::new();
    for c in pattern.iter().cycle() {
        if s.len() >= target || s.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        s.push(*c);
    }
    s
}

/// A valid text: mostly short, sometimes long, sometimes exactly `MAX_TEXT`
/// bytes. Long texts repeat a short random pattern, which keeps generation
/// cheap without losing multi-byte characters or TAB/LF.
fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        6 => prop::collection::vec(text_char(), 1..=40).prop_map(String::from_iter),
        2 => (prop::collection::vec(text_char(), 1..=24), 1..=MAX_TEXT).prop_map(cycled_text),
        1 => text_char().prop_map(|c| {
            let mut s = cycled_text((vec![c], MAX_TEXT));
            while s.len() < MAX_TEXT {
                s.push('x');
            }
            s
        }),
    ]
    .prop_map(|s| Text::new(s).unwrap())
}

/// Any UTF-8 string of up to a few hundred bytes, controls included.
fn detail() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=100).prop_map(String::from_iter)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    (1u8..=6).prop_map(|b| ErrorCode::from_u8(b).unwrap())
}

fn reason() -> impl Strategy<Value = Reason> {
    (0u8..=6).prop_map(|b| Reason::from_u8(b).unwrap())
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        name().prop_map(|name| ClientFrame::Hello { name }),
        text().prop_map(|text| ClientFrame::Say { text }),
        (name(), text()).prop_map(|(to, text)| ClientFrame::Whisper { to, text }),
        Just(ClientFrame::Who),
        any::<u64>().prop_map(|token| ClientFrame::Ping { token }),
        any::<u64>().prop_map(|token| ClientFrame::Pong { token }),
        Just(ClientFrame::Bye),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        any::<u64>().prop_map(|token| ServerFrame::Ping { token }),
        any::<u64>().prop_map(|token| ServerFrame::Pong { token }),
        name().prop_map(|name| ServerFrame::Welcome { name }),
        (error_code(), detail()).prop_map(|(code, detail)| ServerFrame::Error { code, detail }),
        (name(), text()).prop_map(|(from, text)| ServerFrame::Message { from, text }),
        (name(), text()).prop_map(|(from, text)| ServerFrame::Private { from, text }),
        name().prop_map(|name| ServerFrame::Joined { name }),
        (name(), reason()).prop_map(|(name, reason)| ServerFrame::Left { name, reason }),
        (
            any::<bool>(),
            prop_oneof![
                3 => prop::collection::vec(name(), 0..=8),
                1 => prop::collection::vec(name(), 0..=MAX_USERS_PER_FRAME),
            ]
        )
            .prop_map(|(last, names)| ServerFrame::Users { last, names }),
        (reason(), detail()).prop_map(|(reason, detail)| ServerFrame::Bye { reason, detail }),
    ]
}

/// Cut points into a stream: up to 40 positions (sorted, possibly repeated, so
/// empty pieces occur too).
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..40)
}

/// Splits `bytes` at the given cut points.
fn pieces<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        out.push(&bytes[start..end]);
        start = end;
    }
    out.push(&bytes[start..]);
    out
}

/// Byte streams that reach every corner of the deframer: well-formed frames of
/// any op, headers with boundary lengths, and plain noise.
fn wild_stream() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        4 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(op, payload)| {
            let mut out = ((1 + payload.len()) as u32).to_be_bytes().to_vec();
            out.push(op);
            out.extend(payload);
            out
        }),
        2 => (
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(MAX_FRAME as u32 - 1),
                Just(MAX_FRAME as u32),
                Just(MAX_FRAME as u32 + 1),
                Just(u32::MAX),
                0u32..=MAX_FRAME as u32 + 8,
            ],
            prop::collection::vec(any::<u8>(), 0..32),
        )
            .prop_map(|(length, tail)| {
                let mut out = length.to_be_bytes().to_vec();
                out.extend(tail);
                out
            }),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop_oneof![
        4 => prop::collection::vec(segment, 0..12).prop_map(|s| s.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

// ---------------------------------------------------------------------------
// A reference model of framing: the whole stream parsed in one go.
// ---------------------------------------------------------------------------

/// What a whole stream means: its frames, then either an error or how many
/// bytes of an unfinished frame are left at the end.
#[derive(Debug, PartialEq, Eq)]
struct Meaning {
    frames: Vec<(u8, Vec<u8>)>,
    end: Result<usize, FrameError>,
}

fn model(mut bytes: &[u8]) -> Meaning {
    let mut frames = Vec::new();
    loop {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Meaning {
                frames,
                end: Ok(bytes.len()),
            };
        };
        let length = u32::from_be_bytes(*header);
        if length == 0 {
            return Meaning {
                frames,
                end: Err(FrameError::ZeroLength),
            };
        }
        if length as usize > MAX_FRAME {
            return Meaning {
                frames,
                end: Err(FrameError::TooLong(length)),
            };
        }
        let length = length as usize;
        if rest.len() < length {
            return Meaning {
                frames,
                end: Ok(bytes.len()),
            };
        }
        frames.push((rest[0], rest[1..length].to_vec()));
        bytes = &rest[length..];
    }
}

/// Feeds `pieces` to a fresh deframer, checking its invariants on the way, and
/// returns what it made of them.
fn run_deframer(pieces: &[&[u8]]) -> Result<Meaning, TestCaseError> {
    let mut deframer = Deframer::new();
    let mut frames = Vec::new();
    let mut error: Option<FrameError> = None;
    for &piece in pieces {
        let mut input = piece;
        if let Some(sticky) = error {
            // After an error every call repeats it and takes no byte.
            prop_assert_eq!(deframer.next_frame(&mut input), Err(sticky));
            prop_assert_eq!(input.len(), piece.len());
            continue;
        }
        loop {
            match deframer.next_frame(&mut input) {
                Ok(Some(frame)) => {
                    prop_assert!(
                        frame.payload.len() < MAX_FRAME,
                        "op + payload within MAX_FRAME"
                    );
                    // Typed decoding of whatever came out must not panic.
                    let _ = ClientFrame::decode(frame);
                    let _ = ServerFrame::decode(frame);
                    frames.push((frame.op, frame.payload.to_vec()));
                }
                Ok(None) => {
                    prop_assert!(input.is_empty(), "Ok(None) with input left");
                    if deframer.buffered() == 0 {
                        prop_assert_eq!(deframer.capacity(), 0, "an idle deframer holds memory");
                    }
                    break;
                }
                Err(e) => {
                    prop_assert!(deframer.is_failed());
                    let left = input;
                    prop_assert_eq!(deframer.next_frame(&mut input), Err(e));
                    prop_assert_eq!(input, left, "a failed deframer took bytes");
                    error = Some(e);
                    break;
                }
            }
        }
        prop_assert!(
            deframer.buffered() <= HEADER_LEN + MAX_FRAME + piece.len(),
            "buffered {} after a piece of {}",
            deframer.buffered(),
            piece.len()
        );
    }
    let end = match error {
        Some(e) => {
            prop_assert_eq!(deframer.finish(), Err(e));
            Err(e)
        }
        None => {
            let buffered = deframer.buffered();
            let expected = if buffered == 0 {
                Ok(())
            } else {
                Err(FrameError::Truncated { buffered })
            };
            prop_assert_eq!(deframer.finish(), expected);
            Ok(buffered)
        }
    };
    Ok(Meaning { frames, end })
}

/// Deframes a stream of well-formed frames fed in `pieces`, returning raw
/// frames; the stream must end on a frame boundary.
fn deframe_all(pieces: &[&[u8]]) -> Result<Vec<(u8, Vec<u8>)>, TestCaseError> {
    let meaning = run_deframer(pieces)?;
    prop_assert_eq!(meaning.end, Ok(0));
    Ok(meaning.frames)
}

fn raw(frame: &(u8, Vec<u8>)) -> RawFrame<'_> {
    RawFrame {
        op: frame.0,
        payload: &frame.1,
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let bytes = frame.to_bytes();
        prop_assert!(bytes.len() <= HEADER_LEN + MAX_FRAME);
        let frames = deframe_all(&[&bytes])?;
        prop_assert_eq!(frames.len(), 1);
        let raw = raw(&frames[0]);
        prop_assert_eq!(ClientFrame::decode(raw), Ok(frame.clone()));
        prop_assert_eq!(RawClientFrame::parse(raw).unwrap().validate(), Ok(frame));
        // A client frame is never a server frame's twin, except PING/PONG.
        if !matches!(raw.op, 0x05 | 0x06) {
            prop_assert!(ServerFrame::decode(raw).is_err());
        }
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let bytes = frame.to_bytes().unwrap();
        prop_assert!(bytes.len() <= HEADER_LEN + MAX_FRAME);
        let frames = deframe_all(&[&bytes])?;
        prop_assert_eq!(frames.len(), 1);
        let raw = raw(&frames[0]);
        prop_assert_eq!(ServerFrame::decode(raw), Ok(frame));
        if !matches!(raw.op, 0x05 | 0x06) {
            prop_assert!(ClientFrame::decode(raw).is_err());
        }
    }

    #[test]
    fn client_streams_decode_alike_however_cut(
        frames in prop::collection::vec(client_frame(), 0..12),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let whole = deframe_all(&[&stream])?;
        let cut = deframe_all(&pieces(&stream, &cuts))?;
        prop_assert_eq!(&cut, &whole);
        let decoded: Vec<ClientFrame> =
            cut.iter().map(|f| ClientFrame::decode(raw(f)).unwrap()).collect();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn server_streams_decode_alike_however_cut(
        frames in prop::collection::vec(server_frame(), 0..8),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for frame in &frames {
            frame.encode(&mut stream).unwrap();
        }
        let whole = deframe_all(&[&stream])?;
        let cut = deframe_all(&pieces(&stream, &cuts))?;
        prop_assert_eq!(&cut, &whole);
        let decoded: Vec<ServerFrame> =
            cut.iter().map(|f| ServerFrame::decode(raw(f)).unwrap()).collect();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once(frames in prop::collection::vec(client_frame(), 0..4)) {
        let mut stream = Vec::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(deframe_all(&bytes)?, deframe_all(&[&stream])?);
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_pieces_match_the_model(
        stream in wild_stream(),
        cuts in cuts(),
    ) {
        let meaning = run_deframer(&pieces(&stream, &cuts))?;
        prop_assert_eq!(meaning, model(&stream));
    }

    #[test]
    fn a_truncated_stream_reports_what_it_holds(
        frames in prop::collection::vec(client_frame(), 1..6),
        cut in any::<Index>(),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let prefix = &stream[..cut.index(stream.len())];
        let meaning = run_deframer(&pieces(prefix, &cuts))?;
        prop_assert_eq!(meaning, model(prefix));
    }
}
