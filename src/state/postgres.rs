//! State in PostgreSQL: the same partitions, serials, journals and locks as the file backend,
//! so teams on many CI runners and laptops share one state without a file on anyone's disk.
//!
//! - **Tables** (in a schema of their own, `tenantform` unless the URL says `?schema=`):
//!   `partitions` (one row per partition: serial and objects), `journal` (each change of a
//!   running apply, a row committed before the change is reported done: what a killed apply
//!   leaves for the next reader to replay), `fleet_journal` (the whole-fleet path's), `meta`
//!   (the lineage) and `locks` (who holds what, for messages). Created and migrated by
//!   versioned migrations under an advisory lock, so two first runs cannot race.
//! - **Locks** are session advisory locks on one dedicated connection per store (never a
//!   pooled one): they vanish with the process, and an apply holds at most `--parallelism`
//!   tenant locks plus the catalog's, well inside PostgreSQL's lock table. Partition locks hold
//!   the fleet lock shared; the whole-state lock holds it exclusively. A session may take an
//!   advisory lock it already holds, so locks taken within this process are also tracked here.
//! - **Writes** of a partition are one transaction (row and journal together); a whole-fleet
//!   write is one transaction across partitions, so it needs no write intent.
//!
//! Connections run on threads of their own (the synchronous `postgres` client must not run
//! inside the async runtime that calls the store), a few for reads and writes and one for
//! locks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::history::{HistoryEntry, HistoryRead, HistoryRecord};
use super::partition::partition_of;
use super::replay::{FleetJournal, Part, PartitionJournal, View};
use super::{
    Journal, LockInfo, LockScope, Partition, Serials, State, StateChange, StateError, StateLock,
    StateObject, StateStore, UnlockOutcome,
};

/// Schema migrations, in order; each runs once, in a transaction.
const MIGRATIONS: &[&str] = &[
    // 1: partitions, journals, lineage, lock holders.
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
     CREATE TABLE partitions (
         name text PRIMARY KEY,
         serial bigint NOT NULL,
         objects jsonb NOT NULL,
         written_at timestamptz NOT NULL DEFAULT now());
     CREATE TABLE journal (
         seq bigserial PRIMARY KEY,
         partition text NOT NULL,
         lineage text NOT NULL,
         base bigint NOT NULL,
         change jsonb NOT NULL);
     CREATE INDEX journal_partition ON journal (partition, seq);
     CREATE TABLE fleet_journal (
         seq bigserial PRIMARY KEY,
         lineage text NOT NULL,
         bases jsonb,
         change jsonb);
     CREATE TABLE locks (partition text PRIMARY KEY, info jsonb NOT NULL);",
    // 2: objects as text: they are only ever read whole, and jsonb cost the server a parse
    // on every write and a rendering on every read (a plan reads every partition).
    "ALTER TABLE partitions ALTER COLUMN objects TYPE text USING objects::text;",
    // 3: apply history, appended and never rewritten; read by tenant and time.
    "CREATE TABLE history (
         seq bigserial PRIMARY KEY,
         at timestamptz NOT NULL,
         partition text NOT NULL,
         tenant text NOT NULL,
         address text NOT NULL,
         entry text NOT NULL);
     CREATE INDEX history_tenant ON history (tenant, at);
     CREATE INDEX history_at ON history (at);",
    // 4: observations (Secure Score days kept, licence holdings): beside the partitions, no
    // serial, no lock.
    "CREATE TABLE observations (
         tenant text NOT NULL,
         name text NOT NULL,
         value text NOT NULL,
         written_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (tenant, name));",
];

/// Inserts history entries in one statement (committed together).
fn insert_history(
    client: &mut impl postgres::GenericClient,
    rows: &[(String, String, String, String, String)],
) -> Result<(), StateError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql =
        String::from("INSERT INTO history (at, partition, tenant, address, entry) VALUES ");
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::with_capacity(rows.len() * 5);
    for (i, (at, partition, tenant, address, entry)) in rows.iter().enumerate() {
        let n = i * 5;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}::text::timestamptz, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
        params.extend([
            at as &(dyn postgres::types::ToSql + Sync),
            partition,
            tenant,
            address,
            entry,
        ]);
    }
    client
        .execute(sql.as_str(), &params)
        .map_err(db("record apply history"))?;
    Ok(())
}

/// An entry as the row [`insert_history`] writes.
fn history_row(
    partition: &Partition,
    entry: &HistoryRecord<'_>,
) -> (String, String, String, String, String) {
    (
        entry.at.clone(),
        partition.key(),
        entry.tenant.clone(),
        entry.address.clone(),
        serde_json::to_string(entry).expect("history entries serialize"),
    )
}

/// How many connections serve reads and writes: a plan reads many partitions at once, and an
/// apply's tenants commit their journal rows through them (more connections, more commits
/// flushed together). With the lock connection, 9 per process: four shards at once stay far
/// inside PostgreSQL's default of 100.
const DATA_CONNECTIONS: usize = 8;

type Job = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// How the connection is secured, from the URL's `sslmode` (and `sslrootcert`).
#[derive(Clone)]
enum Tls {
    /// `disable`, `prefer` or no `sslmode`: plain TCP (or a Unix socket).
    Off,
    /// `require`, `verify-ca` or `verify-full`: TLS, the server's certificate verified against
    /// `sslrootcert` (a PEM file) or the system's roots, and its name against the host. Stricter
    /// than libpq's `require` (which checks nothing): state holds who may administer which
    /// customer, so an unverified server is never trusted with it.
    Verified(Arc<rustls::ClientConfig>),
}

