//! Fixed-size records of names' keys, written in pass one and scanned in pass two: the
//! uniqueness checks and guest references of a large fleet run over them a partition of
//! keys at a time, so no table of every name is ever held (see [`Partitions`]).

use super::unique::Key;
use crate::source::{FileId, Loc};

/// Keys per partition: a pass holds a table of at most about this many (a few MB). Unit tests
/// use tiny partitions, so every check there runs over many.
const PER_PARTITION: usize = if cfg!(test) { 3 } else { 1 << 16 };

/// How many passes a check over `count` keys takes, and which one a key belongs to.
#[derive(Clone, Copy)]
pub(super) struct Partitions(u64);

impl Partitions {
    pub fn for_count(count: usize) -> Partitions {
        Partitions(count.div_ceil(PER_PARTITION).max(1) as u64)
    }

    pub fn iter(self) -> impl Iterator<Item = u64> {
        0..self.0
    }

    pub fn of(self, key: Key) -> u64 {
        (key as u64) % self.0
    }
}

fn put_loc(out: &mut Vec<u8>, loc: Loc) {
    out.extend_from_slice(&loc.file.0.to_le_bytes());
    out.extend_from_slice(&loc.offset.to_le_bytes());
    out.extend_from_slice(&loc.len.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("N bytes")
    }
    fn key(&mut self) -> Key {
        Key::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn flag(&mut self) -> bool {
        self.take::<1>()[0] != 0
    }
    fn loc(&mut self) -> Loc {
        Loc {
            file: FileId(self.u32()),
            offset: self.u32(),
            len: self.u32(),
        }
    }
}

/// A guest as pass one saw it.
pub(super) struct GuestKeys {
    pub name: Key,
    /// Of the lowercase email.
    pub email: Key,
    pub name_loc: Loc,
    pub email_loc: Loc,
    /// Its pending record's offset in the guest spill.
    pub pending: u64,
    /// Decoded without problems.
    pub clean: bool,
}

impl GuestKeys {
    pub const SIZE: usize = 16 + 16 + 12 + 12 + 8 + 1;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        out.extend_from_slice(&self.name.to_le_bytes());
        out.extend_from_slice(&self.email.to_le_bytes());
        put_loc(&mut out, self.name_loc);
        put_loc(&mut out, self.email_loc);
        out.extend_from_slice(&self.pending.to_le_bytes());
        out.push(u8::from(self.clean));
        out
    }

    pub fn decode(bytes: &[u8]) -> GuestKeys {
        let mut r = Reader(bytes);
        GuestKeys {
            name: r.key(),
            email: r.key(),
            name_loc: r.loc(),
            email_loc: r.loc(),
            pending: r.u64(),
            clean: r.flag(),
        }
    }
}

/// A role assignment as pass one saw it.
pub(super) struct AssignmentKeys {
    pub name: Key,
    pub name_loc: Loc,
    /// Its pending record's offset in the assignment spill.
    pub pending: u64,
    /// The guest it names: the key of the reference as written and lowercased (an email).
    pub guest: Option<(Key, Key)>,
}

impl AssignmentKeys {
    pub const SIZE: usize = 16 + 12 + 8 + 1 + 16 + 16;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        out.extend_from_slice(&self.name.to_le_bytes());
        put_loc(&mut out, self.name_loc);
        out.extend_from_slice(&self.pending.to_le_bytes());
        out.push(u8::from(self.guest.is_some()));
        let (exact, lower) = self.guest.unwrap_or_default();
        out.extend_from_slice(&exact.to_le_bytes());
        out.extend_from_slice(&lower.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> AssignmentKeys {
        let mut r = Reader(bytes);
        let name = r.key();
        let name_loc = r.loc();
        let pending = r.u64();
        let has_guest = r.flag();
        let guest = (r.key(), r.key());
        AssignmentKeys {
            name,
            name_loc,
            pending,
            guest: has_guest.then_some(guest),
        }
    }
}

/// A resolved guest's keys and where its facts are (see `guests::GuestFacts`).
pub(super) struct FactsKeys {
    pub name: Key,
    pub email: Key,
    pub facts: u64,
}

impl FactsKeys {
    pub const SIZE: usize = 16 + 16 + 8;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        out.extend_from_slice(&self.name.to_le_bytes());
        out.extend_from_slice(&self.email.to_le_bytes());
        out.extend_from_slice(&self.facts.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> FactsKeys {
        let mut r = Reader(bytes);
        FactsKeys {
            name: r.key(),
            email: r.key(),
            facts: r.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_at_their_size() {
        let loc = Loc {
            file: FileId(7),
            offset: 1234,
            len: 56,
        };
        let g = GuestKeys {
            name: u128::MAX - 3,
            email: 42,
            name_loc: loc,
            email_loc: Loc { len: 9, ..loc },
            pending: 1 << 40,
            clean: true,
        };
        let bytes = g.encode();
        assert_eq!(bytes.len(), GuestKeys::SIZE);
        let back = GuestKeys::decode(&bytes);
        assert_eq!(
            (
                back.name,
                back.email,
                back.name_loc,
                back.email_loc,
                back.pending,
                back.clean
            ),
            (g.name, g.email, g.name_loc, g.email_loc, g.pending, g.clean)
        );
        for guest in [None, Some((5, 6))] {
            let a = AssignmentKeys {
                name: 9,
                name_loc: loc,
                pending: 77,
                guest,
            };
            let bytes = a.encode();
            assert_eq!(bytes.len(), AssignmentKeys::SIZE);
            let back = AssignmentKeys::decode(&bytes);
            assert_eq!(
                (back.name, back.name_loc, back.pending, back.guest),
                (9, loc, 77, guest)
            );
        }
        let f = FactsKeys {
            name: 1,
            email: 2,
            facts: 3,
        };
        let back = FactsKeys::decode(&f.encode());
        assert_eq!((back.name, back.email, back.facts), (1, 2, 3));
        let p = Partitions::for_count(20);
        assert_eq!(p.iter().count(), 7);
        assert!(p.iter().all(|i| i < 7) && p.of(u128::MAX) < 7);
        assert_eq!(Partitions::for_count(0).iter().count(), 1);
    }
}
