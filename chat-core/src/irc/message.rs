//! IRC messages: `[@tags] [:source] COMMAND [params] [:trailing]`, parsed in
//! place and written back.
//!
//! Invariants: parsing never copies and never fails on a non-empty command;
//! at most [`MAX_PARAMS`] parameters, the last taking the rest of the line
//! when there would be more (as RFC 1459's 14 + trailing); writing uses the
//! trailing form exactly when the last parameter needs it, so that what is
//! written parses back to the same parameters.

use super::MAX_LINE;

/// Most parameters of a message.
pub const MAX_PARAMS: usize = 15;

/// Why a line is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but spaces (and perhaps tags or a source): ignored, as the
    /// Modern IRC document says of empty messages.
    #[error("empty message")]
    Empty,
    /// The command is neither letters nor three digits.
    #[error("the command is not letters or a three-digit number")]
    BadCommand,
}

/// One parsed line, borrowing from it. Parameters are bytes: IRC does not
/// promise UTF-8, and a parameter is checked where its meaning is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// IRCv3 message tags, without the `@` (ignored by this server).
    pub tags: Option<&'a [u8]>,
    /// The source, without the `:` (clients should not send one).
    pub source: Option<&'a [u8]>,
    /// The command as sent; compare with [`is`](Self::is).
    pub command: &'a [u8],
    params: [&'a [u8]; MAX_PARAMS],
    count: usize,
}

impl<'a> Message<'a> {
    /// Parses a line (without its CR LF).
    ///
    /// ```
    /// use chat_core::irc::Message;
    ///
    /// let m = Message::parse(b"privmsg #lobby :hello there").unwrap();
    /// assert!(m.is("PRIVMSG"));
    /// assert_eq!(m.params(), [&b"#lobby"[..], b"hello there"]);
    /// ```
    pub fn parse(line: &'a [u8]) -> Result<Self, ParseError> {
        let (tags, source, command, tail) = head(line);
        if command.is_empty() {
            return Err(ParseError::Empty);
        }
        let letters = command.iter().all(u8::is_ascii_alphabetic);
        let numeric = command.len() == 3 && command.iter().all(u8::is_ascii_digit);
        if !letters && !numeric {
            return Err(ParseError::BadCommand);
        }
        let mut message = Self {
            tags,
            source,
            command,
            params: [&[]; MAX_PARAMS],
            count: 0,
        };
        let mut rest = trim_spaces(tail);
        while !rest.is_empty() {
            let last = message.count + 1 == MAX_PARAMS;
            let param = match rest.strip_prefix(b":") {
                Some(trailing) => {
                    rest = &[];
                    trailing
                }
                None if last => std::mem::take(&mut rest),
                None => {
                    let (word, tail) = split_word(rest);
                    rest = trim_spaces(tail);
                    word
                }
            };
            if let Some(slot) = message.params.get_mut(message.count) {
                *slot = param;
                message.count += 1;
            }
        }
        Ok(message)
    }

    /// Whether the command is `name` (ASCII case-insensitively).
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The parameters, the trailing one included.
    pub fn params(&self) -> &[&'a [u8]] {
        self.params.get(..self.count).unwrap_or_default()
    }

    /// Parameter `i`, if there is one.
    pub fn param(&self, i: usize) -> Option<&'a [u8]> {
        self.params().get(i).copied()
    }
}

/// The command word of `line` as sent, valid or not (for the 421 or 451
/// that answers a line [`Message::parse`] refuses as
/// [`ParseError::BadCommand`]).
pub fn command_word(line: &[u8]) -> &[u8] {
    head(line).2
}

/// Tags, source, command word and the rest of a line.
type Head<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [u8], &'a [u8]);

fn head(line: &[u8]) -> Head<'_> {
    let mut rest = trim_spaces(line);
    let mut tags = None;
    if let Some(after) = rest.strip_prefix(b"@") {
        let (word, tail) = split_word(after);
        tags = Some(word);
        rest = trim_spaces(tail);
    }
    let mut source = None;
    if let Some(after) = rest.strip_prefix(b":") {
        let (word, tail) = split_word(after);
        source = Some(word);
        rest = trim_spaces(tail);
    }
    let (command, tail) = split_word(rest);
    (tags, source, command, tail)
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The bytes up to the first space, and what follows that space.
fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            bytes.get(at + 1..).unwrap_or_default(),
        ),
        None => (bytes, &[]),
    }
}