/// Takes the TLS parameters out of a database URL (the client library knows only `disable`,
/// `prefer` and `require`, and no `sslrootcert`).
fn split_tls(url: &str) -> Result<(String, Tls), StateError> {
    let refuse = |message: String| StateError::Database {
        operation: "read the database URL",
        message,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Tls::Off));
    };
    let mut mode = None;
    let mut root = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some(("sslmode", value)) => {
                mode = Some(value.to_string());
                false
            }
            Some(("sslrootcert", value)) => {
                root = Some(value.to_string());
                false
            }
            _ => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let tls = match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => {
            if root.is_some() {
                return Err(refuse(
                    "sslrootcert is given but sslmode does not ask for TLS: add sslmode=verify-full".into(),
                ));
            }
            Tls::Off
        }
        Some("require" | "verify-ca" | "verify-full") => Tls::Verified(Arc::new(client_config(
            root.as_deref().map(percent_decode).as_deref(),
        )?)),
        Some(other) => {
            return Err(refuse(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    Ok((url, tls))
}

/// `%2F` and friends in a URL parameter (a path given as `sslrootcert=%2Fetc%2Fca.pem`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A TLS client trusting `root` (a PEM file of CA certificates), else the system's roots.
fn client_config(root: Option<&str>) -> Result<rustls::ClientConfig, StateError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |message: String| StateError::Database {
        operation: "set up TLS to the database",
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| fail(format!("sslrootcert {path}: {e}")))?;
            if certs.is_empty() {
                return Err(fail(format!("sslrootcert {path} holds no certificate")));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(fail(
                    "no system root certificates found: give the server's CA with sslrootcert=/path/ca.pem".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One connection on a thread of its own.
struct Connection {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Connection {
    fn open(config: &postgres::Config, tls: &Tls, schema: &str) -> Result<Connection, StateError> {
        let mut client = match tls {
            Tls::Off => config.connect(postgres::NoTls),
            Tls::Verified(client) => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                (**client).clone(),
            )),
        }
        .map_err(db("connect"))?;
        client
            .batch_execute(&format!("SET search_path TO {}", quote_ident(schema)))
            .map_err(db("set the schema"))?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tenantform-postgres".into())
            .spawn(move || {
                for job in rx {
                    job(&mut client);
                }
            })
            .map_err(|e| StateError::Database {
                operation: "start a connection thread",
                message: e.to_string(),
            })?;
        Ok(Connection {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `work` on this connection's thread and waits for it.
    fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut postgres::Client) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = tx.send(work(client));
        });
        let gone = || StateError::Database {
            operation: "reach the database",
            message: "the connection's thread has stopped".into(),
        };
        self.jobs
            .lock()
            .expect("jobs")
            .send(job)
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

fn db(operation: &'static str) -> impl Fn(postgres::Error) -> StateError {
    move |e| StateError::Database {
        operation,
        message: match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => {
                // The cause too (a TLS handshake fails on the certificate, say).
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    let cause_text = cause.to_string();
                    if !text.contains(&cause_text) {
                        text.push_str(&format!(": {cause_text}"));
                    }
                    source = cause.source();
                }
                text
            }
        },
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisory-lock key of a partition (the fleet lock is 0): a stable hash, so every
/// process agrees; two names sharing a key only wait for each other, never corrupt.
fn lock_key(partition: Option<&Partition>) -> i32 {
    use sha2::Digest;
    match partition {
        None => 0,
        Some(p) => {
            let digest = sha2::Sha256::digest(p.key().as_bytes());
            let key = i32::from_be_bytes(digest[..4].try_into().expect("4 bytes"));
            if key == 0 { 1 } else { key }
        }
    }
}

/// What this process holds, by advisory key: the fleet lock's shared holders and exclusive
/// holder, and exclusive partition locks. (PostgreSQL lets a session take a lock it already
/// holds, so contention within one process is decided here.)
#[derive(Default)]
struct Held {
    fleet_shared: usize,
    fleet_exclusive: bool,
    partitions: HashMap<i32, usize>,
}

/// State in a PostgreSQL database.
pub struct PostgresStateStore {
    describe: String,
    schema: String,
    data: Vec<Connection>,
    next: AtomicUsize,
    locks: Arc<Connection>,
    held: Arc<Mutex<Held>>,
    /// The advisory-lock namespace: one per schema, so two states in one database are apart.
    namespace: i32,
}

impl PostgresStateStore {
    /// Connects to `url` (`postgres://user@host/db?schema=name`; the usual `PG*` variables
    /// fill what it leaves out) and creates or migrates the schema.
    pub fn connect(url: &str) -> Result<PostgresStateStore, StateError> {
        let (url, schema) = split_schema(url);
        let (url, tls) = split_tls(&url)?;
        let mut config: postgres::Config = url.parse().map_err(db("read the database URL"))?;
        apply_pg_environment(&mut config);
        config.ssl_mode(match tls {
            Tls::Off => postgres::config::SslMode::Disable,
            Tls::Verified(_) => postgres::config::SslMode::Require,
        });
        let describe = describe(&config, &schema);
        let data = (0..DATA_CONNECTIONS)
            .map(|_| Connection::open(&config, &tls, &schema))
            .collect::<Result<Vec<_>, _>>()?;
        let locks = Arc::new(Connection::open(&config, &tls, &schema)?);
        let namespace = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("tenantform:{schema}").as_bytes());
            i32::from_be_bytes(digest[..4].try_into().expect("4 bytes"))
        };
        let store = PostgresStateStore {
            describe,
            schema,
            data,
            next: AtomicUsize::new(0),
            locks,
            held: Arc::default(),
            namespace,
        };
        store.migrate()?;
        Ok(store)
    }

    fn data(&self) -> &Connection {
        &self.data[self.next.fetch_add(1, Ordering::Relaxed) % self.data.len()]
    }

    /// Creates the schema and runs the migrations not yet applied, one at a time.
    fn migrate(&self) -> Result<(), StateError> {
        let schema = self.schema.clone();
        let namespace = self.namespace;
        self.data().call(move |client| {
            let mut tx = client.transaction().map_err(db("migrate the schema"))?;
            tx.execute("SELECT pg_advisory_xact_lock($1, -1)", &[&namespace])
                .map_err(db("migrate the schema"))?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());",
                schema = quote_ident(&schema)
            ))
            .map_err(db("migrate the schema"))?;
            let done: i32 = tx
                .query_one("SELECT coalesce(max(version), 0) FROM migrations", &[])
                .map_err(db("migrate the schema"))?
                .get(0);
            if done as usize > MIGRATIONS.len() {
                return Err(StateError::NewerFormat {
                    path: format!("schema {schema}"),
                    found: done as u32,
                    supported: MIGRATIONS.len() as u32,
                });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
                tx.batch_execute(sql).map_err(db("migrate the schema"))?;
                tx.execute(
                    "INSERT INTO migrations (version) VALUES ($1)",
                    &[&(i as i32 + 1)],
                )
                .map_err(db("migrate the schema"))?;
            }
            tx.commit().map_err(db("migrate the schema"))
        })
    }

    /// The stored rows and journals: every partition (`None`) or one.
    fn view(&self, only: Option<&Partition>) -> Result<(View, Option<FleetJournal>), StateError> {
        self.read(only, true)
    }

    /// The stored rows, with their journals replayed on top when `replay`: one statement
    /// (one snapshot, one round trip) for the partition rows, the lineage and the journals.
    fn read(
        &self,
        only: Option<&Partition>,
        replay: bool,
    ) -> Result<(View, Option<FleetJournal>), StateError> {
        let key = only.map(Partition::key);
        let only = only.cloned();
        let describe = self.describe.clone();
        let rows = self.data().call(move |client| {
            // One partition by its key (an index lookup), or everything: never one statement
            // for both (`$1 IS NULL OR name = $1`), whose generic plan scans every partition
            // for each one read, which made a fleet's plan quadratic.
            let filter = |column: &str| match &key {
                Some(_) => format!("WHERE {column} = $1"),
                None => String::new(),
            };
            let sql = format!(
                "SELECT 0 AS kind, 0::bigint AS seq, name, serial, objects AS body, NULL::text AS lineage
                   FROM partitions {}
                 UNION ALL SELECT 1, 0, NULL, NULL, value, NULL FROM meta WHERE key = 'lineage'
                 UNION ALL SELECT 2, seq, partition, base, change::text, lineage
                   FROM journal {}
                 UNION ALL SELECT CASE WHEN bases IS NULL THEN 4 ELSE 3 END, seq, NULL, NULL,
                        coalesce(bases::text, change::text), lineage
                   FROM fleet_journal
                 ORDER BY kind, seq",
                filter("name"),
                filter("partition")
            );
            match &key {
                // A plan reads every tenant's partition: prepared once per connection (each
                // has a thread of its own), so each read is one round trip and the server
                // neither parses nor plans it again (that was most of its CPU per read).
                Some(key) => {
                    thread_local! {
                        static READ_ONE: std::cell::RefCell<Option<postgres::Statement>> =
                            const { std::cell::RefCell::new(None) };
                    }
                    let statement = match READ_ONE.with(|s| s.borrow().clone()) {
                        Some(statement) => statement,
                        None => {
                            let statement = client
                                .prepare_typed(sql.as_str(), &[postgres::types::Type::TEXT])
                                .map_err(db("read state"))?;
                            READ_ONE.with(|s| *s.borrow_mut() = Some(statement.clone()));
                            statement
                        }
                    };
                    client.query(&statement, &[key])
                }
                None => client.query_typed(sql.as_str(), &[]),
            }
            .map_err(db("read state"))
        })?;
        let corrupt = |what: String, e: serde_json::Error| StateError::Corrupt {
            path: format!("{describe} ({what})"),
            detail: e.to_string(),
        };
        let mut lineage = String::new();
        let mut parts = BTreeMap::new();
        let mut journals: BTreeMap<Partition, PartitionJournal> = BTreeMap::new();
        let mut fleet: Option<(String, BTreeMap<Partition, u64>, Vec<StateChange>)> = None;
        for row in rows {
            let kind: i32 = row.get(0);
            let name: Option<String> = row.get(2);
            let number: Option<i64> = row.get(3);
            let body: Option<String> = row.get(4);
            let row_lineage: Option<String> = row.get(5);
            let body = body.unwrap_or_default();
            match kind {
                0 => {
                    let name = name.unwrap_or_default();
                    let partition = parse_partition(&name, &describe)?;
                    let objects: BTreeMap<String, StateObject> =
                        serde_json::from_str(&body).map_err(|e| corrupt(name.clone(), e))?;
                    check_objects(&partition, &objects, &describe)?;
                    parts.insert(partition, Part::stored(number.unwrap_or(0) as u64, objects));
                }
                1 => lineage = body,
                2 => {
                    let name = name.unwrap_or_default();
                    let partition = parse_partition(&name, &describe)?;
                    let change: StateChange = serde_json::from_str(&body)
                        .map_err(|e| corrupt(format!("journal of {name}"), e))?;
                    let (base, lineage) =
                        (number.unwrap_or(0) as u64, row_lineage.unwrap_or_default());
                    let journal = journals
                        .entry(partition)
                        .or_insert_with(|| PartitionJournal {
                            lineage: lineage.clone(),
                            base,
                            changes: Vec::new(),
                        });
                    // A journal is one writer's: rows of another base are a dead writer's.
                    if journal.base != base || journal.lineage != lineage {
                        *journal = PartitionJournal {
                            lineage,
                            base,
                            changes: Vec::new(),
                        };
                    }
                    journal.changes.push(change);
                }
                3 => {
                    let bases: BTreeMap<String, u64> = serde_json::from_str(&body)
                        .map_err(|e| corrupt("fleet_journal".into(), e))?;
                    let bases = bases
                        .into_iter()
                        .filter_map(|(k, v)| Partition::parse(&k).map(|p| (p, v)))
                        .collect();
                    fleet = Some((row_lineage.unwrap_or_default(), bases, Vec::new()));
                }
                _ => {
                    if let Some((_, _, changes)) = fleet.as_mut() {
                        changes.push(
                            serde_json::from_str(&body)
                                .map_err(|e| corrupt("fleet_journal".into(), e))?,
                        );
                    }
                }
            }
        }
        if let Some(p) = &only {
            parts.entry(p.clone()).or_insert_with(Part::absent);
        }
        let fleet = fleet.map(|(lineage, bases, changes)| FleetJournal::Changes {
            lineage,
            bases,
            changes,
        });
        let mut view = View {
            lineage,
            parts,
            recovered: 0,
        };
        if replay {
            view.replay(
                journals.into_iter().collect(),
                fleet.as_ref(),
                only.is_none(),
            );
        }
        Ok((view, fleet))
    }

    /// Takes an advisory lock of this store (`partition: None`: the fleet lock) within
    /// `deadline`, exclusive or shared, polling; records who holds it.
    fn acquire(
        &self,
        partition: Option<&Partition>,
        shared: bool,
        info: &LockInfo,
        deadline: Instant,
    ) -> Result<AdvisoryLock, StateError> {
        let key = lock_key(partition);
        let namespace = self.namespace;
        let name = partition.map_or_else(|| "fleet".to_string(), Partition::key);
        loop {
            let free_here = {
                let held = self.held.lock().expect("held");
                match (partition, shared) {
                    (None, true) => !held.fleet_exclusive,
                    (None, false) => !held.fleet_exclusive && held.fleet_shared == 0,
                    (Some(_), _) => !held.partitions.contains_key(&key),
                }
            };
            let got = free_here && {
                let sql = if shared {
                    "SELECT pg_try_advisory_lock_shared($1, $2)"
                } else {
                    "SELECT pg_try_advisory_lock($1, $2)"
                };
                self.locks.call(move |client| {
                    Ok(client
                        .query_one(sql, &[&namespace, &key])
                        .map_err(db("take a state lock"))?
                        .get::<_, bool>(0))
                })?
            };
            if got {
                {
                    let mut held = self.held.lock().expect("held");
                    match (partition, shared) {
                        (None, true) => held.fleet_shared += 1,
                        (None, false) => held.fleet_exclusive = true,
                        (Some(_), _) => *held.partitions.entry(key).or_default() += 1,
                    }
                }
                let lock = AdvisoryLock {
                    connection: self.locks.clone(),
                    held: self.held.clone(),
                    namespace,
                    key,
                    shared,
                    fleet: partition.is_none(),
                    name: name.clone(),
                };
                if !shared {
                    let info = serde_json::to_value(info).expect("lock info serializes");
                    let row = name.clone();
                    self.data().call(move |client| {
                        client
                            .execute(
                                "INSERT INTO locks (partition, info) VALUES ($1, $2)
                                 ON CONFLICT (partition) DO UPDATE SET info = excluded.info",
                                &[&row, &info],
                            )
                            .map_err(db("record a state lock"))?;
                        Ok(())
                    })?;
                }
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                return Err(self.holder(&name));
            }
            std::thread::sleep(Duration::from_millis(50).min(
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
            ));
        }
    }

    /// Who holds `name` (or the whole fleet), for the error of a lock not taken in time.
    fn holder(&self, name: &str) -> StateError {
        let name = name.to_string();
        let found = self.data().call(move |client| {
            // The fleet lock waits for any partition writer: name one. A partition lock
            // waits for its own holder or a whole-fleet one.
            let rows = if name == "fleet" {
                client.query("SELECT info FROM locks ORDER BY partition", &[])
            } else {
                client.query(
                    "SELECT info FROM locks WHERE partition IN ($1, 'fleet') ORDER BY partition = 'fleet'",
                    &[&name],
                )
            }
            .map_err(db("read state locks"))?;
            Ok(rows
                .into_iter()
                .find_map(|r| serde_json::from_value::<LockInfo>(r.get(0)).ok()))
        });
        match found {
            Ok(Some(info)) => StateError::Locked {
                info: Box::new(info),
            },
            Ok(None) => StateError::LockedUnknown,
            Err(e) => e,
        }
    }

    /// Records a dead whole-fleet apply's journal under the whole-fleet lock, so partition
    /// writers never work on top of it.
    fn settle(&self, info: &LockInfo, deadline: Instant) -> Result<(), StateError> {
        while self.refuse_pending("settle").is_err() {
            let lock = StateLock::new(
                Box::new(self.acquire(None, false, info, deadline)?),
                info.clone(),
                LockScope::Fleet,
            );
            if self.refuse_pending("settle").is_ok() {
                break;
            }
            let mut state = self.load()?;
            state.recovered_changes = 0;
            self.write(&state, &lock)?;
        }
        Ok(())
    }

    fn check_lineage(&self, lineage: &str, need_catalog: bool) -> Result<(), StateError> {
        let stored = self.stored_lineage()?;
        match stored {
            Some(stored) if stored != lineage => Err(StateError::LineageMismatch {
                ours: lineage.to_string(),
                stored,
            }),
            None if need_catalog => Err(StateError::NoCatalog),
            _ => Ok(()),
        }
    }

    fn stored_lineage(&self) -> Result<Option<String>, StateError> {
        self.data().call(|client| {
            Ok(client
                .query_opt("SELECT value FROM meta WHERE key = 'lineage'", &[])
                .map_err(db("read state"))?
                .map(|r| r.get(0)))
        })
    }

    fn refuse_pending(&self, what: &'static str) -> Result<(), StateError> {
        let pending: bool = self.data().call(|client| {
            Ok(client
                .query_one("SELECT EXISTS (SELECT 1 FROM fleet_journal)", &[])
                .map_err(db("read state"))?
                .get(0))
        })?;
        if pending {
            Err(StateError::FleetJournalPending {
                what,
                journal: format!("{} (fleet_journal)", self.describe),
            })
        } else {
            Ok(())
        }
    }
}

