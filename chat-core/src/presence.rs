//! [`Presence`]: who is registered, under which name, on which connection.
//!
//! Invariants: names are unique ignoring ASCII case; `names[i]` and `conns[i]`
//! describe the same member; `by_name` maps every member's name to its index.
//! Every operation is O(1) (hash lookups and `swap_remove`), so registration and
//! departure cost the same with five or five thousand users. The order of the
//! member list is unspecified.

use std::collections::HashMap;

use crate::name::Name;

/// The registered users, keyed by case-insensitive name.
#[derive(Debug)]
pub(crate) struct Presence<Id> {
    names: Vec<Name>,
    conns: Vec<Id>,
    by_name: HashMap<Name, usize>,
}

impl<Id: Copy> Default for Presence<Id> {
    fn default() -> Self {
        Self {
            names: Vec::new(),
            conns: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<Id: Copy> Presence<Id> {
    /// Registers `name` for `conn`; `false` (and no change) if the name is taken.
    pub(crate) fn insert(&mut self, name: Name, conn: Id) -> bool {
        if self.by_name.contains_key(&name) {
            return false;
        }
        self.by_name.insert(name, self.names.len());
        self.names.push(name);
        self.conns.push(conn);
        true
    }

    /// Removes the member registered under `name` (any case), returning its
    /// connection. The name is free again at once.
    pub(crate) fn remove(&mut self, name: &Name) -> Option<Id> {
        let index = self.by_name.remove(name)?;
        self.names.swap_remove(index);
        let conn = self.conns.swap_remove(index);
        if let Some(moved) = self.names.get(index) {
            self.by_name.insert(*moved, index);
        }
        Some(conn)
    }

    /// The connection of the member called `name` (any case).
    /// Every member's connection, in the same order as [`names`](Self::names).
    pub(crate) fn conns(&self) -> &[Id] {
        &self.conns
    }

    pub(crate) fn lookup(&self, name: &Name) -> Option<Id> {
        let index = *self.by_name.get(name)?;
        self.conns.get(index).copied()
    }

    /// Whether `name` (any case) is registered.
    pub(crate) fn contains(&self, name: &Name) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every member's name, as registered.
    pub(crate) fn names(&self) -> &[Name] {
        &self.names
    }

    /// How many users are registered.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Forgets everyone.
    pub(crate) fn clear(&mut self) {
        self.names.clear();
        self.conns.clear();
        self.by_name.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn names_are_unique_ignoring_case_and_free_again_on_removal() {
        let mut p = Presence::default();
        assert!(p.insert(n("Alice"), 1));
        assert!(!p.insert(n("ALICE"), 2));
        assert!(p.insert(n("bob"), 2));
        assert_eq!(p.lookup(&n("alice")), Some(1));
        assert_eq!(p.remove(&n("aLiCe")), Some(1));
        assert!(!p.contains(&n("Alice")));
        assert!(p.insert(n("alice"), 3));
        assert_eq!(
            p.names()[p.conns().iter().position(|&c| c == 3).unwrap()].as_str(),
            "alice"
        );
    }

    #[test]
    fn swap_remove_keeps_the_index_consistent() {
        let mut p = Presence::default();
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(p.insert(n(name), i));
        }
        assert_eq!(p.remove(&n("a")), Some(0));
        assert_eq!(p.remove(&n("c")), Some(2));
        assert_eq!(p.len(), 2);
        assert_eq!(p.lookup(&n("b")), Some(1));
        assert_eq!(p.lookup(&n("d")), Some(3));
        for (name, conn) in p.names().iter().zip(p.conns()) {
            assert_eq!(p.lookup(name), Some(*conn));
        }
        assert_eq!(p.remove(&n("zz")), None);
    }
}
