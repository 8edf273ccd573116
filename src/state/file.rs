//! The local JSON state file: `.tenantform/state.json` by default.
//!
//! - Writes are atomic: a temporary file in the same directory (mode 0600), fsync, rename over
//!   the old file, fsync of the directory. The previous file is kept as `state.json.backup`.
//! - An apply journals each change to `state.json.journal` (one JSON line, fsynced) and
//!   writes the whole file once at the end; a killed apply is recovered on the next load.
//! - Writers hold an OS lock on `state.json.lock` (released by the kernel if the process dies);
//!   the file records who holds it.
//! - A corrupt or newer-format file is an error and is never overwritten.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{
    Journal, LockInfo, STATE_FORMAT_VERSION, State, StateChange, StateError, StateLock, StateStore,
    UnlockOutcome,
};

pub struct FileStateStore {
    path: PathBuf,
}

/// First line of a journal: which stored state its changes apply to.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JournalHeader {
    journal_for_lineage: String,
    journal_for_serial: u64,
}

impl FileStateStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStateStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".backup")
    }

    fn io(&self, context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
        let path = path.display().to_string();
        move |source| StateError::Io {
            context,
            path,
            source,
        }
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(self.io("cannot create state directory", dir))?;
        }
        Ok(())
    }

    fn read_snapshot(&self) -> Result<Option<State>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot read state file", &self.path)(e)),
        };
        let shown = self.path.display().to_string();
        // Read the version first, so a newer format is reported as such, not as corrupt.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            format_version: Option<u32>,
        }
        let version: Version = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: shown.clone(),
            detail: format!(
                "{e} (restore {} or fix the file by hand)",
                self.backup_path().display()
            ),
        })?;
        match version.format_version {
            Some(v) if v > STATE_FORMAT_VERSION => {
                return Err(StateError::NewerFormat {
                    path: shown,
                    found: v,
                    supported: STATE_FORMAT_VERSION,
                });
            }
            None => {
                return Err(StateError::Corrupt {
                    path: shown,
                    detail: "no formatVersion: not a tenantform state file".into(),
                });
            }
            _ => {}
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: shown,
                detail: e.to_string(),
            })
    }

    /// Replays a journal left by an interrupted apply. A torn last line (the process died
    /// while writing it) is ignored; any other bad line is corruption.
    fn replay_journal(&self, state: &mut State) -> Result<(), StateError> {
        let path = self.journal_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io("cannot read state journal", &path)(e)),
        };
        let mut text = String::new();
        BufReader::new(file)
            .read_to_string(&mut text)
            .map_err(self.io("cannot read state journal", &path))?;
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let Some((header, entries)) = lines.split_first() else {
            return Ok(());
        };
        let corrupt = |detail: String| StateError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        let header: JournalHeader = match serde_json::from_str(header) {
            Ok(h) => h,
            Err(_) if lines.len() == 1 && !complete => return Ok(()),
            Err(e) => return Err(corrupt(format!("bad header: {e}"))),
        };
        // The very first apply was interrupted: no file yet, the journal names the lineage.
        if state.lineage.is_empty() && state.serial == 0 && header.journal_for_serial == 0 {
            state.lineage = header.journal_for_lineage.clone();
        }
        // A journal for an older serial was already folded into the file (the process died
        // between writing the file and removing the journal).
        if header.journal_for_lineage != state.lineage || header.journal_for_serial != state.serial
        {
            return Ok(());
        }
        let mut replayed = 0;
        for (i, line) in entries.iter().enumerate() {
            match serde_json::from_str::<StateChange>(line) {
                Ok(change) => {
                    state.apply_change(&change);
                    replayed += 1;
                }
                Err(_) if i + 1 == entries.len() && !complete => break,
                Err(e) => return Err(corrupt(format!("line {}: {e}", i + 2))),
            }
        }
        if replayed > 0 {
            state.serial += 1;
            state.recovered_changes = replayed;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), StateError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io("cannot sync state directory", dir))?;
        }
        Ok(())
    }
}