/// Appends `[:source] COMMAND params... CRLF`; the last parameter takes the
/// trailing form (`:`) when it is empty, holds a space or starts with `:`.
/// Returns `false`, and appends nothing, if the line would pass
/// [`MAX_LINE`] or a parameter could not be written (a CR, LF or NUL
/// anywhere; a space or leading `:` in any but the last): the caller splits
/// or refuses.
pub fn write_message(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    params: &[&str],
) -> bool {
    write(out, source, command, params, false)
}

/// [`write_message`] with the last parameter always in the trailing form,
/// as servers write free text (a message, a topic, a reason) so that
/// clients that look for the `:` find it. A text too long for the line is
/// cut at a character boundary to fit, never dropped.
pub fn write_text_message(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    params: &[&str],
) -> bool {
    write(out, source, command, params, true)
}

fn write(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    params: &[&str],
    text: bool,
) -> bool {
    let forbidden = |p: &str| p.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
    let needs_trailing = |p: &str| p.is_empty() || p.contains(' ') || p.starts_with(':');
    let (middle, last) = match params.split_last() {
        Some((last, middle)) => (middle, Some(*last)),
        None => (params, None),
    };
    let word = |w: &str| !w.is_empty() && !forbidden(w) && !w.contains(' ');
    if params.len() > MAX_PARAMS
        || params.iter().any(|p| forbidden(p))
        || middle.iter().any(|p| needs_trailing(p))
        || source.is_some_and(|s| !word(s))
        || !word(command)
        || command.starts_with(':')
    {
        return false;
    }
    let length = source.map_or(0, |s| s.len() + 2)
        + command.len()
        + params.iter().map(|p| p.len() + 1).sum::<usize>()
        + usize::from(last.is_some_and(|p| text || needs_trailing(p)))
        + 2;
    let last = match last {
        Some(last) if length > MAX_LINE && text => {
            let over = length - MAX_LINE;
            if over > last.len() {
                return false;
            }
            let mut end = last.len() - over;
            while !last.is_char_boundary(end) {
                end -= 1;
            }
            Some(last.get(..end).unwrap_or_default())
        }
        _ if length > MAX_LINE => return false,
        last => last,
    };
    if let Some(source) = source {
        out.push(b':');
        out.extend_from_slice(source.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(command.as_bytes());
    for param in middle {
        out.push(b' ');
        out.extend_from_slice(param.as_bytes());
    }
    if let Some(last) = last {
        out.push(b' ');
        if text || needs_trailing(last) {
            out.push(b':');
        }
        out.extend_from_slice(last.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// What a client sent, made fit to be echoed as a middle parameter of a
/// reply (a nick that was refused, a subcommand): no line breaks or NULs,
/// no spaces, no leading `:`, not empty, at most 64 bytes. A refusal that
/// could not be written would leave the client without its numeric.
pub fn echo(sent: &str) -> String {
    let mut out: String = sent
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .map(|c| if c == ' ' { '_' } else { c })
        .collect();
    if out.starts_with(':') {
        out.replace_range(..1, "_");
    }
    let mut end = out.len().min(64);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    if out.is_empty() {
        out.push('*');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(m: &Message<'a>) -> Vec<&'a [u8]> {
        m.params().to_vec()
    }

    #[test]
    fn source_command_middle_and_trailing() {
        let m = Message::parse(b":nick!u@h PRIVMSG  #lobby   :hi  there ").unwrap();
        assert_eq!(m.source, Some(&b"nick!u@h"[..]));
        assert!(m.is("privmsg"));
        assert_eq!(params(&m), [&b"#lobby"[..], b"hi  there "]);
        let m = Message::parse(b"@time=1 NICK bob").unwrap();
        assert_eq!(m.tags, Some(&b"time=1"[..]));
        assert_eq!(params(&m), [&b"bob"[..]]);
        let m = Message::parse(b"USER a 0 * :").unwrap();
        assert_eq!(params(&m), [&b"a"[..], b"0", b"*", b""]);
        assert_eq!(Message::parse(b"001 x").map(|m| m.is("001")), Ok(true));
    }

    #[test]
    fn empty_and_bad_commands() {
        for line in [&b""[..], b"   ", b":src", b"@tags", b"@tags :src  "] {
            assert_eq!(Message::parse(line), Err(ParseError::Empty), "{line:?}");
        }
        for line in [&b"PR1VMSG x"[..], b"12 x", b"1234", b"\xff"] {
            assert_eq!(
                Message::parse(line),
                Err(ParseError::BadCommand),
                "{line:?}"
            );
        }
    }

    #[test]
    fn the_fifteenth_parameter_takes_the_rest() {
        let line = b"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 :17";
        let m = Message::parse(line).unwrap();
        assert_eq!(m.params().len(), MAX_PARAMS);
        assert_eq!(m.param(14), Some(&b"15 16 :17"[..]));
    }

    #[test]
    fn writing_picks_the_trailing_form_and_refuses_what_cannot_be_written() {
        let mut out = Vec::new();
        assert!(write_message(
            &mut out,
            Some("chat.local"),
            "001",
            &["bob", "Welcome, bob"]
        ));
        assert!(write_message(&mut out, None, "PING", &["token"]));
        assert!(write_message(&mut out, None, "TOPIC", &["#x", ""]));
        assert!(write_message(&mut out, None, "PRIVMSG", &["#x", ":)"]));
        assert_eq!(
            out,
            b":chat.local 001 bob :Welcome, bob\r\nPING token\r\nTOPIC #x :\r\nPRIVMSG #x ::)\r\n"
        );
        let mut out = Vec::new();
        assert!(
            !write_message(&mut out, None, "PRIVMSG", &["a b", "x"]),
            "space in a middle"
        );
        assert!(
            !write_message(&mut out, None, "PRIVMSG", &["#x", "a\r\nQUIT"]),
            "line break"
        );
        let long = "x".repeat(MAX_LINE);
        assert!(!write_message(&mut out, None, "PRIVMSG", &["#x", &long]));
        assert!(out.is_empty());
        let fits = "x".repeat(MAX_LINE - "PRIVMSG #x \r\n".len());
        assert!(write_message(&mut out, None, "PRIVMSG", &["#x", &fits]));
        assert_eq!(out.len(), MAX_LINE);
        assert!(!write_message(
            &mut out,
            None,
            "PRIVMSG",
            &["#x", &format!("{fits}y")]
        ));
    }

    #[test]
    fn source_and_command_are_checked_too_and_echoes_always_fit() {
        let mut out = Vec::new();
        assert!(!write_message(
            &mut out,
            Some("n!a\rb@h"),
            "PRIVMSG",
            &["#x", "hi"]
        ));
        assert!(!write_message(
            &mut out,
            Some("a b"),
            "PRIVMSG",
            &["#x", "hi"]
        ));
        assert!(!write_message(&mut out, Some(""), "PRIVMSG", &["#x", "hi"]));
        assert!(!write_message(&mut out, None, "PRIV MSG", &["#x"]));
        assert!(out.is_empty());
        for sent in ["", ":", "a b", "::x", "a\r\nQUIT", &"é".repeat(100)] {
            let echoed = echo(sent);
            assert!(
                write_message(
                    &mut out,
                    Some("s"),
                    "432",
                    &["*", &echoed, "Erroneous nickname"]
                ),
                "{sent:?}"
            );
            assert!(echoed.len() <= 64);
        }
    }

    #[test]
    fn what_is_written_parses_back() {
        for params in [&["a"][..], &["a", "b c"], &["a", ""], &["a", ":b"], &[]] {
            let mut out = Vec::new();
            assert!(write_message(&mut out, Some("s"), "CMD", params));
            let line = out.strip_suffix(b"\r\n").unwrap();
            let m = Message::parse(line).unwrap();
            let got: Vec<&[u8]> = m.params().to_vec();
            let want: Vec<&[u8]> = params.iter().map(|p| p.as_bytes()).collect();
            assert_eq!(got, want);
        }
    }
}
