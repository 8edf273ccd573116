//! A directory's change log, what `GET /users/delta` answers from: every write to a user takes
//! the next number of one increasing sequence, and the log keeps, per user, when it was created
//! (or restored) and when each of its properties last changed, and per removed user when and
//! how it went. Sparse: a user untouched since the fixture loaded (sequence 0) has no entry, so
//! a fleet of half a million users costs nothing until it changes.
//!
//! The log outlives the process: the saved world keeps it ([`SavedLog`]) with a fingerprint of
//! each user as saved, so a delta link of one run goes on in the next, and an edit made to the
//! saved file in between (someone working in the portal) is logged at load like a write.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a user left the directory, as `@removed.reason` names it (delta-query-overview.md,
/// "Resource representation in the delta query response"): `changed` when it can still be
/// restored from deletedItems, `deleted` when it is gone for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
        let changed: Vec<&str> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        self.record(id, &changed);
    }

    /// `properties` of a user changed, in one write; nothing is recorded when there are none.
    pub fn record(&mut self, id: &str, properties: &[&str]) {
        if properties.is_empty() {
            return;
        }
        let seq = self.next();
        let entry = self.users.entry(id.to_string()).or_default();
        entry.last = seq;
        for property in properties {
            match entry.properties.iter_mut().find(|(p, _)| p == property) {
                Some((_, at)) => *at = seq,
                None => entry.properties.push((property.to_string(), seq)),
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

/// The change log as the saved world keeps it, in the tenant's `changeLog`: counters, the
/// changes of users that ever changed, removals, and a fingerprint of each user as saved.
/// A tenant whose log is untouched (no change, no token issued) saves none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedLog {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub issued: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired_through: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, SavedUserChanges>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, SavedRemoval>,
    /// Each user of the tenant's `users` as saved, by id: [`fingerprint`] of its saved form. What
    /// the file holds at load is checked against these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fingerprints: BTreeMap<String, String>,
}

/// [`UserChanges`] as saved: properties by name, with when each last changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedUserChanges {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created: u64,
    pub last: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRemoval {
    pub seq: u64,
    pub reason: Removal,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The user properties a fingerprint tells apart, as Graph (and the saved form) names them.
pub const FINGERPRINTED: &[&str] = &[
    "displayName",
    "mail",
    "otherMails",
    "userType",
    "externalUserState",
    "userPrincipalName",
    "accountEnabled",
    "givenName",
    "surname",
    "department",
    "officeLocation",
    "companyName",
    "jobTitle",
    "businessPhones",
    "mobilePhone",
    "onPremisesSyncEnabled",
    "assignedLicenses",
    "licenseAssignmentStates",
];

/// Hex digits of the whole-user hash that lead a fingerprint.
const WHOLE_DIGITS: usize = 12;

/// FNV-1a (64 bits): stable across builds and Rust releases, unlike `DefaultHasher`, so a
/// fingerprint saved by one build is read by the next. Not for adversaries: it spots edits.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A user's saved form (its fixture JSON, the profile flattened, no id) in short: 12 hex digits
/// hashing every property, then one per [`FINGERPRINTED`] property hashing its value, so a
/// change found at load names the properties that differ (a digit misses one edit in 16; the
/// whole hash then still sees it, and every property counts as changed).
pub fn fingerprint(saved: &Value) -> String {
    let empty = serde_json::Map::new();
    let fields = saved.as_object().unwrap_or(&empty);
    let value = |p: &str| {
        let v = fields.get(p).unwrap_or(&Value::Null);
        v.to_string()
    };
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    let whole = keys.iter().fold(FNV_START, |h, k| {
        let h = fnv(h, k.as_bytes());
        let h = fnv(h, b"=");
        let h = fnv(h, fields[k.as_str()].to_string().as_bytes());
        fnv(h, b";")
    });
    let mut out = format!("{:012x}", whole & 0xffff_ffff_ffff);
    for p in FINGERPRINTED {
        let h = fnv(FNV_START, value(p).as_bytes());
        out.push(char::from_digit(((h ^ (h >> 32)) & 0xf) as u32, 16).expect("a hex digit"));
    }
    out
}

/// The properties that differ between two fingerprints: those whose digits differ, or every
/// fingerprinted one when only the whole hash (or the format) tells them apart.
fn differing(saved: &str, now: &str) -> Vec<&'static str> {
    if saved == now {
        return Vec::new();
    }
    let digits = |f: &str| f.get(WHOLE_DIGITS..).map(|d| d.chars().collect::<Vec<_>>());
    let named: Vec<&'static str> = match (digits(saved), digits(now)) {
        (Some(a), Some(b)) if a.len() == FINGERPRINTED.len() && b.len() == a.len() => FINGERPRINTED
            .iter()
            .zip(a.iter().zip(&b))
            .filter(|(_, (x, y))| x != y)
            .map(|(p, _)| *p)
            .collect(),
        _ => Vec::new(),
    };
    if named.is_empty() {
        FINGERPRINTED.to_vec()
    } else {
        named
    }
}

impl ChangeLog {
    /// The log to save, with `fingerprints` of the users as saved (asked only when there is a
    /// log to save); `None` when nothing ever changed and no token was issued.
    pub fn save(
        &self,
        fingerprints: impl FnOnce() -> BTreeMap<String, String>,
    ) -> Option<SavedLog> {
        let untouched =
            self.seq == 0 && self.issued == 0 && self.expired_through == 0 && self.epoch == 0;
        if untouched {
            return None;
        }
        Some(SavedLog {
            seq: self.seq,
            issued: self.issued,
            expired_through: self.expired_through,
            epoch: self.epoch,
            users: self
                .users
                .iter()
                .map(|(id, c)| {
                    let saved = SavedUserChanges {
                        created: c.created,
                        last: c.last,
                        properties: c.properties.iter().cloned().collect(),
                    };
                    (id.clone(), saved)
                })
                .collect(),
            removed: self
                .removed
                .iter()
                .map(|(id, (seq, reason))| {
                    let saved = SavedRemoval {
                        seq: *seq,
                        reason: *reason,
                    };
                    (id.clone(), saved)
                })
                .collect(),
            fingerprints: fingerprints(),
        })
    }

    /// The log as saved, before the file's users are checked against it ([`Self::edited`]).
    pub fn load(saved: &SavedLog) -> ChangeLog {
        ChangeLog {
            seq: saved.seq,
            users: saved
                .users
                .iter()
                .map(|(id, c)| {
                    let changes = UserChanges {
                        created: c.created,
                        last: c.last,
                        properties: c.properties.iter().map(|(p, s)| (p.clone(), *s)).collect(),
                    };
                    (id.to_lowercase(), changes)
                })
                .collect(),
            removed: saved
                .removed
                .iter()
                .map(|(id, r)| (id.to_lowercase(), (r.seq, r.reason)))
                .collect(),
            issued: saved.issued,
            expired_through: saved.expired_through,
            epoch: saved.epoch,
        }
    }

    /// Logs what was done to the saved file between runs, as Graph would have logged it had it
    /// been done through Graph: `users` (id and fingerprint, in the file's order) against the
    /// `saved` fingerprints. A user that differs changed the properties that differ, a new one
    /// (or one restored from deleted users) was created, a saved one no longer there was
    /// removed (`Changed` when `soft_deleted` says it is among the deleted users, else
    /// `Deleted`), and one soft-deleted earlier that left the deleted users was purged.
    pub fn edited(
        &mut self,
        saved: &BTreeMap<String, String>,
        users: &[(String, String)],
        soft_deleted: &dyn Fn(&str) -> bool,
    ) {
        for (id, now) in users {
            match saved.get(id) {
                Some(before) => self.record(id, &differing(before, now)),
                None => self.created(id),
            }
        }
        let present: HashSet<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
        for id in saved.keys().filter(|id| !present.contains(id.as_str())) {
            let how = if soft_deleted(id) {
                Removal::Changed
            } else {
                Removal::Deleted
            };
            self.removed(id, how);
        }
        let mut purged: Vec<String> = self
            .removed
            .iter()
            .filter(|(id, (_, how))| {
                *how == Removal::Changed && !present.contains(id.as_str()) && !soft_deleted(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        purged.sort();
        for id in purged {
            self.removed(&id, Removal::Deleted);
        }
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

    #[test]
    fn a_fingerprint_names_the_properties_that_differ() {
        let before = json!({"displayName": "Ana", "department": "Sales", "accountEnabled": true});
        let a = fingerprint(&before);
        assert_eq!(a.len(), WHOLE_DIGITS + FINGERPRINTED.len());
        assert_eq!(a, fingerprint(&before.clone()), "stable");
        assert!(differing(&a, &a).is_empty());
        let mut after = before.clone();
        after["department"] = json!("IT");
        let b = fingerprint(&after);
        assert_ne!(a, b);
        // Sixteen values: at least one differs in its digit from Sales'.
        let named = (0..16)
            .map(|i| {
                let mut v = before.clone();
                v["department"] = json!(format!("D{i}"));
                differing(&a, &fingerprint(&v))
            })
            .find(|d| d.len() == 1)
            .expect("a digit tells department apart");
        assert_eq!(named, ["department"]);
        // A property outside the digits, or an unreadable fingerprint: every property.
        let mut other = before.clone();
        other["preferredLanguage"] = json!("en");
        assert_eq!(differing(&a, &fingerprint(&other)), FINGERPRINTED);
        assert_eq!(differing("x", &a), FINGERPRINTED);
        // An absent property is null.
        let mut null = before.clone();
        null["mail"] = Value::Null;
        assert_eq!(fingerprint(&null)[WHOLE_DIGITS..], a[WHOLE_DIGITS..]);
    }
}
