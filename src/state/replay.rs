//! Journals, and how they replay onto stored partitions. No I/O: text in, values out, so the
//! file backend and a later database backend share the rules.
//!
//! Three journals can be left by a writer that died:
//! - a **v1 journal** (single-file state): applies to the whole v1 state while its serial is
//!   the one the journal names;
//! - a **fleet change journal** (the whole-fleet path: `journal` + `write`): its header lists
//!   every partition's serial when it began; its changes apply to each partition still at that
//!   serial (a partition written since already has them);
//! - a **write intent** (a whole-fleet `write` that did not finish): the full new content of
//!   each partition being written, each applying while the partition still has the serial it
//!   replaces;
//!
//! and, per partition, a **partition journal** (the partition path: `journal_partition`).
//!
//! A replayed partition reports its stored serial plus one (the content differs from what that
//! serial stood for), or the serial the intent gives it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::partition::partition_of;
use super::{Partition, STATE_FORMAT_VERSION, State, StateChange, StateError, StateObject};

/// Journal format of partitioned state (v1 journals have none).
pub(super) const JOURNAL_FORMAT: u32 = 2;

/// First line of every journal.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct JournalHeader {
    pub journal_for_lineage: String,
    /// v1 and partition journals: the serial of what the changes apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_for_serial: Option<u64>,
    /// Absent in v1 journals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_format: Option<u32>,
    /// Fleet change journals: every partition's serial when the journal began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bases: Option<BTreeMap<Partition, u64>>,
    /// Partition journals: which partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// `write`: a whole-fleet write's intent (full partition contents), not changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

pub(super) const WRITE_INTENT: &str = "write";

/// One partition's new content in a write intent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Replacement {
    pub partition: Partition,
    /// The serial it replaces: it applies only while the stored partition still has it.
    pub base: u64,
    pub serial: u64,
    pub objects: BTreeMap<String, StateObject>,
}

pub(super) enum FleetJournal {
    /// Left by a single-file (v1) apply: applies to the whole v1 state at `serial`.
    V1 {
        lineage: String,
        serial: u64,
        changes: Vec<StateChange>,
    },
    /// Left by a whole-fleet apply.
    Changes {
        lineage: String,
        bases: BTreeMap<Partition, u64>,
        changes: Vec<StateChange>,
    },
    /// Left by a whole-fleet write that did not finish.
    Write {
        lineage: String,
        replacements: BTreeMap<Partition, Replacement>,
    },
}

impl FleetJournal {
    pub fn lineage(&self) -> &str {
        match self {
            FleetJournal::V1 { lineage, .. }
            | FleetJournal::Changes { lineage, .. }
            | FleetJournal::Write { lineage, .. } => lineage,
        }
    }

    pub fn replacement(&self, partition: &Partition) -> Option<&Replacement> {
        match self {
            FleetJournal::Write { replacements, .. } => replacements.get(partition),
            _ => None,
        }
    }
}

pub(super) struct PartitionJournal {
    pub lineage: String,
    pub base: u64,
    pub changes: Vec<StateChange>,
}

fn corrupt(path: &str, detail: String) -> StateError {
    StateError::Corrupt {
        path: path.to_string(),
        detail,
    }
}

/// The header and change lines of a journal; `None` when it is empty or only a torn header
/// (the writer died while starting it).
fn split(text: &str, path: &str) -> Result<Option<(JournalHeader, Vec<String>, bool)>, StateError> {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let Some((first, entries)) = lines.split_first() else {
        return Ok(None);
    };
    let Some(header) = header(first, lines.len() == 1 && !complete, path)? else {
        return Ok(None);
    };
    Ok(Some((
        header,
        entries.iter().map(|l| l.to_string()).collect(),
        complete,
    )))
}

/// A journal's header line; `None` when it is `torn` (the only line, unfinished) and does
/// not parse.
fn header(line: &str, torn: bool, path: &str) -> Result<Option<JournalHeader>, StateError> {
    let header: JournalHeader = match serde_json::from_str(line) {
        Ok(h) => h,
        Err(_) if torn => return Ok(None),
        Err(e) => return Err(corrupt(path, format!("bad header: {e}"))),
    };
    if let Some(found) = header.journal_format.filter(|f| *f > JOURNAL_FORMAT) {
        return Err(StateError::NewerFormat {
            path: path.to_string(),
            found,
            supported: STATE_FORMAT_VERSION,
        });
    }
    Ok(Some(header))
}