impl StateStore for FileStateStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<State, StateError> {
        // No file yet, but maybe a journal: the very first apply was interrupted.
        let mut state = self.read_snapshot()?.unwrap_or_default();
        self.replay_journal(&mut state)?;
        Ok(state)
    }

    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<StateLock, StateError> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(self.io("cannot open state lock", &path))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(match read_lock_info(&mut file) {
                            Some(info) => StateError::Locked {
                                info: Box::new(info),
                            },
                            None => StateError::LockedUnknown,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50).min(timeout));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(self.io("cannot lock state", &path)(e));
                }
            }
        }
        let record = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(&record))
            .and_then(|_| file.sync_all())
            .map_err(self.io("cannot write state lock", &path))?;
        Ok(StateLock::new(Box::new(HeldFileLock { file }), info))
    }

    fn unlock(&self, id: &str) -> Result<UnlockOutcome, StateError> {
        let path = self.lock_path();
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(UnlockOutcome::NotLocked);
            }
            Err(e) => return Err(self.io("cannot open state lock", &path)(e)),
        };
        let recorded = read_lock_info(&mut file);
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => {
                let info = recorded.ok_or(StateError::LockedUnknown)?;
                if info.id != id {
                    return Err(StateError::LockIdMismatch {
                        requested: id.into(),
                        current: info.id,
                    });
                }
                Err(StateError::LockHeld {
                    id: id.into(),
                    info: Box::new(info),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(self.io("cannot lock state", &path)(e)),
            Ok(()) => match recorded {
                None => Ok(UnlockOutcome::NotLocked),
                Some(info) if info.id != id => Err(StateError::LockIdMismatch {
                    requested: id.into(),
                    current: info.id,
                }),
                Some(_) => {
                    file.set_len(0)
                        .map_err(self.io("cannot clear state lock", &path))?;
                    Ok(UnlockOutcome::Cleared)
                }
            },
        }
    }

    fn journal(
        &self,
        base: &State,
        _lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        if base.lineage.is_empty() {
            return Err(StateError::Invalid(
                "refusing to journal a state without a lineage (call ensure_lineage first)".into(),
            ));
        }
        self.ensure_dir()?;
        let path = self.journal_path();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(self.io("cannot create state journal", &path))?;
        let header = JournalHeader {
            journal_for_lineage: base.lineage.clone(),
            journal_for_serial: base.serial,
        };
        let mut line = serde_json::to_vec(&header).expect("header serializes");
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|_| file.sync_data())
            .map_err(self.io("cannot write state journal", &path))?;
        self.sync_dir()?;
        Ok(Box::new(FileJournal { file, path }))
    }

    fn write(&self, state: &State, _lock: &StateLock) -> Result<(), StateError> {
        self.ensure_dir()?;
        if state.lineage.is_empty() {
            return Err(StateError::Invalid(
                "refusing to write a state without a lineage (call ensure_lineage first)".into(),
            ));
        }
        let mut text = serde_json::to_vec_pretty(state).expect("state serializes");
        text.push(b'\n');
        let tmp = self.sibling(&format!(".tmp-{}", std::process::id()));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            if self.path.exists() {
                std::fs::copy(&self.path, self.backup_path())?;
            }
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io("cannot write state file", &self.path)(e));
        }
        self.sync_dir()?;
        match std::fs::remove_file(self.journal_path()) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("cannot remove state journal", &self.journal_path())(e)),
        }
    }
}

fn read_lock_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

struct HeldFileLock {
    file: File,
}

impl Drop for HeldFileLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

struct FileJournal {
    file: File,
    path: PathBuf,
}

impl Journal for FileJournal {
    fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError> {
        let mut line = serde_json::to_vec(change).expect("change serializes");
        line.push(b'\n');
        // One write per line: a killed process leaves whole lines (at worst a torn last one).
        self.file
            .write_all(&line)
            .and_then(|_| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            })
            .map_err(|source| StateError::Io {
                context: "cannot write state journal",
                path: self.path.display().to_string(),
                source,
            })
    }
}
