//! Channel `MODE` arguments (`+ok-l alice key`) read into the typed changes
//! of [`crate::channel`].
//!
//! Which letters take an argument follows the ISUPPORT `CHANMODES=beI,k,l,imnst`
//! and `PREFIX=(ov)@+` this server advertises: list modes and `o`/`v` take
//! one when set and when unset, `k` when set (and, as most servers accept,
//! when unset), `l` only when set. A list mode without an argument is a
//! request for the list.
//!
//! Invariants: parsing never panics; at most [`MAX_MODES`] changes with
//! arguments are taken from one command (the rest is ignored, as servers do
//! with their `MODES=` limit).

use crate::channel::{Flag, List, ModeChange};

/// Most changes that take an argument in one MODE command (ISUPPORT `MODES`).
pub const MAX_MODES: usize = 6;

/// What one MODE command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRequest {
    /// The changes, members named by nick (the caller resolves them).
    pub changes: Vec<ModeChange<String>>,
    /// Lists asked for (`MODE #x b`): answered with 367/368, 348/349, 346/347.
    pub queries: Vec<List>,
    /// Letters that are not channel modes (472 ERR_UNKNOWNMODE each).
    pub unknown: Vec<char>,
    /// A letter needed an argument that was not there (461, once).
    pub missing_argument: bool,
    /// A limit that is not a positive number (`+l lots`): the letter and
    /// the argument, for a 696 ERR_INVALIDMODEPARAM each.
    pub invalid: Vec<(char, String)>,
}

/// Reads `modes` (`+ok-l`) and its `args`.
///
/// ```
/// use chat_core::channel::{Flag, ModeChange};
/// use chat_core::irc::mode::parse_channel_modes;
///
/// let request = parse_channel_modes("+nt-k+o", &["key", "alice"]);
/// assert_eq!(request.changes, [
///     ModeChange::Flag(Flag::NoExternal, true),
///     ModeChange::Flag(Flag::TopicLock, true),
///     ModeChange::Key(None),
///     ModeChange::Op("alice".to_owned(), true),
/// ]);
/// ```
pub fn parse_channel_modes(modes: &str, args: &[&str]) -> ModeRequest {
    let mut request = ModeRequest {
        changes: Vec::new(),
        queries: Vec::new(),
        unknown: Vec::new(),
        missing_argument: false,
        invalid: Vec::new(),
    };
    let mut args = args.iter().copied();
    let mut with_argument = 0;
    let mut on = true;
    for letter in modes.chars() {
        let list = match letter {
            '+' | '-' => {
                on = letter == '+';
                continue;
            }
            'b' => Some(List::Ban),
            'e' => Some(List::Except),
            'I' => Some(List::Invite),
            _ => None,
        };
        let flag = Flag::ALL
            .iter()
            .find(|(_, l)| *l == letter)
            .map(|(f, _)| *f);
        let takes_argument =
            list.is_some() || matches!(letter, 'o' | 'v' | 'k') || (letter == 'l' && on);
        if !takes_argument {
            match flag {
                Some(flag) => request.changes.push(ModeChange::Flag(flag, on)),
                None if letter == 'l' => request.changes.push(ModeChange::Limit(None)),
                None if request.unknown.contains(&letter) => {}
                None => request.unknown.push(letter),
            }
            continue;
        }
        if with_argument == MAX_MODES {
            continue;
        }
        let argument = args.next();
        let Some(argument) = argument else {
            match list {
                // Each list once, however often it is asked for.
                Some(list) if request.queries.contains(&list) => {}
                Some(list) => request.queries.push(list),
                // `-k` without the key: accepted.
                None if letter == 'k' && !on => request.changes.push(ModeChange::Key(None)),
                None => request.missing_argument = true,
            }
            continue;
        };
        with_argument += 1;
        let change = match (letter, list) {
            (_, Some(list)) => ModeChange::Mask(list, argument.to_owned(), on),
            ('o', _) => ModeChange::Op(argument.to_owned(), on),
            ('v', _) => ModeChange::Voice(argument.to_owned(), on),
            ('k', _) => ModeChange::Key(on.then(|| argument.to_owned())),
            _ => match argument.parse::<usize>() {
                Ok(limit) if limit > 0 => ModeChange::Limit(Some(limit)),
                // Not a positive number: refused with its own 696, the rest
                // of the line goes on.
                _ => {
                    request.invalid.push((letter, argument.to_owned()));
                    continue;
                }
            },
        };
        request.changes.push(change);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_go_to_the_letters_that_take_them() {
        let request = parse_channel_modes("+kl-v+b", &["sesame", "10", "bob", "*!*@bad"]);
        assert_eq!(
            request.changes,
            [
                ModeChange::Key(Some("sesame".into())),
                ModeChange::Limit(Some(10)),
                ModeChange::Voice("bob".into(), false),
                ModeChange::Mask(List::Ban, "*!*@bad".into(), true),
            ]
        );
        assert!(
            request.queries.is_empty() && request.unknown.is_empty() && !request.missing_argument
        );
        assert_eq!(
            parse_channel_modes("-l", &[]).changes,
            [ModeChange::Limit(None)]
        );
    }

    #[test]
    fn lists_without_argument_are_queries_and_unknown_letters_are_named() {
        let request = parse_channel_modes("bIxz", &[]);
        assert_eq!(request.queries, [List::Ban, List::Invite]);
        assert_eq!(request.unknown, ['x', 'z']);
        assert!(parse_channel_modes("+o", &[]).missing_argument);
        assert!(parse_channel_modes("+k", &[]).missing_argument);
        assert_eq!(
            parse_channel_modes("-k", &[]).changes,
            [ModeChange::Key(None)]
        );
        for bad in ["lots", "0", "-1"] {
            let request = parse_channel_modes("+lt", &[bad]);
            assert_eq!(request.invalid, [('l', bad.to_owned())]);
            assert_eq!(
                request.changes,
                [ModeChange::Flag(Flag::TopicLock, true)],
                "the rest of the line goes on"
            );
        }
    }

    #[test]
    fn each_list_and_unknown_letter_is_answered_once() {
        let request = parse_channel_modes(&"b".repeat(500), &[]);
        assert_eq!(request.queries, [List::Ban]);
        assert_eq!(
            parse_channel_modes(&"xy".repeat(200), &[]).unknown,
            ['x', 'y']
        );
    }

    #[test]
    fn at_most_six_changes_with_arguments() {
        let nicks = ["a", "b", "c", "d", "e", "f", "g"];
        let request = parse_channel_modes("+ooooooo", &nicks);
        assert_eq!(request.changes.len(), MAX_MODES);
    }
}