/// A held advisory lock; released (and its holder record cleared) when dropped.
struct AdvisoryLock {
    connection: Arc<Connection>,
    held: Arc<Mutex<Held>>,
    namespace: i32,
    key: i32,
    shared: bool,
    fleet: bool,
    name: String,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let (namespace, key, shared, name) =
            (self.namespace, self.key, self.shared, self.name.clone());
        let _ = self.connection.call(move |client| {
            if !shared {
                let _ = client.execute("DELETE FROM locks WHERE partition = $1", &[&name]);
            }
            let sql = if shared {
                "SELECT pg_advisory_unlock_shared($1, $2)"
            } else {
                "SELECT pg_advisory_unlock($1, $2)"
            };
            let _ = client.query_one(sql, &[&namespace, &key]);
            Ok(())
        });
        let mut held = self.held.lock().expect("held");
        match (self.fleet, self.shared) {
            (true, true) => held.fleet_shared = held.fleet_shared.saturating_sub(1),
            (true, false) => held.fleet_exclusive = false,
            (false, _) => {
                if let Some(n) = held.partitions.get_mut(&self.key) {
                    *n -= 1;
                    if *n == 0 {
                        held.partitions.remove(&self.key);
                    }
                }
            }
        }
    }
}

fn parse_partition(name: &str, describe: &str) -> Result<Partition, StateError> {
    Partition::parse(name).ok_or_else(|| StateError::Corrupt {
        path: describe.to_string(),
        detail: format!("`{name}` is not a partition"),
    })
}