/// Change lines; a torn last line (the process died while writing it) is ignored, any other
/// bad line is corruption.
fn changes(entries: &[String], complete: bool, path: &str) -> Result<Vec<StateChange>, StateError> {
    let mut out = Vec::with_capacity(entries.len());
    for (i, line) in entries.iter().enumerate() {
        match serde_json::from_str::<StateChange>(line) {
            Ok(change) => out.push(change),
            Err(_) if i + 1 == entries.len() && !complete => break,
            Err(e) => return Err(corrupt(path, format!("line {}: {e}", i + 2))),
        }
    }
    Ok(out)
}

/// The journal beside the catalog (`state.json.journal`), whichever writer left it.
pub(super) fn parse_fleet_journal(
    text: &str,
    path: &str,
) -> Result<Option<FleetJournal>, StateError> {
    let Some((header, entries, complete)) = split(text, path)? else {
        return Ok(None);
    };
    let lineage = header.journal_for_lineage;
    if header.journal_format.is_none() {
        let serial = header
            .journal_for_serial
            .ok_or_else(|| corrupt(path, "bad header: no journalForSerial".into()))?;
        return Ok(Some(FleetJournal::V1 {
            lineage,
            serial,
            changes: changes(&entries, complete, path)?,
        }));
    }
    if header.intent.as_deref() == Some(WRITE_INTENT) {
        // Renamed into place only once complete and on disk: every line must be whole.
        let mut replacements = BTreeMap::new();
        for (i, line) in entries.iter().enumerate() {
            let r: Replacement = serde_json::from_str(line)
                .map_err(|e| corrupt(path, format!("line {}: {e}", i + 2)))?;
            replacements.insert(r.partition.clone(), r);
        }
        return Ok(Some(FleetJournal::Write {
            lineage,
            replacements,
        }));
    }
    match (header.bases, header.intent) {
        (Some(bases), None) => Ok(Some(FleetJournal::Changes {
            lineage,
            bases,
            changes: changes(&entries, complete, path)?,
        })),
        _ => Err(corrupt(
            path,
            "bad header: neither a change journal nor a write intent".into(),
        )),
    }
}

/// A partition's own journal; its header must name `partition`.
pub(super) fn parse_partition_journal(
    text: &str,
    path: &str,
    partition: &Partition,
) -> Result<Option<PartitionJournal>, StateError> {
    let Some((header, entries, complete)) = split(text, path)? else {
        return Ok(None);
    };
    let (lineage, base) = partition_header(header, path, partition)?;
    Ok(Some(PartitionJournal {
        lineage,
        base,
        changes: changes(&entries, complete, path)?,
    }))
}

/// The lineage and base serial of a partition journal from its first line alone (`torn`:
/// the line is all the file holds and has no newline), for a writer that needs to know
/// whether the journal is live without replaying it.
pub(super) fn parse_partition_journal_header(
    first_line: &str,
    torn: bool,
    path: &str,
    partition: &Partition,
) -> Result<Option<(String, u64)>, StateError> {
    match header(first_line, torn, path)? {
        Some(h) => partition_header(h, path, partition).map(Some),
        None => Ok(None),
    }
}

fn partition_header(
    header: JournalHeader,
    path: &str,
    partition: &Partition,
) -> Result<(String, u64), StateError> {
    if header.partition.as_ref() != Some(partition) {
        return Err(corrupt(
            path,
            format!("bad header: not the journal of {partition}"),
        ));
    }
    let base = header
        .journal_for_serial
        .ok_or_else(|| corrupt(path, "bad header: no journalForSerial".into()))?;
    Ok((header.journal_for_lineage, base))
}

/// A partition as stored, and what replay did to it.
pub(super) struct Part {
    /// The stored serial (0 when it does not exist).
    pub raw_serial: u64,
    pub exists: bool,
    pub objects: BTreeMap<String, StateObject>,
    /// Replayed changes that touched it.
    pub effects: usize,
    /// The serial a write intent gave it.
    pub replaced: Option<u64>,
    /// How many objects the intent changed.
    pub replaced_changes: usize,
}

impl Part {
    pub fn stored(serial: u64, objects: BTreeMap<String, StateObject>) -> Part {
        Part {
            raw_serial: serial,
            exists: true,
            objects,
            effects: 0,
            replaced: None,
            replaced_changes: 0,
        }
    }

    pub fn absent() -> Part {
        Part {
            raw_serial: 0,
            exists: false,
            objects: BTreeMap::new(),
            effects: 0,
            replaced: None,
            replaced_changes: 0,
        }
    }

    /// Its serial as readers see it.
    pub fn serial(&self) -> u64 {
        self.replaced
            .unwrap_or(self.raw_serial + u64::from(self.effects > 0))
    }

