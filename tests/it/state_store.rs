//! The JSON state file over real files: round trips, atomicity, permissions, corruption,
//! newer formats, the journal of an interrupted apply, and locks.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tenantform::state::file::FileStateStore;
use tenantform::state::{
    Attributes, LockInfo, Source, State, StateChange, StateError, StateObject, StateStore,
    UnlockOutcome,
};

fn object(kind: &str, name: &str) -> StateObject {
    StateObject {
        kind: kind.into(),
        ids: [("record".to_string(), format!("rec-{name}"))]
            .into_iter()
            .collect(),
        attributes: [("displayName".to_string(), serde_json::json!(name))]
            .into_iter()
            .collect::<Attributes>(),
        source: Source {
            digest: "sha256:00".into(),
            commit: None,
        },
        applied_at: "2026-11-23T00:00:00Z".into(),
    }
}

fn put(address: &str) -> StateChange {
    let (kind, name) = address.split_once('.').unwrap();
    StateChange::Put {
        address: address.into(),
        object: object(kind, name),
    }
}

fn delete(address: &str) -> StateChange {
    StateChange::Delete {
        address: address.into(),
    }
}

fn store() -> (tempfile::TempDir, FileStateStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::new(dir.path().join(".tenantform/state.json"));
    (dir, store)
}

fn lock(store: &FileStateStore) -> tenantform::state::StateLock {
    store
        .lock(LockInfo::for_command("test"), Duration::ZERO)
        .unwrap()
}

/// A state holding `tenant.a`, written (with the serial the store gave it).
fn written_with_tenant_a(store: &FileStateStore, guard: &tenantform::state::StateLock) -> State {
    let mut base = State::new();
    base.ensure_lineage();
    base.apply_change(&put("tenant.a"));
    base.serial = store.write(&base, guard).unwrap();
    base
}