fn check_objects(
    partition: &Partition,
    objects: &BTreeMap<String, StateObject>,
    describe: &str,
) -> Result<(), StateError> {
    for (address, object) in objects {
        let belongs = partition_of(address, object);
        if belongs != *partition {
            return Err(StateError::Corrupt {
                path: format!("{describe} ({partition})"),
                detail: format!("{address} belongs to {belongs}"),
            });
        }
    }
    Ok(())
}

/// Takes tenantform's own `schema` parameter out of a database URL.
fn split_schema(url: &str) -> (String, String) {
    let default = "tenantform".to_string();
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), default);
    };
    let mut schema = default;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some(("schema", value)) if !value.is_empty() => {
                schema = value.to_string();
                false
            }
            _ => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

/// Fills what the URL leaves out from the usual `PG*` variables (as libpq does).
fn apply_pg_environment(config: &mut postgres::Config) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty()
        && let Some(host) = var("PGHOST")
    {
        config.host(&host);
    }
    if config.get_ports().is_empty()
        && let Some(port) = var("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none()
        && let Some(user) = var("PGUSER")
    {
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = var("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_dbname().is_none()
        && let Some(db) = var("PGDATABASE")
    {
        config.dbname(&db);
    }
}

/// `postgres://user@host:port/db (schema s)`: never the password.
fn describe(config: &postgres::Config, schema: &str) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("postgres://{at}{host}:{port}/{db} (schema {schema})")
}

/// A journal of changes to partitions, one row each, committed as it is recorded.
struct RowJournal {
    connection: Arc<Connection>,
    lineage: String,
    /// Partition journals: the partition and the serial its changes apply to.
    partition: Option<(Partition, u64)>,
}

impl RowJournal {
    /// The partition `change` is recorded in, refused when it belongs to another one.
    fn check_change(&self, change: &StateChange) -> Result<(), StateError> {
        match &self.partition {
            Some((partition, _)) => super::check_change_belongs(partition, change),
            None => Ok(()),
        }
    }

    fn history_partition(&self, entry: &HistoryRecord<'_>) -> Result<Partition, StateError> {
        match &self.partition {
            Some((p, _)) => {
                super::history::check_entry_partition(p, entry)?;
                Ok(p.clone())
            }
            None => entry.partition(),
        }
    }

    /// Inserts the journal row of `change`, and `history` before it in the same statement
    /// (one round trip, one commit): typed, so nothing is prepared first.
    fn insert(
        &self,
        change: &StateChange,
        history: Option<(String, String, String, String, String)>,
    ) -> Result<(), StateError> {
        use postgres::types::{ToSql, Type};
        let value = serde_json::to_value(change).expect("changes serialize");
        let lineage = self.lineage.clone();
        let target = self
            .partition
            .as_ref()
            .map(|(p, base)| (p.key(), *base as i64));
        self.connection.call(move |client| {
            let with_history = "WITH h AS (INSERT INTO history (at, partition, tenant, address, entry)
                 VALUES ($1::text::timestamptz, $2, $3, $4, $5)) ";
            let (sql, mut params): (String, Vec<(&(dyn ToSql + Sync), Type)>) = match &history {
                Some((at, partition, tenant, address, entry)) => (
                    with_history.to_string(),
                    vec![
                        (at, Type::TEXT),
                        (partition, Type::TEXT),
                        (tenant, Type::TEXT),
                        (address, Type::TEXT),
                        (entry, Type::TEXT),
                    ],
                ),
                None => (String::new(), Vec::new()),
            };
            let n = params.len();
            let sql = match &target {
                Some((key, base)) => {
                    params.extend([
                        (key as &(dyn ToSql + Sync), Type::TEXT),
                        (&lineage, Type::TEXT),
                        (base, Type::INT8),
                        (&value, Type::JSONB),
                    ]);
                    format!(
                        "{sql}INSERT INTO journal (partition, lineage, base, change) VALUES (${}, ${}, ${}, ${})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4
                    )
                }
                None => {
                    params.extend([
                        (&lineage as &(dyn ToSql + Sync), Type::TEXT),
                        (&value, Type::JSONB),
                    ]);
                    format!(
                        "{sql}INSERT INTO fleet_journal (lineage, change) VALUES (${}, ${})",
                        n + 1,
                        n + 2
                    )
                }
            };
            client
                .query_typed(sql.as_str(), &params)
                .map_err(db("journal a change"))?;
            Ok(())
        })
    }
}

