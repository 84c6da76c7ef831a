//! [`Name`]: a validated user name.
//!
//! Invariants: a `Name` always holds 1–[`MAX_NAME`] bytes of ASCII
//! `A–Z a–z 0–9 _ -`, exactly as the user spelled it. Equality, ordering and
//! hashing ignore ASCII case, so `Alice` and `alice` are one user, while
//! [`Name::as_str`] still shows the registered spelling.
//!
//! A `Name` is stored inline (no heap allocation) and is `Copy`, which keeps the
//! roster and every frame that carries a name free of per-name allocations.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest valid name, in bytes.
pub const MAX_NAME: usize = 32;

/// Why a byte string is not a valid [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name has no bytes.
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME`] bytes.
    #[error("name is {0} bytes long; at most 32 are allowed")]
    TooLong(usize),
    /// The name holds a byte outside `A–Z a–z 0–9 _ -`.
    #[error("name contains byte 0x{0:02x}; only A-Z a-z 0-9 _ - are allowed")]
    BadByte(u8),
}

/// A valid user name: 1–32 bytes of `A–Z a–z 0–9 _ -`, compared ignoring ASCII case.
///
/// ```
/// use chat_core::Name;
/// let alice = Name::new("Alice").unwrap();
/// assert_eq!(alice, Name::new("aLiCe").unwrap());
/// assert_eq!(alice.as_str(), "Alice");
/// assert!(Name::new("no spaces").is_err());
/// ```
#[derive(Clone, Copy)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME],
}

impl Name {
    /// Checks `name` and builds a `Name` from it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        Self::from_bytes(name.as_bytes())
    }

    /// Checks raw bytes (as they arrive on the wire) and builds a `Name`.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_NAME {
            return Err(NameError::TooLong(raw.len()));
        }
        if let Some(&bad) = raw.iter().find(|b| !is_name_byte(**b)) {
            return Err(NameError::BadByte(bad));
        }
        let mut bytes = [0; MAX_NAME];
        bytes
            .get_mut(..raw.len())
            .ok_or(NameError::TooLong(raw.len()))?
            .copy_from_slice(raw);
        // Cannot truncate: raw.len() <= MAX_NAME = 32.
        Ok(Self {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The name as registered (original case).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (`from_bytes` checks), so this
        // never fails; if it did, say so where it can be seen.
        let text = std::str::from_utf8(self.as_bytes());
        debug_assert!(
            text.is_ok(),
            "invariant broken: a Name holds non-ASCII bytes"
        );
        text.unwrap_or_default()
    }

    /// The name's bytes as registered.
    pub fn as_bytes(&self) -> &[u8] {
        crate::in_bounds(&self.bytes, ..usize::from(self.len))
    }

    /// The name's length in bytes (1–32).
    #[allow(clippy::len_without_is_empty)] // a Name is never empty
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    fn folded(&self) -> impl Iterator<Item = u8> + '_ {
        self.as_bytes().iter().map(u8::to_ascii_lowercase)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().eq_ignore_ascii_case(other.as_bytes())
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.len);
        for b in self.folded() {
            state.write_u8(b);
        }
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.folded().cmp(other.folded())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn accepts_every_allowed_byte_and_both_length_limits() {
        let all = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-0123";
        assert_eq!(Name::new(all).unwrap().as_str(), all);
        assert_eq!(Name::new("z").unwrap().len(), 1);
        assert_eq!(
            Name::new("abcdefghijklmnopqrstuvwxyz789_-").unwrap().len(),
            31
        );
    }

    #[test]
    fn rejects_empty_long_and_foreign_bytes() {
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new(&"a".repeat(33)), Err(NameError::TooLong(33)));
        for bad in ["a b", "a.b", "é", "a\0", "a\n", "a/b", "@"] {
            assert!(
                matches!(Name::new(bad), Err(NameError::BadByte(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn case_insensitive_equality_hash_and_order_keep_spelling() {
        let a = Name::new("Alice").unwrap();
        let b = Name::new("aLICE").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let set: HashSet<Name> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(set.iter().next().unwrap().as_str(), "Alice");
        assert_ne!(a, Name::new("Alicia").unwrap());
        assert!(Name::new("ab").unwrap() < Name::new("AC").unwrap());
    }
}
