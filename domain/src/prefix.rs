//! Longest-prefix match over digit strings, for destination and caller-region tables of 100k+
//! prefixes.
//!
//! A digit trie stored in one array: every inner node owns a block of ten consecutive child
//! slots, so a lookup is array reads with no hashing. Chains without branches are compressed:
//! a node whose subtree holds a single prefix stores the remaining digits as a *tail* instead of
//! a chain of blocks. Real and random prefix sets branch densely near the root and sparsely
//! below it, so this keeps a 100k-prefix table in a few megabytes (cache-resident) instead of
//! tens.

const NONE: u32 = u32::MAX;
/// High bit of `Node::link`: the rest is an index into `tails`, not a child block.
const TAIL: u32 = 1 << 31;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// `NONE`, the index of the first of ten consecutive children, or `TAIL | tail index`.
    link: u32,
    /// Value stored at this prefix, or `NONE`.
    value: u32,
}

const EMPTY: Node = Node {
    link: NONE,
    value: NONE,
};

/// Remaining digits below a node whose subtree holds exactly one prefix.
#[derive(Debug, Clone, Copy)]
struct Tail {
    digits: [u8; 15],
    len: u8,
    value: u32,
}

/// Digits resolved at once by the jump table.
const JUMP_DIGITS: usize = 4;
const JUMP_SIZE: usize = 10_000;

/// Where the walk stands after the first `JUMP_DIGITS` digits.
#[derive(Debug, Clone, Copy)]
struct Jump {
    /// Node at depth `JUMP_DIGITS`, or `NONE` when the path ends or turns into a tail earlier
    /// (then the ordinary walk is used).
    node: u32,
    /// Best value found on the way, or `NONE`.
    value: u32,
    /// Its prefix length.
    len: u32,
}

/// A table from digit prefixes to `u32` values (zone indices).
#[derive(Debug, Clone)]
pub struct PrefixTable {
    nodes: Vec<Node>,
    tails: Vec<Tail>,
    free_tails: Vec<u32>,
    /// Direct index of the first four digits, built by [`PrefixTable::optimise`]: one read
    /// instead of four dependent ones near the root.
    jump: Vec<Jump>,
    len: usize,
}

/// A prefix that is not made of 1 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix {0:?} must be 1 to 15 digits")]
pub struct BadPrefix(pub String);