    /// Whether it exists once replayed.
    pub fn present(&self) -> bool {
        self.exists || self.effects > 0 || self.replaced.is_some()
    }
}

/// Stored partitions (all of them, or the one asked for) with journals replayed on top.
pub(super) struct View {
    pub lineage: String,
    pub parts: BTreeMap<Partition, Part>,
    pub recovered: usize,
}

/// Which partitions a fleet journal's changes may still touch.
enum Live<'a> {
    All(bool),
    Bases(&'a BTreeMap<Partition, u64>),
    Only(&'a Partition),
}

impl Live<'_> {
    fn live(&self, partition: &Partition, raw_serial: u64) -> bool {
        match self {
            Live::All(live) => *live,
            Live::Bases(bases) => bases.get(partition).copied().unwrap_or(0) == raw_serial,
            Live::Only(p) => *p == partition,
        }
    }
}

impl View {
    /// Replays journals onto the stored partitions. With `whole`, partitions the journals
    /// create are added (a whole-fleet view); otherwise only the partitions present are
    /// kept (one partition's view).
    pub fn replay(
        &mut self,
        partition_journals: Vec<(Partition, PartitionJournal)>,
        fleet: Option<&FleetJournal>,
        whole: bool,
    ) {
        if self.lineage.is_empty()
            && let Some(j) = fleet
            && !self
                .parts
                .get(&Partition::Catalog)
                .is_some_and(|c| c.exists)
        {
            // The very first apply was interrupted: no catalog yet, the journal names the
            // lineage.
            self.lineage = j.lineage().to_string();
        }
        let lineage_ok = |l: &str| l == self.lineage;
        // A write intent replaces whole partitions (and wins over their own journals).
        if let Some(FleetJournal::Write {
            lineage,
            replacements,
        }) = fleet
            && lineage_ok(lineage)
        {
            for (p, r) in replacements {
                let part = match self.parts.get_mut(p) {
                    Some(part) => part,
                    None if whole => self.parts.entry(p.clone()).or_insert_with(Part::absent),
                    None => continue,
                };
                if r.base == part.raw_serial {
                    part.replaced_changes = differing(&part.objects, &r.objects);
                    self.recovered += part.replaced_changes;
                    part.objects = r.objects.clone();
                    part.replaced = Some(r.serial);
                }
            }
        }
        let mut index: Option<HashMap<String, Partition>> = None;
        for (p, journal) in partition_journals {
            let part = match self.parts.get(&p) {
                Some(part) => part,
                None if whole => self.parts.entry(p.clone()).or_insert_with(Part::absent),
                None => continue,
            };
            if part.replaced.is_some()
                || journal.lineage != self.lineage
                || journal.base != part.raw_serial
            {
                continue;
            }
            let index = index.get_or_insert_with(|| build_index(&self.parts));
            for change in &journal.changes {
                if apply_tracked(&mut self.parts, index, &Live::Only(&p), change, whole) {
                    self.recovered += 1;
                }
            }
        }
        let (live, changes) = match fleet {
            Some(FleetJournal::V1 {
                lineage,
                serial,
                changes,
            }) => {
                let catalog_serial = self
                    .parts
                    .get(&Partition::Catalog)
                    .map_or(0, |c| c.raw_serial);
                (
                    Live::All(lineage_ok(lineage) && *serial == catalog_serial),
                    changes,
                )
            }
            Some(FleetJournal::Changes {
                lineage,
                bases,
                changes,
            }) if lineage_ok(lineage) => (Live::Bases(bases), changes),
            _ => return,
        };
        if matches!(live, Live::All(false)) {
            return;
        }
        let index = index.get_or_insert_with(|| build_index(&self.parts));
        for change in changes {
            if apply_tracked(&mut self.parts, index, &live, change, whole) {
                self.recovered += 1;
            }
        }
    }

    /// Each partition's serial as readers see it.
    pub fn serials(&self) -> BTreeMap<Partition, u64> {
        self.parts
            .iter()
            .filter(|(_, part)| part.present())
            .map(|(p, part)| (p.clone(), part.serial()))
            .collect()
    }

    /// The whole fleet as one value; its serial is the sum of the partitions' serials.
    pub fn into_state(self, describe: &str) -> Result<State, StateError> {
        let serial = self.parts.values().map(Part::serial).sum();
        let mut objects = BTreeMap::new();
        for (p, part) in self.parts {
            for (address, object) in part.objects {
                if objects.insert(address.clone(), object).is_some() {
                    return Err(StateError::Corrupt {
                        path: describe.to_string(),
                        detail: format!("{address} is stored twice (again in {p})"),
                    });
                }
            }
        }
        Ok(State {
            format_version: STATE_FORMAT_VERSION,
            lineage: self.lineage,
            serial,
            objects,
            recovered_changes: self.recovered,
        })
    }

