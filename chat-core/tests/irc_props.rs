//! Properties of the IRC line framing and message parser: cutting the stream
//! anywhere changes nothing, lines match a reference model (split at LF, CR
//! dropped, longer than 512 with the ending: too long), and any message
//! written parses back to itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use chat_core::irc::{Line, LineReader, MAX_LINE, Message, write_message};
use proptest::prelude::*;

/// The lines of a whole stream, the obvious way: `None` for one too long.
fn model(stream: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    lines.pop(); // after the last LF: unfinished
    lines
        .into_iter()
        .map(|line| {
            (line.len() < MAX_LINE).then(|| line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        })
        .collect()
}

fn read(stream: &[u8], cuts: &[usize]) -> Vec<Option<Vec<u8>>> {
    let mut reader = LineReader::new();
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    for pair in points.windows(2) {
        let mut input = &stream[pair[0]..pair[1]];
        while let Some(line) = reader.next_line(&mut input) {
            out.push(match line {
                Line::Complete(bytes) => Some(bytes.to_vec()),
                Line::TooLong => None,
            });
        }
        assert!(reader.buffered() < MAX_LINE);
    }
    out
}

/// A stream of lines of mixed lengths (some over the limit) and endings.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        4 => prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40),
        1 => (505usize..520).prop_map(|n| vec![b'a'; n]),
        1 => (0usize..3000).prop_map(|n| vec![b'z'; n]),
    ];
    let ending = prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..])];
    prop::collection::vec((line, ending), 0..20).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(l, e)| [l, e.to_vec()].concat())
            .collect()
    })
}

proptest! {
    #[test]
    fn lines_do_not_depend_on_where_the_stream_is_cut(
        stream in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let whole = read(&stream, &[]);
        prop_assert_eq!(&whole, &model(&stream));
        prop_assert_eq!(read(&stream, &cuts), whole);
    }

    #[test]
    fn byte_by_byte_is_the_same(stream in stream()) {
        let cuts: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(read(&stream, &cuts), model(&stream));
    }

    #[test]
    fn parsing_never_fails_on_a_command_and_written_messages_parse_back(
        command in "[A-Za-z]{1,10}|[0-9]{3}",
        middle in prop::collection::vec("[^ \r\n\0:][^ \r\n\0]{0,10}", 0..5),
        last in "[^\r\n\0]{0,30}",
    ) {
        let mut params: Vec<&str> = middle.iter().map(String::as_str).collect();
        params.push(&last);
        let mut out = Vec::new();
        prop_assert!(write_message(&mut out, Some("chat.local"), &command, &params));
        let line = out.strip_suffix(b"\r\n").unwrap();
        let message = Message::parse(line).unwrap();
        prop_assert!(message.is(&command));
        let got: Vec<&[u8]> = message.params().to_vec();
        let want: Vec<&[u8]> = params.iter().map(|p| p.as_bytes()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly(line in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(message) = Message::parse(&line) {
            prop_assert!(!message.command.is_empty());
            prop_assert!(message.params().len() <= chat_core::irc::MAX_PARAMS);
        }
    }
}