/// Checks that `prefix` is 1 to 15 digits, as [`PrefixTable::insert`] requires.
pub fn check_prefix(prefix: &str) -> Result<(), BadPrefix> {
    let bytes = prefix.as_bytes();
    if bytes.is_empty() || bytes.len() > 15 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(BadPrefix(prefix.to_string()));
    }
    Ok(())
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PrefixTable {
    /// An empty table.
    pub fn new() -> Self {
        PrefixTable {
            nodes: vec![EMPTY],
            tails: Vec::new(),
            free_tails: Vec::new(),
            jump: Vec::new(),
            len: 0,
        }
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate memory used, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>()
            + self.tails.len() * std::mem::size_of::<Tail>()
    }

    fn new_tail(&mut self, digits: &[u8], value: u32) -> u32 {
        let mut tail = Tail {
            digits: [0; 15],
            len: digits.len() as u8,
            value,
        };
        tail.digits[..digits.len()].copy_from_slice(digits);
        match self.free_tails.pop() {
            Some(i) => {
                self.tails[i as usize] = tail;
                i
            }
            None => {
                self.tails.push(tail);
                (self.tails.len() - 1) as u32
            }
        }
    }

    /// Replaces the tail below `node` by a child block, the tail moving one level down.
    fn expand(&mut self, node: usize) {
        let index = self.nodes[node].link & !TAIL;
        let tail = self.tails[index as usize];
        self.free_tails.push(index);
        let first = self.nodes.len();
        self.nodes[node].link = first as u32;
        self.nodes.extend_from_slice(&[EMPTY; 10]);
        let child = first + usize::from(tail.digits[0] - b'0');
        if tail.len == 1 {
            self.nodes[child].value = tail.value;
        } else {
            let rest = tail.digits[1..usize::from(tail.len)].to_vec();
            self.nodes[child].link = TAIL | self.new_tail(&rest, tail.value);
        }
    }

    /// Stores `value` at `prefix`; returns the value it replaced, if any.
    pub fn insert(&mut self, prefix: &str, value: u32) -> Result<Option<u32>, BadPrefix> {
        check_prefix(prefix)?;
        let bytes = prefix.as_bytes();
        if value == NONE {
            return Err(BadPrefix(prefix.to_string()));
        }
        self.jump.clear();
        let mut node = 0usize;
        let mut i = 0usize;
        loop {
            if i == bytes.len() {
                let old = self.nodes[node].value;
                self.nodes[node].value = value;
                if old == NONE {
                    self.len += 1;
                    return Ok(None);
                }
                return Ok(Some(old));
            }
            let link = self.nodes[node].link;
            if link == NONE {
                self.nodes[node].link = TAIL | self.new_tail(&bytes[i..], value);
                self.len += 1;
                return Ok(None);
            }
            if link & TAIL != 0 {
                self.expand(node);
                continue;
            }
            node = link as usize + usize::from(bytes[i] - b'0');
            i += 1;
        }
    }

    /// Builds the jump table over the first four digits; call once the table is complete
    /// (inserting again drops it, lookups stay correct either way).
    pub fn optimise(&mut self) {
        let mut jump = Vec::with_capacity(JUMP_SIZE);
        for n in 0..JUMP_SIZE {
            let digits = [
                ((n / 1000) % 10) as u8,
                ((n / 100) % 10) as u8,
                ((n / 10) % 10) as u8,
                (n % 10) as u8,
            ];
            let mut entry = Jump {
                node: NONE,
                value: NONE,
                len: 0,
            };
            let mut node = 0usize;
            for (depth, d) in digits.iter().enumerate() {
                let link = self.nodes[node].link;
                if link == NONE || link & TAIL != 0 {
                    node = usize::MAX;
                    break;
                }
                node = link as usize + usize::from(*d);
                if self.nodes[node].value != NONE {
                    entry.value = self.nodes[node].value;
                    entry.len = depth as u32 + 1;
                }
            }
            if node != usize::MAX {
                entry.node = node as u32;
            }
            jump.push(entry);
        }
        self.jump = jump;
    }

    /// The value of the longest stored prefix of `digits`, with that prefix's length.
    pub fn longest_match(&self, digits: &[u8]) -> Option<(u32, usize)> {
        if digits.len() >= JUMP_DIGITS && self.jump.len() == JUMP_SIZE {
            let head = &digits[..JUMP_DIGITS];
            if head.iter().all(u8::is_ascii_digit) {
                let n = head
                    .iter()
                    .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
                let entry = self.jump[n];
                if entry.node != NONE {
                    let best = (entry.value != NONE).then_some((entry.value, entry.len as usize));
                    return self.walk(digits, entry.node as usize, JUMP_DIGITS, best);
                }
            }
        }
        self.walk(digits, 0, 0, None)
    }

    fn walk(
        &self,
        digits: &[u8],
        start: usize,
        start_depth: usize,
        found: Option<(u32, usize)>,
    ) -> Option<(u32, usize)> {
        let mut best = found;
        let mut node = start;
        let mut depth = start_depth;
        loop {
            let Node { link, value } = self.nodes[node];
            if value != NONE {
                best = Some((value, depth));
            }
            if link == NONE {
                break;
            }
            let rest = &digits[depth..];
            if link & TAIL != 0 {
                let tail = &self.tails[(link & !TAIL) as usize];
                let tail_digits = &tail.digits[..usize::from(tail.len)];
                if rest.starts_with(tail_digits) {
                    best = Some((tail.value, depth + tail_digits.len()));
                }
                break;
            }
            match rest.first() {
                Some(&b) if b.is_ascii_digit() => {
                    node = link as usize + usize::from(b - b'0');
                    depth += 1;
                }
                _ => break,
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
        // A tail is split when a prefix shares part of it.
        let mut t = PrefixTable::new();
        t.insert("4930123", 1).unwrap();
        assert_eq!(t.longest_match(b"493012345"), Some((1, 7)));
        assert_eq!(t.longest_match(b"49301"), None);
        t.insert("4930", 2).unwrap();
        t.insert("4930129", 3).unwrap();
        assert_eq!(t.longest_match(b"493012345"), Some((1, 7)));
        assert_eq!(t.longest_match(b"49301299"), Some((3, 7)));
        assert_eq!(t.longest_match(b"4930555"), Some((2, 4)));
        assert_eq!(t.insert("4930123", 9).unwrap(), Some(1));
        assert_eq!(t.len(), 3);
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
            let mut optimised = t.clone();
            optimised.optimise();
            for n in &numbers {
                prop_assert_eq!(optimised.longest_match(n.as_bytes()), t.longest_match(n.as_bytes()));
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
