//! Text between IRC and the native protocol (`../shared/IRC.md`, "The
//! lobby").
//!
//! Towards native users: IRC formatting codes are removed, `\x01ACTION
//! text\x01` becomes `/me text`, other CTCP is not delivered, and a text left
//! empty is not delivered. Towards IRC users: each LF starts a new line, and a
//! line too long for one message is split at a UTF-8 boundary, never cut.
//!
//! Invariants: [`to_native`] never returns an empty text; [`split_lines`]
//! yields pieces of at most `room` bytes (when `room` is at least 4, the
//! longest UTF-8 character) that concatenate, with the LFs, to the input.

/// Bold, reset, monospace, reverse, italic, strikethrough, underline.
const FORMATTING: [u8; 7] = [0x02, 0x0f, 0x11, 0x16, 0x1d, 0x1e, 0x1f];
/// Colour: `\x03` then up to two digits, optionally `,` and up to two more.
const COLOUR: u8 = 0x03;
/// Hex colour (modern clients): `\x04` then six hex digits, optionally `,`
/// and six more. Not in the contract's list; removed too, as the same kind
/// of code (our reading).
const HEX_COLOUR: u8 = 0x04;
/// Delimits CTCP.
const CTCP: u8 = 0x01;

/// What IRC text becomes for native users: `None` when it is not delivered
/// (CTCP other than ACTION, or nothing left after the formatting codes).
///
/// ```
/// use chat_core::irc::text::to_native;
///
/// assert_eq!(to_native("\x02bold\x02 and \x0304,12red\x03"), Some("bold and red".into()));
/// assert_eq!(to_native("\x01ACTION waves\x01"), Some("/me waves".into()));
/// assert_eq!(to_native("\x01VERSION\x01"), None);
/// assert_eq!(to_native("\x02\x02"), None);
/// ```
pub fn to_native(text: &str) -> Option<String> {
    let (prefix, body) = match text.strip_prefix(CTCP as char) {
        Some(ctcp) => {
            let ctcp = ctcp.strip_suffix(CTCP as char).unwrap_or(ctcp);
            let action = ctcp
                .strip_prefix("ACTION ")
                .or_else(|| (ctcp == "ACTION").then_some(""))?;
            ("/me ", action)
        }
        None => ("", text),
    };
    let stripped = strip_formatting(body);
    if stripped.is_empty() {
        return None;
    }
    Some(format!("{prefix}{stripped}"))
}

/// `text` without IRC formatting codes.
pub fn strip_formatting(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            _ if FORMATTING.contains(&b) => {}
            COLOUR => i = skip_colour(bytes, i, 2, u8::is_ascii_digit),
            HEX_COLOUR => i = skip_colour(bytes, i, 6, u8::is_ascii_hexdigit),
            _ => out.push(b),
        }
    }
    // Only ASCII bytes were removed, so `out` is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Past a colour code's `fg[,bg]` digits (at most `width` each) from `i`.
fn skip_colour(bytes: &[u8], mut i: usize, width: usize, digit: fn(&u8) -> bool) -> usize {
    let run = |from: usize| {
        bytes
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take(width)
            .take_while(|b| digit(b))
            .count()
    };
    let fg = run(i);
    if fg == 0 {
        return i;
    }
    i += fg;
    if bytes.get(i) == Some(&b',') {
        let bg = run(i + 1);
        if bg > 0 {
            i += 1 + bg;
        }
    }
    i
}

/// Native text cut into IRC lines: at each LF, and within a line at UTF-8
/// boundaries into pieces of at most `room` bytes. Empty lines are skipped
/// (an empty PRIVMSG says nothing).
///
/// ```
/// use chat_core::irc::text::split_lines;
///
/// // `é` is two bytes: never cut in half.
/// let pieces: Vec<&str> = split_lines("hxxéllo\nworld", 4).collect();
/// assert_eq!(pieces, ["hxx", "éll", "o", "worl", "d"]);
/// ```
pub fn split_lines(text: &str, room: usize) -> impl Iterator<Item = &str> {
    // Room for the longest character, whatever the caller asks.
    let room = room.max(4);
    text.split('\n').flat_map(move |line| {
        let mut rest = line;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let mut end = rest.len().min(room);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (piece, tail) = rest.split_at(end);
            rest = tail;
            Some(piece)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_formatting_code_of_the_contract_is_removed() {
        let text = "\x02b\x0fr\x11m\x16v\x1di\x1es\x1fu";
        assert_eq!(strip_formatting(text), "brmvisu");
        assert_eq!(
            strip_formatting("\x034red \x0304,1x \x0399,99y \x03,5z"),
            "red x y ,5z"
        );
        assert_eq!(strip_formatting("\x03123"), "3", "two digits at most");
        assert_eq!(strip_formatting("\x04ff0000red\x04"), "red");
    }

    #[test]
    fn ctcp_other_than_action_is_not_delivered() {
        // An action that says nothing is nothing said.
        assert_eq!(to_native("\x01ACTION\x01"), None);
        assert_eq!(
            to_native("\x01ACTION \x02dances"),
            Some("/me dances".into())
        );
        assert_eq!(to_native("\x01PING 123\x01"), None);
        assert_eq!(to_native(""), None);
        assert_eq!(to_native("plain"), Some("plain".into()));
    }

    proptest! {
        #[test]
        fn split_pieces_fit_and_add_up(text in "[a-zé€😀\n ]{0,200}", room in 0usize..40) {
            let pieces: Vec<&str> = split_lines(&text, room).collect();
            for piece in &pieces {
                prop_assert!(!piece.is_empty() && piece.len() <= room.max(4));
                prop_assert!(!piece.contains('\n'));
            }
            let joined: String = pieces.concat();
            prop_assert_eq!(joined, text.replace('\n', ""));
        }

        #[test]
        fn stripping_is_idempotent_and_keeps_other_text(text in "[\\x01-\\x05a-z0-9,\\x0f\\x1f ]{0,80}") {
            let once = strip_formatting(&text);
            prop_assert_eq!(strip_formatting(&once), once.clone());
            prop_assert!(!once.bytes().any(|b| FORMATTING.contains(&b) || b == COLOUR || b == HEX_COLOUR));
            // Without colour codes (whose digits go with them), exactly the
            // formatting bytes go and everything else stays, in order.
            if !text.contains(['\x03', '\x04']) {
                let kept: String = text.chars().filter(|c| !FORMATTING.contains(&(*c as u8))).collect();
                prop_assert_eq!(once, kept);
            }
        }
    }
}
