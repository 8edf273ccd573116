//! Results computed out of order, given back in order within a bound: a streaming plan prints
//! tenants in a stable order, and a slow tenant holds back at most `capacity` finished ones.

use std::collections::{BTreeMap, BTreeSet};

/// Holds at most `capacity` results. When one more would be held (a slow item is still
/// running), the earliest held result is released out of turn: order gives way, never the
/// memory bound.
pub struct Reorder<T> {
    next: usize,
    held: BTreeMap<usize, T>,
    released_early: BTreeSet<usize>,
    capacity: usize,
    out_of_order: usize,
}

impl<T> Reorder<T> {
    pub fn new(capacity: usize) -> Self {
        Reorder {
            next: 0,
            held: BTreeMap::new(),
            released_early: BTreeSet::new(),
            capacity: capacity.max(1),
            out_of_order: 0,
        }
    }

    /// Takes result `index` (each index once) and returns what can go out now, in order.
    pub fn push(&mut self, index: usize, item: T) -> Vec<T> {
        self.held.insert(index, item);
        let mut out = Vec::new();
        loop {
            while self.released_early.remove(&self.next) {
                self.next += 1;
            }
            match self.held.first_key_value() {
                Some((&first, _)) if first == self.next => {
                    out.extend(self.held.pop_first().map(|(_, item)| item));
                    self.next += 1;
                }
                _ => break,
            }
        }
        while self.held.len() > self.capacity {
            if let Some((index, item)) = self.held.pop_first() {
                self.released_early.insert(index);
                self.out_of_order += 1;
                out.push(item);
            }
        }
        out
    }

    /// What is still held, in order (when every index was pushed, nothing).
    pub fn finish(self) -> impl Iterator<Item = T> {
        self.held.into_values()
    }

    /// How many results went out of turn.
    pub fn out_of_order(&self) -> usize {
        self.out_of_order
    }

    /// How many results are held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_back_in_order_and_holds_back_behind_a_slow_item() {
        let mut r = Reorder::new(3);
        assert!(r.push(1, 1).is_empty());
        assert!(r.push(2, 2).is_empty());
        assert_eq!(r.push(0, 0), [0, 1, 2]);
        assert_eq!(r.push(3, 3), [3]);
        assert_eq!(r.out_of_order(), 0);
    }

    #[test]
    fn order_gives_way_past_the_bound_never_the_memory() {
        let mut r = Reorder::new(2);
        // Item 0 is slow: 1 and 2 wait, 3 would make three held, so 1 goes out of turn.
        assert!(r.push(1, 1).is_empty());
        assert!(r.push(2, 2).is_empty());
        assert_eq!(r.push(3, 3), [1]);
        assert_eq!(r.held(), 2);
        assert_eq!(r.push(4, 4), [2]);
        // The slow one arrives: it and everything held behind it go out, in order.
        assert_eq!(r.push(0, 0), [0, 3, 4]);
        assert_eq!(r.push(5, 5), [5]);
        assert_eq!(r.out_of_order(), 2);
        assert_eq!(r.finish().count(), 0);
    }
}