    /// One partition as a `State` (empty with serial 0 when it does not exist).
    pub fn into_partition(mut self, partition: &Partition) -> State {
        let part = self.parts.remove(partition).unwrap_or_else(Part::absent);
        // Changes replayed onto it, or objects a write intent changed.
        let recovered = part.effects + part.replaced_changes;
        State {
            format_version: STATE_FORMAT_VERSION,
            lineage: self.lineage,
            serial: part.serial(),
            objects: part.objects,
            recovered_changes: recovered,
        }
    }
}

fn build_index(parts: &BTreeMap<Partition, Part>) -> HashMap<String, Partition> {
    let mut index = HashMap::new();
    for (p, part) in parts {
        for address in part.objects.keys() {
            index.insert(address.clone(), p.clone());
        }
    }
    index
}

/// How many addresses differ between two contents.
pub(super) fn differing(
    a: &BTreeMap<String, StateObject>,
    b: &BTreeMap<String, StateObject>,
) -> usize {
    let changed = a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).count();
    changed + b.keys().filter(|k| !a.contains_key(*k)).count()
}

/// Removes `address` from the partition holding it, if that partition is live.
fn remove_tracked(
    parts: &mut BTreeMap<Partition, Part>,
    index: &mut HashMap<String, Partition>,
    live: &Live,
    address: &str,
) -> bool {
    let Some(p) = index.get(address).cloned() else {
        return false;
    };
    let Some(part) = parts.get_mut(&p) else {
        return false;
    };
    if !live.live(&p, part.raw_serial) {
        return false;
    }
    part.objects.remove(address);
    part.effects += 1;
    index.remove(address);
    true
}

/// Puts `object` at `address` in its partition (taking it out of another one it was in).
fn put_tracked(
    parts: &mut BTreeMap<Partition, Part>,
    index: &mut HashMap<String, Partition>,
    live: &Live,
    address: &str,
    object: &StateObject,
    whole: bool,
) -> bool {
    let to = partition_of(address, object);
    let mut touched = false;
    if index.get(address).is_some_and(|p| *p != to) {
        touched |= remove_tracked(parts, index, live, address);
    }
    let part = match parts.get_mut(&to) {
        Some(part) => part,
        None if whole => parts.entry(to.clone()).or_insert_with(Part::absent),
        None => return touched,
    };
    if !live.live(&to, part.raw_serial) {
        return touched;
    }
    part.objects.insert(address.to_string(), object.clone());
    part.effects += 1;
    index.insert(address.to_string(), to);
    true
}

