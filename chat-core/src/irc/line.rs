//! Line framing: a line ends at LF (a CR before it is dropped) and is at most
//! [`MAX_LINE`] bytes with its ending.
//!
//! Invariants: the reader holds at most `MAX_LINE` bytes; a line longer than
//! that is discarded up to its end and reported once; the lines produced do
//! not depend on how the input was split.

/// Most bytes of one line, its CRLF (or LF) included.
pub const MAX_LINE: usize = 512;

/// What [`LineReader::next_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without its CR and LF (possibly empty).
    Complete(&'a [u8]),
    /// A line longer than [`MAX_LINE`] ended; its bytes were dropped.
    TooLong,
}

/// Cuts a byte stream into lines, split anywhere, with bounded memory.
///
/// ```
/// use chat_core::irc::{Line, LineReader};
///
/// let mut reader = LineReader::new();
/// let mut lines = Vec::new();
/// for piece in [&b"NICK al"[..], b"ice\r\nUSER a 0 * :A\n"] {
///     let mut input = piece;
///     while let Some(line) = reader.next_line(&mut input) {
///         if let Line::Complete(bytes) = line {
///             lines.push(bytes.to_vec());
///         }
///     }
/// }
/// assert_eq!(lines, [b"NICK alice".to_vec(), b"USER a 0 * :A".to_vec()]);
/// ```
#[derive(Debug, Default)]
pub struct LineReader {
    /// The start of an unfinished line, or the line last handed out.
    buf: Vec<u8>,
    /// `buf` holds a line handed out: cleared on the next call.
    handed_out: bool,
    /// The unfinished line passed the limit: drop bytes up to its LF.
    discarding: bool,
}

impl LineReader {
    /// A reader with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next line, taking bytes from the front of `*input`; `None` once
    /// every byte of `*input` is taken (kept as the start of a line, or
    /// dropped as part of one too long).
    pub fn next_line<'s, 'i: 's>(&'s mut self, input: &mut &'i [u8]) -> Option<Line<'s>> {
        if std::mem::take(&mut self.handed_out) {
            // Memory back: an idle connection keeps no line buffer.
            self.buf = Vec::new();
        }
        let whole: &'i [u8] = input;
        let Some(end) = whole.iter().position(|&b| b == b'\n') else {
            if !self.discarding {
                if self.buf.len() + whole.len() < MAX_LINE {
                    self.buf.extend_from_slice(whole);
                } else {
                    // No LF within the limit: this line is too long.
                    self.buf = Vec::new();
                    self.discarding = true;
                }
            }
            *input = &[];
            return None;
        };
        let (line, rest) = whole.split_at(end);
        *input = rest.get(1..).unwrap_or_default();
        if std::mem::take(&mut self.discarding) {
            return Some(Line::TooLong);
        }
        // The line with its LF must fit.
        if self.buf.len() + line.len() + 1 > MAX_LINE {
            self.buf = Vec::new();
            return Some(Line::TooLong);
        }
        let line: &'s [u8] = if self.buf.is_empty() {
            line
        } else {
            self.buf.extend_from_slice(line);
            self.handed_out = true;
            &self.buf
        };
        Some(Line::Complete(line.strip_suffix(b"\r").unwrap_or(line)))
    }

    /// Bytes of an unfinished line held (never more than [`MAX_LINE`]).
    pub fn buffered(&self) -> usize {
        if self.handed_out { 0 } else { self.buf.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `stream` fed in pieces of `piece` bytes (`None` for TooLong).
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
                assert!(reader.buffered() < MAX_LINE);
            }
        }
        out
    }

    #[test]
    fn crlf_and_bare_lf_end_lines_and_empty_lines_are_lines() {
        let got = lines(b"PING a\r\nPING b\n\r\n\nPONG", 1000);
        let want: Vec<Option<Vec<u8>>> = vec![
            Some(b"PING a".to_vec()),
            Some(b"PING b".to_vec()),
            Some(vec![]),
            Some(vec![]),
        ];
        assert_eq!(got, want, "the unfinished PONG waits");
    }

    #[test]
    fn the_limit_counts_the_line_ending() {
        let fits_crlf = [vec![b'a'; MAX_LINE - 2], b"\r\n".to_vec()].concat();
        let fits_lf = [vec![b'a'; MAX_LINE - 1], b"\n".to_vec()].concat();
        let over = [vec![b'a'; MAX_LINE - 1], b"\r\n".to_vec()].concat();
        for piece in [1, 7, 511, 512, 513, 4096] {
            assert_eq!(lines(&fits_crlf, piece), [Some(vec![b'a'; MAX_LINE - 2])]);
            assert_eq!(lines(&fits_lf, piece), [Some(vec![b'a'; MAX_LINE - 1])]);
            assert_eq!(lines(&over, piece), [None], "piece {piece}");
        }
    }

    #[test]
    fn a_long_line_is_reported_once_and_the_next_one_is_whole() {
        let stream = [vec![b'x'; 5000], b"\r\nNICK bob\r\n".to_vec()].concat();
        for piece in [1, 100, 512, 5000, 6000] {
            assert_eq!(
                lines(&stream, piece),
                [None, Some(b"NICK bob".to_vec())],
                "{piece}"
            );
        }
    }
}