#[test]
fn missing_file_is_an_empty_state_and_writes_round_trip() {
    let (_dir, store) = store();
    let mut state = store.load().unwrap();
    assert_eq!(state.serial, 0);
    assert!(state.objects.is_empty());
    assert!(!store.path().exists(), "loading writes nothing");

    state.apply_change(&put("tenant.a"));
    state.apply_change(&put("organization.b"));
    state.serial = 1;
    state.ensure_lineage();
    let guard = lock(&store);
    store.write(&state, &guard).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, state);

    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "state is private to its owner");
    let dir_mode = std::fs::metadata(store.path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    // The second write keeps the first as a backup.
    state.serial = 2;
    state.apply_change(&delete("tenant.a"));
    store.write(&state, &guard).unwrap();
    let backup: State =
        serde_json::from_str(&std::fs::read_to_string(store.backup_path()).unwrap()).unwrap();
    assert_eq!(backup.serial, 1);
    let leftovers: Vec<_> = std::fs::read_dir(store.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
}

/// Changes that exist only in state are held back by the file journal: a killed writer
/// (`mem::forget`: no destructor runs, as with SIGKILL) leaves no journal of them; a flush, or
/// a durable change after them, puts them on disk in order; a write that records them drops
/// them unwritten.
#[test]
fn state_only_changes_are_journaled_only_when_flushed_or_followed_by_a_durable_one() {
    let (_dir, store) = store();
    let guard = lock(&store);
    let base = written_with_tenant_a(&store, &guard);

    // Killed with only state-only changes: nothing was journaled, the state is as it was.
    let mut journal = store.journal(&base, &guard).unwrap();
    journal.record(&put("tenant.b"), false).unwrap();
    std::mem::forget(journal);
    assert!(!store.journal_path().exists());
    assert_eq!(store.load().unwrap().recovered_changes, 0);

    // Flushed, then killed: they are replayed.
    let mut journal = store.journal(&base, &guard).unwrap();
    journal.record(&put("tenant.b"), false).unwrap();
    journal.record(&put("tenant.c"), false).unwrap();
    journal.flush().unwrap();
    std::mem::forget(journal);
    let recovered = store.load().unwrap();
    assert_eq!(recovered.recovered_changes, 2);
    assert!(recovered.objects.contains_key("tenant.c"));

    // A durable change writes what was held back before it, in order.
    let mut journal = store.journal(&base, &guard).unwrap();
    journal.record(&delete("tenant.a"), false).unwrap();
    journal.record(&put("tenant.d"), true).unwrap();
    std::mem::forget(journal);
    let text = std::fs::read_to_string(store.journal_path()).unwrap();
    let ops: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(ops.len(), 2, "{text}");
    assert!(
        ops[0].contains("\"delete\"") && ops[1].contains("tenant.d"),
        "{text}"
    );

    // A write that records the session's changes: they are never journaled.
    let mut state = store.load().unwrap();
    state.recovered_changes = 0;
    state.serial = store.write(&state, &guard).unwrap();
    let mut journal = store.journal(&state, &guard).unwrap();
    journal.record(&put("tenant.e"), false).unwrap();
    state.apply_change(&put("tenant.e"));
    journal.before_write().unwrap();
    store.write(&state, &guard).unwrap();
    journal.after_write();
    assert!(!store.journal_path().exists());
    assert!(store.load().unwrap().objects.contains_key("tenant.e"));
}

#[test]
fn corrupt_and_newer_state_are_errors_and_left_untouched() {
    let (_dir, store) = store();
    std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();

    std::fs::write(
        store.path(),
        "{\"formatVersion\": 1, \"lineage\": \"x\", \"serial\": 3, \"objects\": {",
    )
    .unwrap();
    let err = store.load().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("line 1"), "says where: {err}");

    let newer = "{\"formatVersion\": 99, \"lineage\": \"x\", \"serial\": 3, \"objects\": {}, \"future\": true}";
    std::fs::write(store.path(), newer).unwrap();
    let err = store.load().unwrap_err();
    assert!(
        matches!(err, StateError::NewerFormat { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade tenantform"));
    assert_eq!(std::fs::read_to_string(store.path()).unwrap(), newer);
}

#[test]
fn journal_of_an_interrupted_apply_is_replayed_once() {
    let (_dir, store) = store();
    let guard = lock(&store);
    let base = written_with_tenant_a(&store, &guard);
    // The store assigns serials: what it returns is what a load reports.
    assert_eq!(store.load().unwrap().serial, base.serial);

    let mut journal = store.journal(&base, &guard).unwrap();
    journal.record(&put("tenant.b"), true).unwrap();
    journal.record(&delete("tenant.a"), false).unwrap();
    drop(journal);
    // A torn last line, as if the process died mid-write.
    let mut text = std::fs::read_to_string(store.journal_path()).unwrap();
    text.push_str("{\"op\":\"put\",\"addr");
    std::fs::write(store.journal_path(), text).unwrap();

    let recovered = store.load().unwrap();
    assert_eq!(recovered.recovered_changes, 2);
    assert_eq!(
        recovered.serial,
        base.serial + 1,
        "recovered content gets a new serial"
    );
    assert_eq!(recovered.objects.keys().collect::<Vec<_>>(), ["tenant.b"]);

    // Once written, the journal is gone and is not replayed again.
    let mut compacted = recovered.clone();
    compacted.recovered_changes = 0;
    store.write(&compacted, &guard).unwrap();
    assert!(!store.journal_path().exists());
    assert_eq!(store.load().unwrap().recovered_changes, 0);
}

#[test]
fn a_journal_for_an_older_serial_is_ignored() {
    let (_dir, store) = store();
    let guard = lock(&store);
    let mut state = State::new();
    state.ensure_lineage();
    store.write(&state, &guard).unwrap();
    state.apply_change(&put("tenant.y"));
    let serial = store.write(&state, &guard).unwrap();
    // A journal begun when the catalog was at an older serial (the process died after
    // writing the catalog, before removing the journal).
    let header = format!(
        "{{\"journalForLineage\":\"{}\",\"journalFormat\":2,\"bases\":{{\"catalog\":{}}}}}\n",
        state.lineage,
        serial - 1
    );
    std::fs::write(
        store.journal_path(),
        header + &serde_json::to_string(&put("tenant.z")).unwrap() + "\n",
    )
    .unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.objects.keys().collect::<Vec<_>>(), ["tenant.y"]);
    assert_eq!(loaded.serial, serial);
}

#[test]
fn a_corrupt_journal_line_in_the_middle_is_an_error() {
    let (_dir, store) = store();
    let guard = lock(&store);
    let mut state = State::new();
    state.ensure_lineage();
    let serial = store.write(&state, &guard).unwrap();
    let header = format!(
        "{{\"journalForLineage\":\"{}\",\"journalFormat\":2,\"bases\":{{\"catalog\":{serial}}}}}\n",
        state.lineage
    );
    std::fs::write(
        store.journal_path(),
        header + "garbage\n" + &serde_json::to_string(&put("tenant.z")).unwrap() + "\n",
    )
    .unwrap();
    assert!(matches!(
        store.load().unwrap_err(),
        StateError::Corrupt { .. }
    ));
}

#[test]
fn lock_is_exclusive_and_says_who_holds_it() {
    let (_dir, store) = store();
    let held = store
        .lock(LockInfo::for_command("tenantform apply"), Duration::ZERO)
        .unwrap();
    let err = match store.lock(LockInfo::for_command("second"), Duration::from_millis(120)) {
        Err(e) => e,
        Ok(_) => panic!("second lock must fail"),
    };
    let text = err.to_string();
    assert!(
        text.contains(&held.info.id) && text.contains("tenantform apply"),
        "{text}"
    );

    // unlock refuses while the holder lives, and checks the id.
    assert!(matches!(
        store.unlock("other-id"),
        Err(StateError::LockIdMismatch { .. })
    ));
    assert!(matches!(
        store.unlock(&held.info.id),
        Err(StateError::LockHeld { .. })
    ));
    drop(held);
    assert_eq!(store.unlock("anything").unwrap(), UnlockOutcome::NotLocked);
    let again = store
        .lock(LockInfo::for_command("third"), Duration::ZERO)
        .unwrap();
    drop(again);
}

/// One object of a partition read alone: the others are skipped unparsed (a position beside
/// thousands of contacts), the serial is the partition's, and a journal to replay falls back
/// to the whole partition.
#[test]
fn one_object_of_a_partition_is_read_without_parsing_the_others() {
    use tenantform::state::Partition;
    let (_dir, store) = store();
    let mut state = store.load().unwrap();
    state.apply_change(&put("tenant.acme"));
    for (address, kind) in [
        ("contact.acme.u1", "contact"),
        ("user_sync.acme", "user_sync"),
    ] {
        let mut o = object(kind, "acme");
        o.attributes
            .insert("tenant".into(), serde_json::json!("acme"));
        state.apply_change(&StateChange::Put {
            address: address.into(),
            object: o,
        });
    }
    state.ensure_lineage();
    let guard = lock(&store);
    store.write(&state, &guard).unwrap();
    drop(guard);
    let partition = Partition::tenant("acme").unwrap();
    let whole = store.load_partition(&partition).unwrap();
    // A contact this version could not read: only a whole load trips over it.
    let file = store
        .path()
        .parent()
        .unwrap()
        .join("state.d/tenants/acme.json");
    let mut text: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    text["objects"]["contact.acme.u1"]["unknownField"] = serde_json::json!(1);
    std::fs::write(&file, serde_json::to_vec(&text).unwrap()).unwrap();
    assert!(store.load_partition(&partition).is_err());
    let only = store
        .load_partition_only(&partition, &|a: &str| a == "user_sync.acme")
        .unwrap();
    assert_eq!(only.objects.keys().collect::<Vec<_>>(), ["user_sync.acme"]);
    assert_eq!(only.serial, whole.serial);
    assert_eq!(only.lineage, whole.lineage);
    assert_eq!(
        only.objects["user_sync.acme"],
        whole.objects["user_sync.acme"]
    );
}
