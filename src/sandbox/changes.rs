//! A directory's change log, what `GET /users/delta` answers from: every write to a user takes
//! the next number of one increasing sequence, and the log keeps, per user, when it was created
//! (or restored) and when each of its properties last changed, and per removed user when and
//! how it went. Sparse: a user untouched since the fixture loaded (sequence 0) has no entry, so
//! a fleet of half a million users costs nothing until it changes.

use std::collections::HashMap;

use serde_json::Value;

/// Why a user left the directory, as `@removed.reason` names it (delta-query-overview.md,
/// "Resource representation in the delta query response"): `changed` when it can still be
/// restored from deletedItems, `deleted` when it is gone for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Changed,
    Deleted,
}

impl Removal {
    pub fn reason(self) -> &'static str {
        match self {
            Removal::Changed => "changed",
            Removal::Deleted => "deleted",
        }
    }
}

/// What changed of one user since the fixture loaded.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    /// When it was created or restored (every property counts as changed then); 0: in the
    /// fixture.
    pub created: u64,
    /// Its latest change.
    pub last: u64,
    /// Each property changed since it was created, with when it last changed.
    pub properties: Vec<(String, u64)>,
}

impl UserChanges {
    /// Whether `property` changed after `since` (a creation or restore changes them all).
    pub fn changed_after(&self, property: &str, since: u64) -> bool {
        self.created > since
            || self
                .properties
                .iter()
                .any(|(p, seq)| *seq > since && p.eq_ignore_ascii_case(property))
    }

    /// Whether any of `properties` (any property at all when `None`) changed after `since`.
    pub fn any_changed_after(&self, properties: Option<&[String]>, since: u64) -> bool {
        if self.last <= since {
            return false;
        }
        match properties {
            None => true,
            Some(selected) => selected.iter().any(|p| self.changed_after(p, since)),
        }
    }
}

#[derive(Debug, Default)]
pub struct ChangeLog {
    /// The last sequence number given to a change (0: the directory as the fixture loaded it).
    pub seq: u64,
    users: HashMap<String, UserChanges>,
    removed: HashMap<String, (u64, Removal)>,
    /// Serial of the last delta token issued here.
    pub issued: u64,
    /// Tokens with a serial up to this one count as older than seven days (the expire control).
    pub expired_through: u64,
    /// Raised by the reset control: a token of an older epoch answers 410 Gone.
    pub epoch: u64,
}

impl ChangeLog {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A user created, or restored from deletedItems (delta-query-users.md: both come back
    /// whole, with no `@removed`).
    pub fn created(&mut self, id: &str) {
        let seq = self.next();
        self.removed.remove(id);
        self.users.insert(
            id.to_string(),
            UserChanges {
                created: seq,
                last: seq,
                properties: Vec::new(),
            },
        );
    }

    /// A user's properties changed from `before` to `after` (its JSON); nothing is recorded
    /// when no value differs.
    pub fn changed(&mut self, id: &str, before: &Value, after: &Value) {
        let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
            return;
        };
        let changed: Vec<&String> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if changed.is_empty() {
            return;
        }
        let seq = self.next();
        let entry = self.users.entry(id.to_string()).or_default();
        entry.last = seq;
        for property in changed {
            match entry.properties.iter_mut().find(|(p, _)| p == property) {
                Some((_, at)) => *at = seq,
                None => entry.properties.push((property.clone(), seq)),
            }
        }
    }

    /// A user soft-deleted (`Changed`) or deleted for good (`Deleted`).
    pub fn removed(&mut self, id: &str, how: Removal) {
        let seq = self.next();
        self.removed.insert(id.to_string(), (seq, how));
    }

    /// The user's changes, if it changed since the fixture loaded.
    pub fn user(&self, id: &str) -> Option<&UserChanges> {
        self.users.get(id)
    }

    /// When the user was created (0: in the fixture).
    pub fn created_at(&self, id: &str) -> u64 {
        self.users.get(id).map_or(0, |c| c.created)
    }

    /// Users with a change after `since`, in no order.
    pub fn changed_since(&self, since: u64) -> impl Iterator<Item = (&String, &UserChanges)> {
        self.users.iter().filter(move |(_, c)| c.last > since)
    }

    /// Users removed after `since`, in no order.
    pub fn removed_since(&self, since: u64) -> impl Iterator<Item = (&String, Removal)> {
        self.removed
            .iter()
            .filter(move |(_, (seq, _))| *seq > since)
            .map(|(id, (_, how))| (id, *how))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_is_recorded_per_property_and_only_when_a_value_differs() {
        let mut log = ChangeLog::default();
        let before = json!({"id": "a", "department": "Sales", "jobTitle": null});
        log.changed("a", &before, &before.clone());
        assert_eq!(log.seq, 0, "writing the same values is no change");
        let after = json!({"id": "a", "department": "IT", "jobTitle": null});
        log.changed("a", &before, &after);
        let c = log.user("a").unwrap();
        assert!(c.changed_after("department", 0));
        assert!(!c.changed_after("jobTitle", 0));
        assert!(c.any_changed_after(Some(&["department".to_string()]), 0));
        assert!(!c.any_changed_after(Some(&["jobTitle".to_string()]), 0));
        assert!(!c.any_changed_after(None, 1));
        log.removed("a", Removal::Changed);
        assert_eq!(log.removed_since(1).count(), 1);
        assert_eq!(log.removed_since(2).count(), 0);
        // Restored: it comes back whole and is no longer removed.
        log.created("a");
        assert_eq!(log.removed_since(0).count(), 0);
        assert!(log.user("a").unwrap().changed_after("jobTitle", 2));
    }
}