/// Applies one change to the partitions it touches; whether it touched any.
fn apply_tracked(
    parts: &mut BTreeMap<Partition, Part>,
    index: &mut HashMap<String, Partition>,
    live: &Live,
    change: &StateChange,
    whole: bool,
) -> bool {
    match change {
        StateChange::Put { address, object } => {
            put_tracked(parts, index, live, address, object, whole)
        }
        StateChange::Move {
            from,
            address,
            object,
        } => {
            let removed = remove_tracked(parts, index, live, from);
            put_tracked(parts, index, live, address, object, whole) || removed
        }
        StateChange::Delete { address } => remove_tracked(parts, index, live, address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, tenant: &str) -> StateObject {
        crate::state::test_object(kind, Some(tenant))
    }

    fn guest(tenant: &str, name: &str) -> (String, StateObject) {
        (format!("guest.{tenant}.{name}"), object("guest", tenant))
    }

    fn tenant(name: &str) -> Partition {
        Partition::Tenant(name.into())
    }

    fn view(parts: Vec<(Partition, Part)>) -> View {
        View {
            lineage: "L".into(),
            parts: parts.into_iter().collect(),
            recovered: 0,
        }
    }

    #[test]
    fn a_fleet_change_journal_applies_only_to_partitions_still_at_their_base() {
        let (a1, o1) = guest("a", "x");
        let (b1, o2) = guest("b", "y");
        let mut v = view(vec![
            (Partition::Catalog, Part::stored(3, BTreeMap::new())),
            (tenant("a"), Part::stored(1, BTreeMap::new())),
            // b was written since the journal began (serial 2, base 1): it has the change.
            (
                tenant("b"),
                Part::stored(2, [(b1.clone(), o2.clone())].into()),
            ),
        ]);
        let journal = FleetJournal::Changes {
            lineage: "L".into(),
            bases: [(Partition::Catalog, 3), (tenant("a"), 1), (tenant("b"), 1)].into(),
            changes: vec![
                StateChange::Put {
                    address: a1.clone(),
                    object: o1,
                },
                StateChange::Delete {
                    address: b1.clone(),
                },
            ],
        };
        v.replay(vec![], Some(&journal), true);
        assert_eq!(v.recovered, 1);
        let serials = v.serials();
        assert_eq!(serials[&Partition::Catalog], 3, "untouched");
        assert_eq!(serials[&tenant("a")], 2, "replayed: stored + 1");
        assert_eq!(serials[&tenant("b")], 2, "dead for b");
        let state = v.into_state("s").unwrap();
        assert_eq!(state.objects.keys().collect::<Vec<_>>(), [&a1, &b1]);
        assert_eq!(state.serial, 7);
    }

    #[test]
    fn a_move_across_partitions_is_one_change_in_both_views() {
        let (from, o) = guest("a", "x");
        let (to, moved) = guest("b", "x");
        let stored = || {
            vec![
                (
                    tenant("a"),
                    Part::stored(1, [(from.clone(), o.clone())].into()),
                ),
                (tenant("b"), Part::absent()),
            ]
        };
        let journal = FleetJournal::Changes {
            lineage: "L".into(),
            bases: [(tenant("a"), 1)].into(),
            changes: vec![StateChange::Move {
                from: from.clone(),
                address: to.clone(),
                object: moved,
            }],
        };
        let mut whole = view(stored());
        whole.replay(vec![], Some(&journal), true);
        let state = whole.into_state("s").unwrap();
        assert_eq!(state.objects.keys().collect::<Vec<_>>(), [&to]);
        // Each partition alone sees its half of the same record.
        let mut a = view(vec![stored().remove(0)]);
        a.replay(vec![], Some(&journal), false);
        let a = a.into_partition(&tenant("a"));
        assert!(a.objects.is_empty());
        assert_eq!(a.serial, 2);
        let mut b = view(vec![(tenant("b"), Part::absent())]);
        b.replay(vec![], Some(&journal), false);
        let b = b.into_partition(&tenant("b"));
        assert_eq!(b.objects.keys().collect::<Vec<_>>(), [&to]);
        assert_eq!(b.serial, 1);
    }

    #[test]
    fn a_write_intent_replaces_partitions_it_has_not_reached() {
        let (a1, o1) = guest("a", "x");
        let mut v = view(vec![
            (tenant("a"), Part::stored(4, BTreeMap::new())),
            (tenant("b"), Part::stored(9, BTreeMap::new())),
        ]);
        let replacement = |p: Partition, base, serial, objects| Replacement {
            partition: p,
            base,
            serial,
            objects,
        };
        let journal = FleetJournal::Write {
            lineage: "L".into(),
            replacements: [
                (
                    tenant("a"),
                    replacement(tenant("a"), 4, 6, [(a1.clone(), o1)].into()),
                ),
                // b is already written (9 is the intent's serial).
                (tenant("b"), replacement(tenant("b"), 8, 9, BTreeMap::new())),
            ]
            .into(),
        };
        v.replay(vec![], Some(&journal), true);
        assert_eq!(v.serials()[&tenant("a")], 6);
        assert_eq!(v.serials()[&tenant("b")], 9);
        assert_eq!(v.recovered, 1);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_bad_middle_line_is_corrupt() {
        let header = r#"{"journalForLineage":"L","journalFormat":2,"bases":{"catalog":1}}"#;
        let put = serde_json::to_string(&StateChange::Delete {
            address: "tenant.a".into(),
        })
        .unwrap();
        let text = format!("{header}\n{put}\n{{\"op\":\"put\",\"addr");
        let Some(FleetJournal::Changes { changes, .. }) = parse_fleet_journal(&text, "j").unwrap()
        else {
            panic!("a change journal");
        };
        assert_eq!(changes.len(), 1);
        let bad = format!("{header}\ngarbage\n{put}\n");
        assert!(matches!(
            parse_fleet_journal(&bad, "j"),
            Err(StateError::Corrupt { .. })
        ));
        assert!(parse_fleet_journal("{\"journalFor", "j").unwrap().is_none());
        let newer = r#"{"journalForLineage":"L","journalFormat":9,"bases":{}}"#.to_string() + "\n";
        assert!(matches!(
            parse_fleet_journal(&newer, "j"),
            Err(StateError::NewerFormat { found: 9, .. })
        ));
    }
}
