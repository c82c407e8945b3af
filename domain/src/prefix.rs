//! Longest-prefix match over digit strings, for destination and caller-region tables of 100k+
//! prefixes.
//!
//! A digit trie stored as one array: every inner node owns a block of ten consecutive child
//! slots, so a lookup is at most 15 array reads with no hashing and no pointer chasing through
//! separate allocations.

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Index of the first of ten consecutive children, or `NONE`.
    children: u32,
    /// Value stored at this prefix, or `NONE`.
    value: u32,
}

const EMPTY: Node = Node { children: NONE, value: NONE };

/// A table from digit prefixes to `u32` values (zone indices).
#[derive(Debug, Clone)]
pub struct PrefixTable {
    nodes: Vec<Node>,
    len: usize,
}

/// A prefix that is not made of 1 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix {0:?} must be 1 to 15 digits")]
pub struct BadPrefix(pub String);

impl Default for PrefixTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PrefixTable {
    /// An empty table.
    pub fn new() -> Self {
        PrefixTable { nodes: vec![EMPTY], len: 0 }
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` at `prefix`; returns the value it replaced, if any.
    pub fn insert(&mut self, prefix: &str, value: u32) -> Result<Option<u32>, BadPrefix> {
        let bytes = prefix.as_bytes();
        if bytes.is_empty() || bytes.len() > 15 || !bytes.iter().all(u8::is_ascii_digit) || value == NONE {
            return Err(BadPrefix(prefix.to_string()));
        }
        let mut node = 0usize;
        for &b in bytes {
            if self.nodes[node].children == NONE {
                let first = self.nodes.len();
                self.nodes[node].children = first as u32;
                self.nodes.extend_from_slice(&[EMPTY; 10]);
            }
            node = self.nodes[node].children as usize + usize::from(b - b'0');
        }
        let old = self.nodes[node].value;
        self.nodes[node].value = value;
        if old == NONE {
            self.len += 1;
            Ok(None)
        } else {
            Ok(Some(old))
        }
    }

    /// The value of the longest stored prefix of `digits`, with that prefix's length.
    pub fn longest_match(&self, digits: &[u8]) -> Option<(u32, usize)> {
        let mut best = None;
        let mut node = 0usize;
        for (depth, &b) in digits.iter().enumerate() {
            let children = self.nodes[node].children;
            if children == NONE || !b.is_ascii_digit() {
                break;
            }
            node = children as usize + usize::from(b - b'0');
            let value = self.nodes[node].value;
            if value != NONE {
                best = Some((value, depth + 1));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longest_prefix_wins() {
        let mut t = PrefixTable::new();
        t.insert("49", 1).unwrap();
        t.insert("4915", 2).unwrap();
        t.insert("49151", 3).unwrap();
        assert_eq!(t.longest_match(b"4930123"), Some((1, 2)));
        assert_eq!(t.longest_match(b"4915012"), Some((2, 4)));
        assert_eq!(t.longest_match(b"4915112"), Some((3, 5)));
        assert_eq!(t.longest_match(b"3912345"), None);
        assert_eq!(t.longest_match(b"4"), None);
        assert_eq!(t.insert("49", 7).unwrap(), Some(1));
        assert_eq!(t.len(), 3);
        assert!(t.insert("4a", 1).is_err());
        assert!(t.insert("", 1).is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_scan(
            prefixes in proptest::collection::vec("[0-9]{1,6}", 1..300),
            numbers in proptest::collection::vec("[0-9]{1,12}", 1..100),
        ) {
            let mut t = PrefixTable::new();
            let mut naive: Vec<(String, u32)> = Vec::new();
            for (i, p) in prefixes.iter().enumerate() {
                t.insert(p, i as u32).unwrap();
                naive.retain(|(q, _)| q != p);
                naive.push((p.clone(), i as u32));
            }
            for n in &numbers {
                let expected = naive
                    .iter()
                    .filter(|(p, _)| n.starts_with(p.as_str()))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(p, v)| (*v, p.len()));
                prop_assert_eq!(t.longest_match(n.as_bytes()), expected);
            }
        }
    }
}
