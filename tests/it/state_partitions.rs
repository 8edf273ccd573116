//! Partitioned state through the `StateStore` trait, over real files.
//!
//! `shared` takes any store (a factory of fresh, empty ones), so a second backend (PostgreSQL)
//! runs the same suite by adding one `shared_suite!` line. The file-backend tests after it
//! cover what only files have: the layout, modes, the upgrade of a single-file (v1) state, a
//! crash in the middle of an upgrade or of a whole-fleet write, corrupt files.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tenantform::state::file::{CrashPoint, FileStateStore};
use tenantform::state::history::{HistoryOp, HistoryOutcome};
use tenantform::state::{
    Actor, Attributes, HistoryEntry, HistoryRead, LockInfo, Partition, Provenance, Source, State,
    StateChange, StateError, StateLock, StateObject, StateStore, partition_of,
};

/// A fresh, empty store; `_keep` keeps what backs it alive (a directory, a database schema).
pub struct Fresh {
    pub store: Box<dyn StateStore>,
    _keep: Box<dyn std::any::Any>,
}

fn file_store() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::new(dir.path().join(".tenantform/state.json"));
    Fresh {
        store: Box::new(store),
        _keep: Box::new(dir),
    }
}

/// A fresh schema in the test database (`TENANTFORM_TEST_DATABASE_URL`), dropped afterwards.
fn postgres_store() -> Fresh {
    let url = crate::support::test_database_url().expect("a test database");
    let schema = format!("t{}", uuid_like());
    let store = tenantform::state::postgres::PostgresStateStore::connect(&format!(
        "{url}{}schema={schema}",
        if url.contains('?') { "&" } else { "?" }
    ))
    .unwrap();
    Fresh {
        store: Box::new(store),
        _keep: Box::new(crate::support::DropSchema { url, schema }),
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn object(kind: &str, tenant: &str, marker: &str) -> StateObject {
    let mut attributes: Attributes = [("displayName".to_string(), serde_json::json!(marker))]
        .into_iter()
        .collect();
    if kind != "tenant" {
        attributes.insert("tenant".into(), serde_json::json!(tenant));
    }
    StateObject {
        kind: kind.into(),
        ids: [("record".to_string(), format!("rec-{marker}"))]
            .into_iter()
            .collect(),
        attributes,
        source: Source {
            digest: "sha256:00".into(),
            commit: None,
        },
        applied_at: "2026-11-23T00:00:00Z".into(),
    }
}

/// `kind.tenant.rest` (or `tenant.name`) with its tenant taken from the address.
fn put(address: &str, marker: &str) -> StateChange {
    let (kind, key) = address.split_once('.').unwrap();
    let tenant = key.split('.').next().unwrap();
    let tenant = if kind == "organization" { "a" } else { tenant };
    StateChange::Put {
        address: address.into(),
        object: object(kind, tenant, marker),
    }
}

fn delete(address: &str) -> StateChange {
    StateChange::Delete {
        address: address.into(),
    }
}

fn info(command: &str) -> LockInfo {
    LockInfo::for_command(command)
}

const CATALOG_ADDRESSES: &[&str] = &["organization.a-boston", "tenant.a", "tenant.b"];
const A_ADDRESSES: &[&str] = &["guest.a.dana", "msp_role.a.dana.helpdesk"];
const B_ADDRESSES: &[&str] = &["directory_role.b.ben.x.root", "guest.b.ben"];

/// A two-tenant fleet: catalog records, and guests and roles in each tenant.
fn fleet() -> State {
    let mut state = State::new();
    state.ensure_lineage();
    for address in CATALOG_ADDRESSES
        .iter()
        .chain(A_ADDRESSES)
        .chain(B_ADDRESSES)
    {
        state.apply_change(&put(address, "v1"));
    }
    state
}

fn write_fleet(store: &dyn StateStore) -> State {
    let lock = store.lock(info("setup"), Duration::ZERO).unwrap();
    let mut state = fleet();
    state.serial = store.write(&state, &lock).unwrap();
    state
}

fn keys(state: &State) -> Vec<&str> {
    state.objects.keys().map(String::as_str).collect()
}

fn tenant(name: &str) -> Partition {
    Partition::tenant(name).unwrap()
}

fn locked_by(result: Result<StateLock, StateError>) -> LockInfo {
    match result {
        Err(StateError::Locked { info }) => *info,
        Err(e) => panic!("expected Locked naming the holder, got {e}"),
        Ok(_) => panic!("expected the lock to be taken"),
    }
}

/// The suite every backend passes.
pub mod shared {
    use super::*;

    pub fn whole_load_equals_what_was_written(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        let empty = store.load().unwrap();
        assert!(empty.objects.is_empty() && empty.serial == 0 && empty.lineage.is_empty());
        assert!(store.list_tenants().unwrap().is_empty());

        let written = write_fleet(store);
        let loaded = store.load().unwrap();
        assert_eq!(loaded.objects, written.objects);
        assert_eq!(loaded.lineage, written.lineage);
        assert_eq!(loaded.serial, written.serial);
        assert_eq!(loaded.recovered_changes, 0);

        // Each object is in the partition the registry names, and only there.
        assert_eq!(keys(&store.load_catalog().unwrap()), CATALOG_ADDRESSES);
        assert_eq!(keys(&store.load_tenant("a").unwrap()), A_ADDRESSES);
        assert_eq!(keys(&store.load_tenant("b").unwrap()), B_ADDRESSES);
        let never = store.load_tenant("never-written").unwrap();
        assert!(never.objects.is_empty() && never.serial == 0);
        assert_eq!(
            never.lineage, written.lineage,
            "one lineage for the whole state"
        );
        for (address, object) in &loaded.objects {
            let part = partition_of(address, object);
            assert!(
                store
                    .load_partition(&part)
                    .unwrap()
                    .objects
                    .contains_key(address),
                "{address} in {part}"
            );
        }
        assert_eq!(store.list_tenants().unwrap(), ["a", "b"]);
        let serials = store.serials().unwrap();
        assert_eq!(serials.lineage, written.lineage);
        assert_eq!(
            serials.partitions.keys().cloned().collect::<Vec<_>>(),
            [Partition::Catalog, tenant("a"), tenant("b")]
        );
        assert_eq!(
            serials.whole(),
            loaded.serial,
            "the whole serial is the sum"
        );
        for (p, serial) in &serials.partitions {
            assert_eq!(store.load_partition(p).unwrap().serial, *serial, "{p}");
        }
    }

    pub fn two_writers_on_two_tenants_at_once(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let both_hold = std::sync::Barrier::new(2);
        let serials: Vec<u64> = std::thread::scope(|s| {
            let writers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|t| {
                    let both_hold = &both_hold;
                    s.spawn(move || {
                        let lock = store
                            .lock_tenant(
                                t,
                                info(&format!("apply --tenant {t}")),
                                Duration::from_secs(5),
                            )
                            .unwrap();
                        // Both locks are held at this point.
                        both_hold.wait();
                        let mut state = store.load_tenant(t).unwrap();
                        state.apply_change(&put(&format!("guest.{t}.new"), "v2"));
                        let serial = store.write_partition(&tenant(t), &state, &lock).unwrap();
                        both_hold.wait();
                        drop(lock);
                        serial
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert!(serials.iter().all(|s| *s > 0));
        let loaded = store.load().unwrap();
        assert!(loaded.objects.contains_key("guest.a.new"));
        assert!(loaded.objects.contains_key("guest.b.new"));
    }

    pub fn a_second_lock_on_a_tenant_waits_then_names_the_holder(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let held = store
            .lock_tenant("a", info("tenantform apply --tenant a"), Duration::ZERO)
            .unwrap();
        let started = Instant::now();
        let holder = locked_by(store.lock_tenant("a", info("second"), Duration::from_millis(300)));
        assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
        assert_eq!(holder.id, held.info.id);
        assert_eq!(holder.command, "tenantform apply --tenant a");
        let text = StateError::Locked {
            info: Box::new(holder),
        }
        .to_string();
        assert!(
            text.contains(&held.info.id) && text.contains("--tenant a"),
            "{text}"
        );
        // Another tenant and the catalog are free meanwhile.
        drop(store.lock_tenant("b", info("b"), Duration::ZERO).unwrap());
        drop(store.lock_catalog(info("catalog"), Duration::ZERO).unwrap());
        // The whole-fleet lock waits for every partition writer, and names one.
        let holder = locked_by(store.lock(info("fleet"), Duration::from_millis(100)));
        assert_eq!(holder.id, held.info.id);
        drop(held);
        drop(
            store
                .lock_tenant("a", info("again"), Duration::ZERO)
                .unwrap(),
        );
        drop(store.lock(info("fleet"), Duration::ZERO).unwrap());
    }

    pub fn the_catalog_lock_is_separate(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let catalog = store
            .lock_catalog(info("tenantform onboard"), Duration::ZERO)
            .unwrap();
        let a = store.lock_tenant("a", info("a"), Duration::ZERO).unwrap();
        let holder = locked_by(store.lock_catalog(info("second"), Duration::from_millis(100)));
        assert_eq!(holder.id, catalog.info.id);
        // A catalog lock lets its holder write the catalog only.
        let mut a_state = store.load_tenant("a").unwrap();
        a_state.apply_change(&put("guest.a.x", "v2"));
        assert!(matches!(
            store.write_partition(&tenant("a"), &a_state, &catalog),
            Err(StateError::LockDoesNotCover { .. })
        ));
        assert!(matches!(
            store.write(&store.load().unwrap(), &catalog),
            Err(StateError::NeedsFleetLock(_))
        ));
        let mut c = store.load_catalog().unwrap();
        c.apply_change(&put("tenant.c", "v2"));
        store
            .write_partition(&Partition::Catalog, &c, &catalog)
            .unwrap();
        store.write_partition(&tenant("a"), &a_state, &a).unwrap();
        drop((catalog, a));
        // While the whole-fleet lock is held, no partition lock is taken; it names the holder.
        let fleet = store
            .lock(info("tenantform apply"), Duration::ZERO)
            .unwrap();
        let holder = locked_by(store.lock_catalog(info("c"), Duration::from_millis(100)));
        assert_eq!(holder.id, fleet.info.id);
        let holder = locked_by(store.lock_tenant("b", info("b"), Duration::from_millis(100)));
        assert_eq!(holder.id, fleet.info.id);
        drop(fleet);
        drop(store.lock_tenant("b", info("b"), Duration::ZERO).unwrap());
    }

    pub fn serials_increase_only_for_written_partitions(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let s1 = store.serials().unwrap();

        // One tenant written through its partition.
        let lock = store.lock_tenant("a", info("a"), Duration::ZERO).unwrap();
        let mut a = store.load_tenant("a").unwrap();
        a.apply_change(&put("guest.a.new", "v2"));
        let new_a = store.write_partition(&tenant("a"), &a, &lock).unwrap();
        drop(lock);
        let s2 = store.serials().unwrap();
        assert!(new_a > s1.of(&tenant("a")));
        assert_eq!(s2.of(&tenant("a")), new_a);
        assert_eq!(s2.of(&tenant("b")), s1.of(&tenant("b")));
        assert_eq!(s2.of(&Partition::Catalog), s1.of(&Partition::Catalog));

        // Through the whole-fleet path: only the partition whose content changed.
        let lock = store.lock(info("fleet"), Duration::ZERO).unwrap();
        let mut whole = store.load().unwrap();
        whole.apply_change(&delete("guest.b.ben"));
        let serial = store.write(&whole, &lock).unwrap();
        let s3 = store.serials().unwrap();
        assert!(s3.of(&tenant("b")) > s2.of(&tenant("b")));
        assert_eq!(s3.of(&tenant("a")), s2.of(&tenant("a")));
        assert_eq!(s3.of(&Partition::Catalog), s2.of(&Partition::Catalog));
        assert_eq!(serial, s3.whole());
        assert_eq!(store.load().unwrap().serial, serial);

        // Nothing changed: nothing written.
        let same = store.load().unwrap();
        assert_eq!(store.write(&same, &lock).unwrap(), serial);
        assert_eq!(store.serials().unwrap(), s3);

        // A tenant whose objects all go keeps an empty partition: serials never go back.
        let mut gone = store.load().unwrap();
        gone.apply_change(&delete("directory_role.b.ben.x.root"));
        let after = store.write(&gone, &lock).unwrap();
        assert!(after > serial);
        assert!(store.load_tenant("b").unwrap().objects.is_empty());
        assert!(store.serials().unwrap().of(&tenant("b")) > s3.of(&tenant("b")));
    }

    /// `load_partition_each` (how a plan streams the catalog) gives what `load_partition`
    /// does: streamed as stored, and loaded whole where a journal is to be replayed.
    pub fn a_partition_streamed_object_by_object_equals_it_loaded_whole(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        let streamed = |partition: &Partition| {
            let mut objects = BTreeMap::new();
            let mut state = store
                .load_partition_each(partition, &mut |address, object| {
                    objects.insert(address, object);
                    Ok(())
                })
                .unwrap();
            assert!(state.objects.is_empty(), "objects go to the callback");
            state.objects = objects;
            state
        };
        let check = |when: &str| {
            for partition in [Partition::Catalog, tenant("a"), tenant("zz")] {
                assert_eq!(
                    streamed(&partition),
                    store.load_partition(&partition).unwrap(),
                    "{partition} {when}"
                );
            }
        };
        check("before any write");
        write_fleet(store);
        check("as written");
        assert_eq!(keys(&streamed(&Partition::Catalog)), CATALOG_ADDRESSES);
        // An error of the callback stops the load and is what it returns.
        let mut seen = 0;
        let stopped = store.load_partition_each(&Partition::Catalog, &mut |_, _| {
            seen += 1;
            Err(StateError::NoCatalog)
        });
        assert!(matches!(stopped, Err(StateError::NoCatalog)), "{stopped:?}");
        assert_eq!(seen, 1);
        // A catalog journal left by a killed writer: replayed, as a whole load replays it.
        let lock = store.lock_catalog(info("apply"), Duration::ZERO).unwrap();
        let base = store.load_catalog().unwrap();
        let mut journal = store
            .journal_partition(&Partition::Catalog, &base, &lock)
            .unwrap();
        journal.record(&put("tenant.c", "v2"), true).unwrap();
        drop(journal);
        drop(lock);
        let recovered = streamed(&Partition::Catalog);
        assert_eq!(recovered.recovered_changes, 1);
        assert!(recovered.objects.contains_key("tenant.c"));
        check("with a journal to replay");
    }

    pub fn a_partition_journal_is_replayed_after_a_kill(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let before = store.serials().unwrap();
        let lock = store
            .lock_tenant("a", info("apply --tenant a"), Duration::ZERO)
            .unwrap();
        let base = store.load_tenant("a").unwrap();
        let mut journal = store.journal_partition(&tenant("a"), &base, &lock).unwrap();
        journal.record(&put("guest.a.eve", "v2"), true).unwrap();
        journal.record(&delete("guest.a.dana"), false).unwrap();
        // A change of another tenant does not belong in this journal.
        assert!(matches!(
            journal.record(&put("guest.b.x", "v2"), false),
            Err(StateError::WrongPartition { .. })
        ));
        // Killed: no write; the lock goes with the process.
        drop(journal);
        drop(lock);

        let recovered = store.load_tenant("a").unwrap();
        assert_eq!(recovered.recovered_changes, 2);
        assert_eq!(
            recovered.serial,
            base.serial + 1,
            "recovered content, new serial"
        );
        assert_eq!(
            keys(&recovered),
            ["guest.a.eve", "msp_role.a.dana.helpdesk"]
        );
        let whole = store.load().unwrap();
        assert!(whole.objects.contains_key("guest.a.eve"));
        assert!(!whole.objects.contains_key("guest.a.dana"));
        assert_eq!(whole.recovered_changes, 2);
        let during = store.serials().unwrap();
        assert_eq!(during.of(&tenant("a")), base.serial + 1);
        assert_eq!(during.of(&tenant("b")), before.of(&tenant("b")));
        assert_eq!(store.load_tenant("b").unwrap().recovered_changes, 0);

        // The next writer of the tenant records it once.
        let lock = store
            .lock_tenant("a", info("again"), Duration::ZERO)
            .unwrap();
        let mut state = store.load_tenant("a").unwrap();
        // Journaling on top of unrecorded changes is refused.
        assert!(
            store
                .journal_partition(&tenant("a"), &state, &lock)
                .is_err()
        );
        state.recovered_changes = 0;
        let serial = store.write_partition(&tenant("a"), &state, &lock).unwrap();
        assert!(serial > recovered.serial);
        let again = store.load_tenant("a").unwrap();
        assert_eq!(again.recovered_changes, 0);
        assert_eq!(again.objects, recovered.objects);
        assert_eq!(again.serial, serial);
    }

    pub fn the_whole_fleet_journal_is_replayed_into_each_partition(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        let before = store.serials().unwrap();
        let lock = store
            .lock(info("tenantform apply"), Duration::ZERO)
            .unwrap();
        let base = store.load().unwrap();
        let mut journal = store.journal(&base, &lock).unwrap();
        journal.record(&put("tenant.c", "v2"), false).unwrap();
        journal.record(&put("guest.c.new", "v2"), true).unwrap();
        // A move across partitions (a tenant rename) is one record.
        journal
            .record(
                &StateChange::Move {
                    from: "msp_role.a.dana.helpdesk".into(),
                    address: "msp_role.c.dana.helpdesk".into(),
                    object: object("msp_role", "c", "v2"),
                },
                false,
            )
            .unwrap();
        drop(journal);
        drop(lock);

        let whole = store.load().unwrap();
        assert_eq!(whole.recovered_changes, 3);
        for present in ["tenant.c", "guest.c.new", "msp_role.c.dana.helpdesk"] {
            assert!(whole.objects.contains_key(present), "{present}");
        }
        assert!(!whole.objects.contains_key("msp_role.a.dana.helpdesk"));
        // Each partition alone sees its part of the same journal.
        assert_eq!(keys(&store.load_tenant("a").unwrap()), ["guest.a.dana"]);
        assert_eq!(
            keys(&store.load_tenant("c").unwrap()),
            ["guest.c.new", "msp_role.c.dana.helpdesk"]
        );
        assert!(
            store
                .load_catalog()
                .unwrap()
                .objects
                .contains_key("tenant.c")
        );
        let during = store.serials().unwrap();
        assert_eq!(
            during.of(&tenant("b")),
            before.of(&tenant("b")),
            "untouched"
        );
        assert!(during.of(&tenant("a")) > before.of(&tenant("a")));
        assert!(during.of(&Partition::Catalog) > before.of(&Partition::Catalog));
        assert_eq!(during.whole(), whole.serial);
        assert_eq!(store.list_tenants().unwrap(), ["a", "b", "c"]);

        // A partition writer first records the whole-fleet journal (under the whole-fleet
        // lock), then gets its lock.
        let lock = store
            .lock_tenant("b", info("b"), Duration::from_secs(5))
            .unwrap();
        drop(lock);
        let recorded = store.load().unwrap();
        assert_eq!(recorded.recovered_changes, 0);
        assert_eq!(recorded.objects, whole.objects);
        assert_eq!(
            store.serials().unwrap().of(&tenant("b")),
            before.of(&tenant("b"))
        );
    }

    pub fn partition_writes_keep_objects_in_their_partition(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        // A tenant partition needs the catalog (it holds the lineage).
        let lock = store.lock_tenant("a", info("a"), Duration::ZERO).unwrap();
        let mut state = store.load_tenant("a").unwrap();
        state.ensure_lineage();
        state.apply_change(&put("guest.a.x", "v1"));
        assert!(matches!(
            store.write_partition(&tenant("a"), &state, &lock),
            Err(StateError::NoCatalog)
        ));
        drop(lock);
        write_fleet(store);
        let lock = store.lock_tenant("a", info("a"), Duration::ZERO).unwrap();
        let mut state = store.load_tenant("a").unwrap();
        state.apply_change(&put("guest.b.intruder", "v1"));
        let err = store
            .write_partition(&tenant("a"), &state, &lock)
            .unwrap_err();
        assert!(err.to_string().contains("guest.b.intruder"), "{err}");
        // Names that are not tenant names never reach a backend.
        for bad in ["../x", "a/b", "", "UPPER"] {
            assert!(
                matches!(store.load_tenant(bad), Err(StateError::BadTenantName(_))),
                "{bad}"
            );
            assert!(
                store.lock_tenant(bad, info("x"), Duration::ZERO).is_err(),
                "{bad}"
            );
            assert!(
                store
                    .load_partition(&Partition::Tenant(bad.into()))
                    .is_err(),
                "{bad}"
            );
        }
    }

    /// An applied create of `address` in `tenant` at `at`, by `who`.
    fn entry(at: &str, tenant: &str, address: &str, who: &str) -> HistoryEntry {
        let mut e = Provenance::new(
            "apply",
            Some("plan-1".into()),
            Some("c0ffee".into()),
            Actor {
                name: who.into(),
                ci: None,
            },
        )
        .entry(
            tenant,
            address.split('.').next().unwrap(),
            address,
            None,
            HistoryOp::Create,
            vec![],
            HistoryOutcome::Applied,
        );
        e.at = at.into();
        e
    }

    pub fn history_is_kept_per_partition_and_outlives_the_journal(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        write_fleet(store);
        // A tenant session: its history entries go with its journal, and stay after the
        // partition is written (the journal is dropped then).
        let lock = store
            .lock_tenant("a", info("apply a"), Duration::ZERO)
            .unwrap();
        let base = store.load_tenant("a").unwrap();
        let mut journal = store.journal_partition(&tenant("a"), &base, &lock).unwrap();
        let first = entry("2026-11-01T10:00:00Z", "a", "guest.a.zoe", "octocat");
        journal.history(&first, true).unwrap();
        journal.record(&put("guest.a.zoe", "v1"), true).unwrap();
        // An entry of another partition is refused by a tenant's journal.
        let other = entry("2026-11-01T10:00:01Z", "b", "guest.b.max", "octocat");
        assert!(matches!(
            journal.history(&other, true),
            Err(StateError::WrongPartition { .. })
        ));
        let record = entry("2026-11-01T10:00:02Z", "a", "tenant.a", "octocat");
        assert!(matches!(
            journal.history(&record, true),
            Err(StateError::WrongPartition { .. })
        ));
        drop(journal);
        let mut state = base;
        state.apply_change(&put("guest.a.zoe", "v1"));
        store.write_partition(&tenant("a"), &state, &lock).unwrap();
        drop(lock);

        // Catalog records' history is the catalog's, written under its lock.
        let catalog_lock = store.lock_catalog(info("apply"), Duration::ZERO).unwrap();
        assert!(matches!(
            store.append_history(std::slice::from_ref(&other), &catalog_lock),
            Err(StateError::LockDoesNotCover { .. })
        ));
        store
            .append_history(std::slice::from_ref(&record), &catalog_lock)
            .unwrap();
        drop(catalog_lock);
        let fleet_lock = store.lock(info("migrate"), Duration::ZERO).unwrap();
        let later = entry("2026-11-03T00:00:00Z", "b", "guest.b.max", "dana@laptop");
        store
            .append_history(std::slice::from_ref(&later), &fleet_lock)
            .unwrap();
        drop(fleet_lock);

        let all = store.read_history(&HistoryRead::default()).unwrap();
        assert_eq!(all, vec![first.clone(), record.clone(), later.clone()]);
        let of_a = store
            .read_history(&HistoryRead {
                tenants: Some(["a".to_string()].into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            of_a,
            vec![first.clone(), record.clone()],
            "a's records count as a's"
        );
        let since = store
            .read_history(&HistoryRead {
                since: Some("2026-11-02T00:00:00Z".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(since, vec![later]);
        let catalog = store
            .read_history(&HistoryRead::default().only_catalog())
            .unwrap();
        assert_eq!(catalog, vec![record]);
    }

    pub fn a_whole_fleet_journal_files_history_by_partition(fresh: &dyn Fn() -> Fresh) {
        let f = fresh();
        let store = f.store.as_ref();
        let state = write_fleet(store);
        let lock = store.lock(info("rename"), Duration::ZERO).unwrap();
        let mut journal = store.journal(&state, &lock).unwrap();
        let entries = [
            entry("2026-11-01T00:00:00Z", "a", "tenant.a", "octocat"),
            entry("2026-11-01T00:00:01Z", "b", "guest.b.max", "octocat"),
            entry("2026-11-01T00:00:02Z", "a", "guest.a.zoe", "octocat"),
        ];
        for e in &entries {
            journal.history(e, false).unwrap();
        }
        drop(journal);
        drop(lock);
        assert_eq!(
            store.read_history(&HistoryRead::default()).unwrap(),
            entries.to_vec()
        );
        let b = store
            .read_history(&HistoryRead {
                tenants: Some(["b".to_string()].into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(b, vec![entries[1].clone()]);
    }
}

macro_rules! shared_suite {
    ($backend:ident, $fresh:expr) => {
        shared_suite!($backend, $fresh, || true);
    };
    ($backend:ident, $fresh:expr, $available:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn whole_load_equals_what_was_written() {
                if !($available)() {
                    return;
                }
                shared::whole_load_equals_what_was_written(&$fresh)
            }
            #[test]
            fn two_writers_on_two_tenants_at_once() {
                if !($available)() {
                    return;
                }
                shared::two_writers_on_two_tenants_at_once(&$fresh)
            }
            #[test]
            fn a_second_lock_on_a_tenant_waits_then_names_the_holder() {
                if !($available)() {
                    return;
                }
                shared::a_second_lock_on_a_tenant_waits_then_names_the_holder(&$fresh)
            }
            #[test]
            fn the_catalog_lock_is_separate() {
                if !($available)() {
                    return;
                }
                shared::the_catalog_lock_is_separate(&$fresh)
            }
            #[test]
            fn serials_increase_only_for_written_partitions() {
                if !($available)() {
                    return;
                }
                shared::serials_increase_only_for_written_partitions(&$fresh)
            }
            #[test]
            fn a_partition_streamed_object_by_object_equals_it_loaded_whole() {
                if !($available)() {
                    return;
                }
                shared::a_partition_streamed_object_by_object_equals_it_loaded_whole(&$fresh)
            }
            #[test]
            fn a_partition_journal_is_replayed_after_a_kill() {
                if !($available)() {
                    return;
                }
                shared::a_partition_journal_is_replayed_after_a_kill(&$fresh)
            }
            #[test]
            fn the_whole_fleet_journal_is_replayed_into_each_partition() {
                if !($available)() {
                    return;
                }
                shared::the_whole_fleet_journal_is_replayed_into_each_partition(&$fresh)
            }
            #[test]
            fn partition_writes_keep_objects_in_their_partition() {
                if !($available)() {
                    return;
                }
                shared::partition_writes_keep_objects_in_their_partition(&$fresh)
            }
            #[test]
            fn history_is_kept_per_partition_and_outlives_the_journal() {
                if !($available)() {
                    return;
                }
                shared::history_is_kept_per_partition_and_outlives_the_journal(&$fresh)
            }
            #[test]
            fn a_whole_fleet_journal_files_history_by_partition() {
                if !($available)() {
                    return;
                }
                shared::a_whole_fleet_journal_files_history_by_partition(&$fresh)
            }
        }
    };
}

shared_suite!(file_backend, file_store);
shared_suite!(
    postgres_backend,
    postgres_store,
    crate::support::test_database_available
);

// ---- The file backend only -----------------------------------------------------------------

fn file(dir: &Path) -> FileStateStore {
    FileStateStore::new(dir.join(".tenantform/state.json"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` with its content (directories as `None`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), None);
                stack.push(path);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn the_layout_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = file(dir.path());
    write_fleet(&store);
    let state_dir = dir.path().join(".tenantform");
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.path()).unwrap()).unwrap();
    assert_eq!(catalog["formatVersion"], 2);
    assert_eq!(
        catalog["objects"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        CATALOG_ADDRESSES
    );
    let a_path = state_dir.join("state.d/tenants/a.json");
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a_path).unwrap()).unwrap();
    assert_eq!(a["tenant"], "a");
    assert_eq!(a["lineage"], catalog["lineage"]);
    assert_eq!(
        a["objects"].as_object().unwrap().keys().collect::<Vec<_>>(),
        A_ADDRESSES
    );
    assert_eq!(store.partition_path(&tenant("a")).unwrap(), a_path);
    for private in [store.path(), &a_path] {
        assert_eq!(mode(private), 0o600, "{}", private.display());
    }
    for private in [
        state_dir.clone(),
        state_dir.join("state.d"),
        state_dir.join("state.d/tenants"),
    ] {
        assert_eq!(mode(&private), 0o700, "{}", private.display());
    }
    let files: Vec<String> = snapshot(&state_dir)
        .into_keys()
        .map(|p| p.strip_prefix(&state_dir).unwrap().display().to_string())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f.contains(".tmp") || f.ends_with(".journal")),
        "{files:?}"
    );
    // Locks of partitions are separate files beside them.
    drop(store.lock_tenant("a", info("a"), Duration::ZERO).unwrap());
    assert!(state_dir.join("state.d/tenants/a.json.lock").exists());
    drop(store.lock_catalog(info("c"), Duration::ZERO).unwrap());
    assert!(state_dir.join("state.d/catalog.lock").exists());
}

/// The v1 fixture copied to a new directory.
fn v1_fixture() -> (tempfile::TempDir, FileStateStore, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join(".tenantform");
    std::fs::create_dir(&state_dir).unwrap();
    let original =
        std::fs::read(crate::support::repo_root().join("tests/cases/state/v1/state.json")).unwrap();
    std::fs::write(state_dir.join("state.json"), &original).unwrap();
    let store = file(dir.path());
    (dir, store, original)
}

fn v1_state(original: &[u8]) -> State {
    serde_json::from_slice(original).unwrap()
}

#[test]
fn a_v1_file_is_read_as_is_and_upgraded_by_the_first_writer() {
    let (dir, store, original) = v1_fixture();
    let v1 = v1_state(&original);
    let untouched = snapshot(dir.path());

    // Readers (plan takes no lock) read it as it is and write nothing.
    let read = store.load().unwrap();
    assert_eq!(read.objects, v1.objects);
    assert_eq!(read.lineage, v1.lineage);
    assert_eq!(
        read.serial, v1.serial,
        "same serial: a saved plan stays valid"
    );
    assert_eq!(
        keys(&store.load_tenant("foggy-it").unwrap()),
        [
            "directory_role.foggy-it.dana.729827e3-9c14-49f7-bb1b-9608f156bbb8.root",
            "guest.foggy-it.dana",
            "msp_role.foggy-it.dana.helpdesk"
        ]
    );
    assert_eq!(
        keys(&store.load_catalog().unwrap()),
        [
            "organization.contoso-nyc",
            "organization.foggy-boston",
            "tenant.contoso-law",
            "tenant.foggy-it"
        ]
    );
    assert_eq!(store.list_tenants().unwrap(), ["contoso-law", "foggy-it"]);
    assert_eq!(store.serials().unwrap().whole(), v1.serial);
    assert!(
        store.partition_reads_whole_fleet().unwrap(),
        "a plan loads a v1 file once, not once per tenant"
    );
    assert_eq!(snapshot(dir.path()), untouched, "readers write nothing");

    // The first writer upgrades.
    let lock = store
        .lock(info("tenantform apply"), Duration::ZERO)
        .unwrap();
    assert_eq!(std::fs::read(store.v1_backup_path()).unwrap(), original);
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.path()).unwrap()).unwrap();
    assert_eq!(catalog["formatVersion"], 2);
    assert!(store.tenants_dir().join("foggy-it.json").exists());
    assert!(store.tenants_dir().join("contoso-law.json").exists());
    let upgraded = store.load().unwrap();
    assert_eq!(upgraded, read, "identical load() after the upgrade");
    assert!(!store.partition_reads_whole_fleet().unwrap());
    assert_eq!(mode(&store.v1_backup_path()), 0o600);
    assert_eq!(mode(&store.tenants_dir()), 0o700);
    // And it writes as usual afterwards.
    let mut state = upgraded.clone();
    state.apply_change(&delete("guest.contoso-law.ben"));
    let serial = store.write(&state, &lock).unwrap();
    assert!(serial > upgraded.serial);
    drop(lock);
    assert_eq!(store.load().unwrap().objects, state.objects);
    assert_eq!(
        std::fs::read(store.v1_backup_path()).unwrap(),
        original,
        "the backup stays"
    );
}

#[test]
fn a_v1_journal_is_replayed_by_readers_and_folded_in_by_the_upgrade() {
    let (_dir, store, original) = v1_fixture();
    let v1 = v1_state(&original);
    let header = format!(
        "{{\"journalForLineage\":\"{}\",\"journalForSerial\":{}}}\n",
        v1.lineage, v1.serial
    );
    let lines = [
        serde_json::to_string(&put("guest.foggy-it.eve", "v2")).unwrap(),
        serde_json::to_string(&delete("msp_role.contoso-law.ben.admin")).unwrap(),
    ];
    let journal = header + &lines.join("\n") + "\n";
    std::fs::write(store.journal_path(), &journal).unwrap();

    let read = store.load().unwrap();
    assert_eq!(read.recovered_changes, 2);
    assert!(read.objects.contains_key("guest.foggy-it.eve"));
    assert!(!read.objects.contains_key("msp_role.contoso-law.ben.admin"));
    assert!(read.serial > v1.serial);

    let lock = store
        .lock(info("tenantform apply"), Duration::ZERO)
        .unwrap();
    drop(lock);
    assert!(!store.journal_path().exists(), "folded in");
    assert_eq!(
        std::fs::read_to_string(PathBuf::from(format!(
            "{}.v1-backup",
            store.journal_path().display()
        )))
        .unwrap(),
        journal
    );
    let upgraded = store.load().unwrap();
    assert_eq!(upgraded.objects, read.objects);
    assert_eq!(upgraded.recovered_changes, 0);
    assert!(
        upgraded.serial > read.serial,
        "content readers saw at a journal's serial gets a new one"
    );
}

#[test]
fn a_crash_mid_upgrade_leaves_the_old_file_or_the_whole_new_layout() {
    for point in [
        CrashPoint::UpgradeAfterBackup,
        CrashPoint::UpgradeAfterStaging,
        CrashPoint::UpgradeAfterRename,
        CrashPoint::UpgradeAfterCommit,
    ] {
        let (dir, store, original) = v1_fixture();
        let before = store.load().unwrap();
        let crashing = FileStateStore::new(store.path()).simulate_crash_at(point);
        let err = match crashing.lock(info("tenantform apply"), Duration::ZERO) {
            Err(e) => e,
            Ok(_) => panic!("{point:?}: the simulated crash stops the upgrade"),
        };
        assert!(err.to_string().contains("simulated crash"), "{err}");
        // Whatever step it stopped at, state loads, the same, with no lock left.
        let after_crash = store.load().unwrap();
        assert_eq!(after_crash, before, "{point:?}");
        let committed = point == CrashPoint::UpgradeAfterCommit;
        let text = std::fs::read(store.path()).unwrap();
        if committed {
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&text).unwrap()["formatVersion"],
                2
            );
        } else {
            assert_eq!(
                text, original,
                "{point:?}: the v1 file is untouched until the commit"
            );
        }
        // The next writer finishes (or redoes) the upgrade.
        let lock = store.lock(info("again"), Duration::ZERO).unwrap();
        drop(lock);
        let done = store.load().unwrap();
        assert_eq!(done, before, "{point:?}");
        let names: Vec<String> = snapshot(&dir.path().join(".tenantform"))
            .into_keys()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("upgrading") || n.contains(".tmp")),
            "{point:?}: {names:?}"
        );
        assert_eq!(std::fs::read(store.v1_backup_path()).unwrap(), original);
    }
}

#[test]
fn a_crash_mid_whole_fleet_write_loads_as_after_and_is_recorded_by_the_next_writer() {
    for (point, torn) in [
        (CrashPoint::WriteAfterIntent, false),
        (CrashPoint::WriteAfterPartitions(1), false),
        (CrashPoint::WriteAfterPartitions(2), false),
        // A power loss after the intent was synced: the partition file written without its
        // own fsync is torn; the intent still holds its content.
        (CrashPoint::WriteAfterPartitions(2), true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = file(dir.path());
        let written = write_fleet(&store);
        let mut next = written.clone();
        next.apply_change(&put("tenant.c", "v2"));
        next.apply_change(&put("guest.a.dana", "v2"));
        next.apply_change(&delete("guest.b.ben"));
        // A move across partitions: written together with the rest, or not at all.
        next.apply_change(&StateChange::Move {
            from: "msp_role.a.dana.helpdesk".into(),
            address: "msp_role.c.dana.helpdesk".into(),
            object: object("msp_role", "c", "v2"),
        });
        let crashing = FileStateStore::new(store.path()).simulate_crash_at(point);
        let lock = crashing
            .lock(info("tenantform state mv"), Duration::ZERO)
            .unwrap();
        let err = crashing.write(&next, &lock).unwrap_err();
        assert!(err.to_string().contains("simulated crash"), "{err}");
        drop(lock);
        if torn {
            // Partitions are written in order: catalog, a, ... The second is tenant a.
            let a = store.partition_path(&tenant("a")).unwrap();
            let bytes = std::fs::read(&a).unwrap();
            std::fs::write(&a, &bytes[..bytes.len() / 2]).unwrap();
        }
        let loaded = store.load().unwrap();
        assert_eq!(
            loaded.objects, next.objects,
            "{point:?}: as after the write"
        );
        assert!(loaded.recovered_changes > 0);
        for (p, serial) in store.serials().unwrap().partitions {
            assert_eq!(store.load_partition(&p).unwrap().serial, serial, "{p}");
        }
        // The next writer records it.
        let lock = store.lock(info("next"), Duration::ZERO).unwrap();
        let mut state = store.load().unwrap();
        state.recovered_changes = 0;
        store.write(&state, &lock).unwrap();
        drop(lock);
        assert!(!store.journal_path().exists());
        let recorded = store.load().unwrap();
        assert_eq!(recorded.objects, next.objects);
        assert_eq!(recorded.recovered_changes, 0);
    }
}

#[test]
fn a_corrupt_partition_file_is_an_error_naming_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = file(dir.path());
    let written = write_fleet(&store);
    let b = store.partition_path(&tenant("b")).unwrap();
    std::fs::write(
        &b,
        "{\"formatVersion\": 2, \"lineage\": \"x\", \"serial\": 3, \"obj",
    )
    .unwrap();
    let named = |e: StateError| {
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(&b.display().to_string()), "{e}");
    };
    named(store.load().unwrap_err());
    named(store.load_tenant("b").unwrap_err());
    // The other tenants still load on their own.
    assert_eq!(keys(&store.load_tenant("a").unwrap()), A_ADDRESSES);
    // A writer refuses to overwrite it.
    let lock = store.lock(info("w"), Duration::ZERO).unwrap();
    named(store.write(&written, &lock).unwrap_err());
    drop(lock);
    assert!(
        std::fs::read_to_string(&b).unwrap().ends_with("\"obj"),
        "left untouched"
    );

    // An object in the wrong tenant's file, or a file of another state, is corrupt too.
    let mut misplaced: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.partition_path(&tenant("a")).unwrap()).unwrap(),
    )
    .unwrap();
    misplaced["tenant"] = serde_json::json!("b");
    std::fs::write(&b, misplaced.to_string()).unwrap();
    let err = store.load_tenant("b").unwrap_err();
    assert!(err.to_string().contains("belongs to tenant a"), "{err}");
    let mut foreign = misplaced.clone();
    foreign["objects"] = serde_json::json!({});
    foreign["lineage"] = serde_json::json!("another-state");
    std::fs::write(&b, foreign.to_string()).unwrap();
    let err = store.load().unwrap_err();
    assert!(err.to_string().contains("another-state"), "{err}");

    // A newer format is reported as such.
    let mut newer = foreign.clone();
    newer["formatVersion"] = serde_json::json!(3);
    std::fs::write(&b, newer.to_string()).unwrap();
    assert!(matches!(
        store.load_tenant("b").unwrap_err(),
        StateError::NewerFormat { found: 3, .. }
    ));
}

#[test]
fn a_newer_catalog_is_refused_by_readers_and_writers_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = file(dir.path());
    write_fleet(&store);
    let newer = "{\"formatVersion\": 3, \"lineage\": \"x\", \"serial\": 3, \"objects\": {}}";
    std::fs::write(store.path(), newer).unwrap();
    for result in [
        store.load().map(|_| ()),
        store.load_tenant("a").map(|_| ()),
        store.lock(info("w"), Duration::ZERO).map(|_| ()),
        store
            .lock_tenant("a", info("w"), Duration::ZERO)
            .map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StateError::NewerFormat { found: 3, .. })),
            "{result:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(store.path()).unwrap(), newer);
}

#[test]
fn a_plan_reads_a_v1_state_as_it_is_and_writes_nothing() {
    // The streaming plan loads a state that is not partitioned yet once (not once per tenant)
    // and plans from it as from partitions: its catalog records and a tenant's MSP role are
    // both there (here as deletes: the manifests declare another tenant), and nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read(crate::support::repo_root().join("tests/cases/state/v1/state.json")).unwrap();
    std::fs::write(dir.path().join("state.json"), &original).unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("t.yaml"),
        "kind: Tenant\nname: other\ndisplayName: Other\n",
    )
    .unwrap();
    let before = snapshot(dir.path());
    let run = crate::support::tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            "-o",
            "json",
            manifests.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let deletes = crate::support::addresses_with_op(&plan, "delete");
    assert!(deletes.contains(&"tenant.foggy-it"), "{deletes:?}");
    assert!(
        deletes.contains(&"msp_role.foggy-it.dana.helpdesk"),
        "{deletes:?}"
    );
    assert_eq!(
        plan["state"]["serial"],
        v1_state(&original).serial,
        "the v1 serial"
    );
    assert_eq!(snapshot(dir.path()), before, "a plan writes nothing");
}

/// A history line torn by a kill is skipped by readers and cut before the next append; a
/// corrupt line in the middle is an error naming the file.
#[test]
fn a_torn_history_line_is_skipped_and_cut_before_the_next_append() {
    use tenantform::state::history::{HistoryOp, HistoryOutcome};
    let dir = tempfile::tempdir().unwrap();
    let store = file(dir.path());
    write_fleet(&store);
    let entry = |address: &str| {
        Provenance::new("apply", None, None, Actor::default()).entry(
            "a",
            "guest",
            address,
            None,
            HistoryOp::Create,
            vec![],
            HistoryOutcome::Applied,
        )
    };
    let lock = store.lock_tenant("a", info("a"), Duration::ZERO).unwrap();
    store
        .append_history(&[entry("guest.a.one")], &lock)
        .unwrap();
    let path = store
        .history_path(&Partition::tenant("a").unwrap())
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"at\":\"2026-1");
    std::fs::write(&path, &bytes).unwrap();
    let read = store.read_history(&HistoryRead::default()).unwrap();
    assert_eq!(read.len(), 1, "the torn line is skipped");
    store
        .append_history(&[entry("guest.a.two")], &lock)
        .unwrap();
    let read = store.read_history(&HistoryRead::default()).unwrap();
    let addresses: Vec<&str> = read.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses, ["guest.a.one", "guest.a.two"]);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes.splice(0..0, b"not json\n".iter().copied());
    std::fs::write(&path, &bytes).unwrap();
    match store.read_history(&HistoryRead::default()) {
        Err(StateError::Corrupt { path: p, detail }) => {
            assert!(p.ends_with("history/tenants/a.jsonl"), "{p}");
            assert!(detail.starts_with("line 1:"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