impl Journal for RowJournal {
    fn check(&self, change: &StateChange) -> Result<(), StateError> {
        self.check_change(change)
    }

    fn record(&mut self, change: &StateChange, _durable: bool) -> Result<(), StateError> {
        self.check_change(change)?;
        self.insert(change, None)
    }

    fn history(&mut self, entry: &HistoryRecord<'_>, _durable: bool) -> Result<(), StateError> {
        let row = history_row(&self.history_partition(entry)?, entry);
        self.connection
            .call(move |client| insert_history(client, &[row]))
    }

    /// Both rows in one statement: atomic, and one commit per change made.
    fn record_with_history(
        &mut self,
        change: &StateChange,
        entry: &HistoryRecord<'_>,
        _durable: bool,
    ) -> Result<(), StateError> {
        self.check_change(change)?;
        let row = history_row(&self.history_partition(entry)?, entry);
        self.insert(change, Some(row))
    }
}

impl StateStore for PostgresStateStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn serials(&self) -> Result<Serials, StateError> {
        // Without journals the serials are the stored ones: read them without the objects.
        // A journal (an interrupted apply) changes what readers see: replay everything then.
        let describe = self.describe.clone();
        let light = self.data().call(move |client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(db("read state"))?;
            let journals: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM journal) OR EXISTS (SELECT 1 FROM fleet_journal)",
                    &[],
                )
                .map_err(db("read state"))?
                .get(0);
            if journals {
                return Ok(None);
            }
            let lineage: String = tx
                .query_opt("SELECT value FROM meta WHERE key = 'lineage'", &[])
                .map_err(db("read state"))?
                .map(|r| r.get(0))
                .unwrap_or_default();
            let mut partitions = BTreeMap::new();
            for row in tx
                .query("SELECT name, serial FROM partitions", &[])
                .map_err(db("read state"))?
            {
                let name: String = row.get(0);
                let serial: i64 = row.get(1);
                partitions.insert(parse_partition(&name, &describe)?, serial as u64);
            }
            tx.commit().map_err(db("read state"))?;
            Ok(Some(Serials {
                lineage,
                partitions,
            }))
        })?;
        if let Some(serials) = light {
            return Ok(serials);
        }
        let (view, _) = self.view(None)?;
        Ok(Serials {
            partitions: view.serials(),
            lineage: view.lineage,
        })
    }

    fn list_tenants(&self) -> Result<Vec<String>, StateError> {
        Ok(self
            .serials()?
            .partitions
            .into_keys()
            .filter_map(|p| p.tenant_name().map(str::to_string))
            .collect())
    }

    fn partition_reads_whole_fleet(&self) -> Result<bool, StateError> {
        Ok(self.refuse_pending("read").is_err())
    }

    fn load_partition_each(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    ) -> Result<State, StateError> {
        use serde::de::DeserializeSeed;
        partition.check()?;
        let key = partition.key();
        let row = self.data().call(move |client| {
            client
                .query_opt(
                    "SELECT p.serial, p.objects, (SELECT value FROM meta WHERE key = 'lineage'),
                            EXISTS (SELECT 1 FROM journal WHERE partition = $1)
                            OR EXISTS (SELECT 1 FROM fleet_journal)
                       FROM partitions p WHERE p.name = $1",
                    &[&key],
                )
                .map_err(db("read state"))
        })?;
        // Never written, or a journal to replay onto it: loaded whole, as `load_partition` does.
        let Some(row) = row.filter(|r| !r.get::<_, bool>(3)) else {
            return super::hand_on(self.load_partition(partition)?, each);
        };
        let serial: i64 = row.get(0);
        let lineage: Option<String> = row.get(2);
        let shown = format!("{} ({partition})", self.describe);
        let mut stopped = None;
        let mut checked = |address: String, object: StateObject| {
            let belongs = partition_of(&address, &object);
            if belongs != *partition {
                return Err(StateError::Corrupt {
                    path: shown.clone(),
                    detail: format!("{address} belongs to {belongs}"),
                });
            }
            each(address, object)
        };
        // Parsed from the row's text as it is: the objects are never held all at once.
        let mut de = serde_json::Deserializer::from_str(row.get::<_, &str>(1));
        let parsed = super::file::ObjectsSeed {
            each: &mut checked,
            stopped: &mut stopped,
            wanted: None,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Some(error) = stopped {
            return Err(error);
        }
        parsed.map_err(|e| StateError::Corrupt {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        Ok(State {
            lineage: lineage.unwrap_or_default(),
            serial: serial as u64,
            ..State::new()
        })
    }

    fn load_partition(&self, partition: &Partition) -> Result<State, StateError> {
        partition.check()?;
        let (view, _) = self.view(Some(partition))?;
        Ok(view.into_partition(partition))
    }

    fn lock_partition(
        &self,
        partition: &Partition,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<StateLock, StateError> {
        partition.check()?;
        let deadline = Instant::now() + timeout;
        let fleet = loop {
            self.settle(&info, deadline)?;
            let fleet = self.acquire(None, true, &info, deadline)?;
            // A whole-fleet apply may have come and died in between: settle it first.
            if self.refuse_pending("lock").is_ok() {
                break fleet;
            }
        };
        let own = self.acquire(Some(partition), false, &info, deadline)?;
        Ok(StateLock::new(
            Box::new((own, fleet)),
            info,
            LockScope::Partition(partition.clone()),
        ))
    }

    fn journal_partition(
        &self,
        partition: &Partition,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        lock.check_covers(partition)?;
        partition.check()?;
        super::check_journal_base(partition, base)?;
        self.refuse_pending("cannot journal a partition")?;
        self.check_lineage(&base.lineage, partition != &Partition::Catalog)?;
        let (view, _) = self.view(Some(partition))?;
        let stored = view.parts.get(partition).map_or(0, |p| p.raw_serial);
        if stored != base.serial {
            return Err(StateError::SerialMismatch {
                partition: partition.to_string(),
                stored,
                given: base.serial,
            });
        }
        let key = partition.key();
        self.data().call(move |client| {
            client
                .execute("DELETE FROM journal WHERE partition = $1", &[&key])
                .map_err(db("start a journal"))?;
            Ok(())
        })?;
        Ok(Box::new(RowJournal {
            connection: Arc::new(Connection::clone_of(self.data())),
            lineage: base.lineage.clone(),
            partition: Some((partition.clone(), stored)),
        }))
    }

    fn write_partition(
        &self,
        partition: &Partition,
        state: &State,
        lock: &StateLock,
    ) -> Result<u64, StateError> {
        super::check_partition_write(partition, state, lock)?;
        self.refuse_pending("cannot write a partition")?;
        self.check_lineage(&state.lineage, partition != &Partition::Catalog)?;
        let key = partition.key();
        let lineage = state.lineage.clone();
        let objects = serde_json::to_string(&state.objects).expect("objects serialize");
        let catalog = partition == &Partition::Catalog;
        self.data().call(move |client| {
            let mut tx = client.transaction().map_err(db("write state"))?;
            let raw: Option<i64> = tx
                .query_opt(
                    "SELECT serial FROM partitions WHERE name = $1 FOR UPDATE",
                    &[&key],
                )
                .map_err(db("write state"))?
                .map(|r| r.get(0));
            let raw = raw.unwrap_or(0);
            let journal_live: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM journal WHERE partition = $1 AND lineage = $2 AND base = $3)",
                    &[&key, &lineage, &raw],
                )
                .map_err(db("write state"))?
                .get(0);
            let serial = raw + i64::from(journal_live) + 1;
            tx.execute(
                "INSERT INTO partitions (name, serial, objects) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET serial = excluded.serial,
                     objects = excluded.objects, written_at = now()",
                &[&key, &serial, &objects],
            )
            .map_err(db("write state"))?;
            if catalog {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('lineage', $1) ON CONFLICT (key) DO NOTHING",
                    &[&lineage],
                )
                .map_err(db("write state"))?;
            }
            tx.execute("DELETE FROM journal WHERE partition = $1", &[&key])
                .map_err(db("write state"))?;
            tx.commit().map_err(db("write state"))?;
            Ok(serial as u64)
        })
    }

    fn load(&self) -> Result<State, StateError> {
        let (view, _) = self.view(None)?;
        view.into_state(&self.describe)
    }

    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<StateLock, StateError> {
        let held = self.acquire(None, false, &info, Instant::now() + timeout)?;
        Ok(StateLock::new(Box::new(held), info, LockScope::Fleet))
    }

    fn unlock(&self, id: &str) -> Result<UnlockOutcome, StateError> {
        let rows: Vec<(String, serde_json::Value)> = self.data().call(|client| {
            Ok(client
                .query("SELECT partition, info FROM locks", &[])
                .map_err(db("read state locks"))?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })?;
        let mut other = None;
        for (name, info) in rows {
            let Ok(info) = serde_json::from_value::<LockInfo>(info) else {
                continue;
            };
            if info.id != id {
                other.get_or_insert(info.id);
                continue;
            }
            // Its holder is alive while its advisory lock is held.
            let partition = if name == "fleet" {
                None
            } else {
                Partition::parse(&name)
            };
            return match self.acquire(partition.as_ref(), false, &info, Instant::now()) {
                Ok(lock) => {
                    drop(lock);
                    Ok(UnlockOutcome::Cleared)
                }
                Err(StateError::Locked { .. } | StateError::LockedUnknown) => {
                    Err(StateError::LockHeld {
                        id: id.into(),
                        info: Box::new(info),
                    })
                }
                Err(e) => Err(e),
            };
        }
        match other {
            Some(current) => Err(StateError::LockIdMismatch {
                requested: id.into(),
                current,
            }),
            None => Ok(UnlockOutcome::NotLocked),
        }
    }

    fn journal(
        &self,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        lock.check_fleet()?;
        if base.lineage.is_empty() {
            return Err(StateError::NoLineage { what: "journal" });
        }
        if base.recovered_changes > 0 {
            return Err(StateError::RecoveredNotWritten {
                partition: "state".into(),
            });
        }
        let (view, _) = self.view(None)?;
        let bases: BTreeMap<String, u64> = view
            .parts
            .iter()
            .map(|(p, part)| (p.key(), part.raw_serial))
            .collect();
        let bases = serde_json::to_value(bases).expect("serials serialize");
        let lineage = base.lineage.clone();
        self.data().call(move |client| {
            let mut tx = client.transaction().map_err(db("start a journal"))?;
            tx.execute("TRUNCATE fleet_journal", &[])
                .map_err(db("start a journal"))?;
            tx.execute(
                "INSERT INTO fleet_journal (lineage, bases) VALUES ($1, $2)",
                &[&lineage, &bases],
            )
            .map_err(db("start a journal"))?;
            tx.commit().map_err(db("start a journal"))
        })?;
        Ok(Box::new(RowJournal {
            connection: Arc::new(Connection::clone_of(self.data())),
            lineage: base.lineage.clone(),
            partition: None,
        }))
    }

    fn write(&self, state: &State, lock: &StateLock) -> Result<u64, StateError> {
        lock.check_fleet()?;
        if state.lineage.is_empty() {
            return Err(StateError::NoLineage { what: "write" });
        }
        if let Some(stored) = self.stored_lineage()?
            && stored != state.lineage
        {
            return Err(StateError::LineageMismatch {
                ours: state.lineage.clone(),
                stored,
            });
        }
        // As stored, and as readers see it (journals replayed: a partition an interrupted
        // apply touched was seen at its serial + 1).
        let (raw, _) = self.read(None, false)?;
        let (seen, _) = self.view(None)?;
        let live_journals: Vec<String> = {
            let lineage = state.lineage.clone();
            self.data().call(move |client| {
                Ok(client
                    .query(
                        "SELECT DISTINCT j.partition FROM journal j
                         LEFT JOIN partitions p ON p.name = j.partition
                         WHERE j.lineage = $1 AND j.base = coalesce(p.serial, 0)",
                        &[&lineage],
                    )
                    .map_err(db("read state"))?
                    .into_iter()
                    .map(|r| r.get(0))
                    .collect())
            })?
        };
        let mut new: BTreeMap<Partition, BTreeMap<String, StateObject>> = BTreeMap::new();
        new.entry(Partition::Catalog).or_default();
        for (address, object) in &state.objects {
            new.entry(partition_of(address, object))
                .or_default()
                .insert(address.clone(), object.clone());
        }
        // Partitions that exist keep existing (emptied), so serials never go back.
        for p in raw.parts.keys().chain(seen.parts.keys()) {
            new.entry(p.clone()).or_default();
        }
        let mut rows: Vec<(String, i64, String)> = Vec::new();
        let mut whole = 0u64;
        for (p, objects) in new {
            let stored = raw.parts.get(&p).filter(|r| r.exists);
            let raw_serial = stored.map_or(0, |r| r.raw_serial);
            let journal_live = live_journals.contains(&p.key());
            let seen_serial = seen
                .parts
                .get(&p)
                .map_or(raw_serial, Part::serial)
                .max(raw_serial + u64::from(journal_live));
            let differs = match stored {
                Some(r) => r.objects != objects,
                None => !objects.is_empty() || p == Partition::Catalog,
            };
            if differs || journal_live {
                whole += seen_serial + 1;
                rows.push((
                    p.key(),
                    (seen_serial + 1) as i64,
                    serde_json::to_string(&objects).expect("objects serialize"),
                ));
            } else {
                whole += raw_serial;
            }
        }
        let lineage = state.lineage.clone();
        self.data().call(move |client| {
            let mut tx = client.transaction().map_err(db("write state"))?;
            // Prepared once: a first apply writes every partition of the fleet here.
            let upsert = tx
                .prepare(
                    "INSERT INTO partitions (name, serial, objects) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET serial = excluded.serial,
                         objects = excluded.objects, written_at = now()",
                )
                .map_err(db("write state"))?;
            for (name, serial, objects) in &rows {
                tx.execute(&upsert, &[name, serial, objects])
                    .map_err(db("write state"))?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('lineage', $1) ON CONFLICT (key) DO NOTHING",
                &[&lineage],
            )
            .map_err(db("write state"))?;
            // TRUNCATE, not DELETE: a whole-fleet apply journals every change of the fleet,
            // and the dead rows a DELETE leaves would be scanned by every partition read
            // until a vacuum (which may never come: autovacuum can be off).
            tx.batch_execute("TRUNCATE journal, fleet_journal")
                .map_err(db("write state"))?;
            tx.commit().map_err(db("write state"))?;
            // A whole-fleet write (state migrate, a first apply) fills the tables at once:
            // without statistics the server plans the next plan's partition reads blind
            // (measured: 5x its CPU for the first plan after a 1,000-tenant migrate), and
            // nothing else may gather them (autovacuum can be off). Cheap: a sample.
            if let Err(e) = client.batch_execute("ANALYZE partitions, journal, fleet_journal, meta")
            {
                tracing::warn!(error = %e, "could not gather statistics after writing the state");
            }
            Ok(())
        })?;
        Ok(whole)
    }

    fn read_observation(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, StateError> {
        Partition::tenant(tenant)?;
        super::check_observation_name(name)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let text: Option<String> = self.data().call(move |client| {
            let row = client
                .query_opt(
                    "SELECT value FROM observations WHERE tenant = $1 AND name = $2",
                    &[&tenant, &name],
                )
                .map_err(db("read an observation"))?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StateError::Corrupt {
                path: format!("{} (observations)", self.describe()),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    fn write_observation(
        &self,
        tenant: &str,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), StateError> {
        Partition::tenant(tenant)?;
        super::check_observation_name(name)?;
        let (tenant, name, text) = (tenant.to_string(), name.to_string(), value.to_string());
        self.data().call(move |client| {
            client
                .execute(
                    "INSERT INTO observations (tenant, name, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant, name)
                     DO UPDATE SET value = excluded.value, written_at = now()",
                    &[&tenant, &name, &text],
                )
                .map_err(db("write an observation"))?;
            Ok(())
        })
    }

    fn read_history(&self, read: &HistoryRead) -> Result<Vec<HistoryEntry>, StateError> {
        let tenants: Option<Vec<String>> =
            read.tenants.as_ref().map(|t| t.iter().cloned().collect());
        let since = read.since.map(|t| t.to_string());
        let catalog_only = read.catalog_only;
        let texts: Vec<String> = self.data().call(move |client| {
            let rows = client
                .query(
                    "SELECT entry FROM history
                     WHERE ($1::text[] IS NULL OR tenant = ANY($1))
                       AND ($2::text IS NULL OR at >= $2::text::timestamptz)
                       AND (NOT $3 OR partition = 'catalog')
                     ORDER BY at, seq",
                    &[&tenants, &since, &catalog_only],
                )
                .map_err(db("read apply history"))?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })?;
        let describe = self.describe();
        let mut entries = Vec::with_capacity(texts.len());
        for text in texts {
            let entry: HistoryEntry =
                serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                    path: format!("{describe} (history)"),
                    detail: e.to_string(),
                })?;
            if read.wants(&entry) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    fn append_history(&self, entries: &[HistoryEntry], lock: &StateLock) -> Result<(), StateError> {
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let partition = entry.partition()?;
            lock.check_covers(&partition)?;
            rows.push(history_row(&partition, entry));
        }
        self.data().call(move |client| {
            let mut tx = client.transaction().map_err(db("record apply history"))?;
            // At most 65535 parameters a statement: 5 a row.
            for chunk in rows.chunks(10_000) {
                insert_history(&mut tx, chunk)?;
            }
            tx.commit().map_err(db("record apply history"))
        })
    }
}

impl Connection {
    /// A handle on the same connection thread (journals record through it).
    fn clone_of(other: &Connection) -> Connection {
        Connection {
            jobs: Mutex::new(other.jobs.lock().expect("jobs").clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_tenantforms_and_the_password_is_never_described() {
        let (url, schema) = split_schema(
            "postgres://ci:s3cret@db.example:6432/fleet?schema=team_a&sslmode=disable",
        );
        assert_eq!(schema, "team_a");
        assert_eq!(
            url,
            "postgres://ci:s3cret@db.example:6432/fleet?sslmode=disable"
        );
        let config: postgres::Config = url.parse().unwrap();
        let text = describe(&config, &schema);
        assert_eq!(text, "postgres://ci@db.example:6432/fleet (schema team_a)");
        assert!(!text.contains("s3cret"));
        assert_eq!(
            split_schema("postgres://localhost/db"),
            (
                "postgres://localhost/db".to_string(),
                "tenantform".to_string()
            )
        );
        assert_eq!(
            split_schema("postgres://localhost/db?schema=x").0,
            "postgres://localhost/db"
        );
    }

    #[test]
    fn lock_keys_are_stable_and_never_the_fleet_key() {
        assert_eq!(lock_key(None), 0);
        let a = lock_key(Some(&Partition::tenant("a").unwrap()));
        assert_eq!(a, lock_key(Some(&Partition::tenant("a").unwrap())));
        assert_ne!(a, 0);
        assert_ne!(lock_key(Some(&Partition::Catalog)), 0);
    }
}
