//! [`Text`]: a validated message text.
//!
//! Invariants: a `Text` is valid UTF-8 of 1–[`MAX_TEXT`] bytes with no C0 control
//! character other than TAB and LF, no DEL and no C1 control (U+0080–U+009F).
//! [`validate_text`] checks borrowed wire bytes without allocating, which is what
//! the server uses on its hot path.

use std::fmt;

/// The longest valid text, in bytes.
pub const MAX_TEXT: usize = 4096;

/// Why bytes are not a valid [`Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text has no bytes.
    #[error("text is empty")]
    Empty,
    /// The text is longer than [`MAX_TEXT`] bytes.
    #[error("text is {0} bytes long; at most 4096 are allowed")]
    TooLong(usize),
    /// The bytes are not UTF-8.
    #[error("text is not valid UTF-8 (from byte {valid_up_to})")]
    NotUtf8 {
        /// How many leading bytes were valid.
        valid_up_to: usize,
    },
    /// The text holds a forbidden control character.
    #[error("text contains control character U+{0:04X}")]
    Control(u32),
}

/// Checks wire bytes against the rules for a text, without copying them.
pub fn validate_text(raw: &[u8]) -> Result<&str, TextError> {
    if raw.is_empty() {
        return Err(TextError::Empty);
    }
    if raw.len() > MAX_TEXT {
        return Err(TextError::TooLong(raw.len()));
    }
    let text = std::str::from_utf8(raw).map_err(|e| TextError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    // Fast path: a branch-free pass the compiler vectorises. Only a text with
    // a byte that could start a forbidden character takes the exact scan.
    let suspicious = raw.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    if !suspicious {
        return Ok(text);
    }
    // On valid UTF-8 every C1 control is the two bytes C2 80..=C2 9F, so one
    // byte pass finds every forbidden character.
    let mut prev = 0u8;
    for &b in raw {
        let forbidden_c0 = b < 0x20 && b != b'\t' && b != b'\n';
        if forbidden_c0 || b == 0x7f {
            return Err(TextError::Control(u32::from(b)));
        }
        if prev == 0xc2 && (0x80..=0x9f).contains(&b) {
            return Err(TextError::Control(u32::from(b)));
        }
        prev = b;
    }
    Ok(text)
}

/// A valid message text (UTF-8, 1–4096 bytes, no forbidden control characters).
///
/// ```
/// use chat_core::Text;
/// assert!(Text::new("hello\tworld\n").is_ok());
/// assert!(Text::new("").is_err());
/// assert!(Text::new("\u{1b}[31mred").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(String);

impl Text {
    /// Checks `text` and builds a `Text`.
    pub fn new(text: impl Into<String>) -> Result<Self, TextError> {
        let text = text.into();
        validate_text(text.as_bytes())?;
        Ok(Self(text))
    }

    /// Checks raw wire bytes and builds a `Text`.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, TextError> {
        validate_text(raw).map(|s| Self(s.to_owned()))
    }

    /// Builds a displayable `Text` from any bytes, for showing what a
    /// misbehaving peer sent: invalid UTF-8 becomes U+FFFD, every control
    /// character a text may not hold (C0 but TAB and LF, DEL, C1) is written
    /// as an escape like `\u{1b}`, and a result over [`MAX_TEXT`] bytes is cut
    /// at a character boundary and ends with `…`. Never raw control bytes.
    pub fn lossy(raw: &[u8]) -> Self {
        use std::fmt::Write as _;
        let mut shown = String::with_capacity(raw.len().min(MAX_TEXT));
        for c in String::from_utf8_lossy(raw).chars() {
            match c {
                '\t' | '\n' => shown.push(c),
                c if c.is_control() => {
                    let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
                }
                c => shown.push(c),
            }
            if shown.len() > MAX_TEXT {
                break;
            }
        }
        if shown.len() > MAX_TEXT {
            let mut cut = MAX_TEXT - '…'.len_utf8();
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            shown.push('…');
        }
        if shown.is_empty() {
            shown.push(char::REPLACEMENT_CHARACTER);
        }
        debug_assert!(validate_text(shown.as_bytes()).is_ok());
        Self(shown)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Unwraps the inner `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Text {
    type Error = TextError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for Text {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tab_lf_unicode_and_both_length_limits() {
        for ok in [
            "a",
            "tab\there",
            "two\nlines",
            "héllo wörld ✓ 🎉",
            "\u{a0}nbsp",
        ] {
            assert_eq!(Text::new(ok).unwrap().as_str(), ok);
        }
        assert!(Text::new("x".repeat(MAX_TEXT)).is_ok());
        // A 4-byte character that ends exactly on the limit.
        assert!(Text::new(format!("{}🎉", "x".repeat(MAX_TEXT - 4))).is_ok());
    }

    #[test]
    fn rejects_empty_too_long_and_bad_utf8() {
        assert_eq!(validate_text(b""), Err(TextError::Empty));
        assert_eq!(
            validate_text(&[b'x'; MAX_TEXT + 1]),
            Err(TextError::TooLong(MAX_TEXT + 1))
        );
        assert_eq!(
            validate_text(b"ab\xff"),
            Err(TextError::NotUtf8 { valid_up_to: 2 })
        );
        assert!(matches!(
            validate_text(b"\xc2"),
            Err(TextError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn rejects_every_forbidden_control_and_nothing_else() {
        for c in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
            let ch = char::from_u32(c).unwrap();
            let allowed = c == 0x09 || c == 0x0a;
            let result = Text::new(format!("a{ch}b"));
            assert_eq!(result.is_ok(), allowed, "U+{c:04X}");
            if !allowed {
                assert_eq!(result, Err(TextError::Control(c)), "U+{c:04X}");
            }
        }
        // Neighbours of the C1 range stay allowed.
        assert!(Text::new("\u{7e}\u{a0}\u{ff}").is_ok());
    }

    #[test]
    fn lossy_text_never_carries_a_forbidden_byte() {
        assert_eq!(
            Text::lossy(b"\x1b[31mred\x07").as_str(),
            "\\u{1b}[31mred\\u{7}"
        );
        assert_eq!(
            Text::lossy(b"tab\tline\n\x7f").as_str(),
            "tab\tline\n\\u{7f}"
        );
        assert_eq!(Text::lossy(b"\xc2\x85 \xff").as_str(), "\\u{85} \u{fffd}");
        assert_eq!(Text::lossy(b"").as_str(), "\u{fffd}");
        let long = Text::lossy(&[0x1b; MAX_TEXT]);
        assert!(long.as_str().len() <= MAX_TEXT && long.as_str().ends_with('…'));
        for raw in [&b"\x00\x01\x02"[..], &[0xe2, 0x82], &[b'a'; MAX_TEXT + 10]] {
            assert!(validate_text(Text::lossy(raw).as_bytes()).is_ok());
        }
    }
}
