//! The IRC line reader and message parser on arbitrary bytes. The first byte
//! seeds the read sizes: the lines must be the same as from the whole
//! stream at once; the reader never holds 512 bytes; every line that parses
//! has a command and at most 15 parameters, and written back (where it can
//! be) parses to the same parameters.
#![no_main]

use chat_core::irc::{Line, LineReader, MAX_LINE, MAX_PARAMS, Message, write_message};

fn lines(stream: &[u8], piece: usize) -> Vec<Option<Vec<u8>>> {
    let mut reader = LineReader::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(piece.max(1)) {
        let mut input = chunk;
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

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let whole = lines(stream, stream.len());
    assert_eq!(lines(stream, usize::from(seed % 64) + 1), whole, "split-invariance");
    for line in whole.iter().flatten() {
        assert!(line.len() < MAX_LINE);
        let Ok(message) = Message::parse(line) else { continue };
        assert!(!message.command.is_empty() && message.params().len() <= MAX_PARAMS);
        let (Ok(command), Ok(params)) = (
            std::str::from_utf8(message.command),
            message.params().iter().map(|p| std::str::from_utf8(p)).collect::<Result<Vec<_>, _>>(),
        ) else {
            continue;
        };
        let mut out = Vec::new();
        if write_message(&mut out, None, command, &params) {
            let again = Message::parse(out.strip_suffix(b"\r\n").unwrap()).unwrap();
            assert!(again.is(command));
            assert_eq!(again.params(), message.params());
        }
    }
});
