//! Reading manifests from the file system or stdin into a [`SourceSet`] (the only I/O here).
//!
//! Files are visited in a deterministic order (sorted paths), so diagnostics and plans are
//! stable. Problems with one file (unreadable, not UTF-8, too large) become diagnostics; only a
//! path that does not exist at all is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Loc, Origin, SourceFile, SourceSet};

/// Largest manifest file read; larger ones are reported, not parsed.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no manifest files (*.yaml, *.yml) found")]
    NoManifests { path: String },
}

/// Loads `path`: a directory (recursively, `*.yaml`/`*.yml`, hidden entries skipped), a single
/// file, or `-` for standard input.
pub fn load_path(path: &Path) -> Result<(SourceSet, Vec<Diagnostic>), LoadError> {
    let mut sources = SourceSet::new();
    let mut diags = Vec::new();
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| LoadError::Io {
                path: "<stdin>".into(),
                source,
            })?;
        add_bytes(
            &mut sources,
            &mut diags,
            "<stdin>".into(),
            bytes,
            Origin::Memory,
        );
        return Ok((sources, diags));
    }
    let display = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: display.clone(),
        },
        _ => LoadError::Io {
            path: display.clone(),
            source,
        },
    })?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        collect_manifest_files(path, &mut files).map_err(|source| LoadError::Io {
            path: display.clone(),
            source,
        })?;
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(LoadError::NoManifests { path: display });
    }
    sources.reserve_exact(files.len());
    for file in files {
        sources.add(match file.into_os_string().into_string() {
            Ok(mut utf8) => {
                utf8.shrink_to_fit();
                SourceFile::unread(utf8, Origin::WorkTree)
            }
            Err(other) => {
                let file = PathBuf::from(other);
                SourceFile::unread(file.display().to_string(), Origin::Path(file.into()))
            }
        });
    }
    Ok((sources, diags))
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Adds one file's bytes, reporting size and encoding problems instead of parsing them.
/// `origin` is where its text can be read again (see [`restore_texts`]).
pub fn add_bytes(
    sources: &mut SourceSet,
    diags: &mut Vec<Diagnostic>,
    path: String,
    bytes: Vec<u8>,
    origin: Origin,
) {
    let id = sources.add(SourceFile::unread(path, origin));
    diags.extend(accept_bytes(sources, id, bytes));
}

/// Reads the texts of the files among `ids` not read yet (see [`SourceFile::unread`]), from
/// the work tree or the git blob: a large tree is read a chunk at a time as it is parsed.
/// An unreadable file becomes a diagnostic, as at load time.
pub fn read_texts(sources: &mut SourceSet, ids: &[FileId], diags: &mut Vec<Diagnostic>) {
    let mut repository: Option<(std::sync::Arc<std::path::Path>, git2::Repository)> = None;
    for &id in ids {
        let file = sources.file(id);
        if !file.is_unread() {
            continue;
        }
        let read = match &file.origin {
            Origin::WorkTree => read_limited(Path::new(&file.path)).map_err(|e| e.to_string()),
            Origin::Path(path) => read_limited(path).map_err(|e| e.to_string()),
            Origin::GitBlob {
                repository: at,
                blob,
            } => {
                if repository.as_ref().is_none_or(|(open, _)| open != at) {
                    repository = git2::Repository::open(at).ok().map(|r| (at.clone(), r));
                }
                repository
                    .as_ref()
                    .and_then(|(_, repo)| crate::git::blob_bytes(repo, blob))
                    .ok_or_else(|| format!("cannot read git blob {blob}"))
            }
            Origin::Memory => Ok(Vec::new()),
        };
        match read {
            Ok(bytes) => diags.extend(accept_bytes(sources, id, bytes)),
            Err(err) => {
                let shown = file.path.clone();
                sources.file_mut(id).set_unparsable(String::new());
                diags.push(
                    Diagnostic::error(
                        Code::ReadFailed,
                        Loc::file_start(id),
                        format!("cannot read {shown}: {err}"),
                    )
                    .with_help("check the file's permissions"),
                );
            }
        }
    }
}

/// Gives file `id` its text, or keeps it for diagnostics only when it is too large or not
/// UTF-8 (the problem is returned).
fn accept_bytes(sources: &mut SourceSet, id: FileId, bytes: Vec<u8>) -> Option<Diagnostic> {
    let path = sources.file(id).path.clone();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        sources.file_mut(id).set_unparsable(String::new());
        return Some(
            Diagnostic::error(
                Code::FileTooLarge,
                Loc::file_start(id),
                format!(
                    "{path} is larger than {} MiB",
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            )
            .with_help(
                "split the manifests into several files (one per customer is the usual layout)",
            ),
        );
    }
    match utf8_text(bytes) {
        Ok(text) => {
            sources.file_mut(id).set_text(text);
            None
        }
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.into_bytes();
            // Keep the valid prefix so the diagnostic can show the line the bad byte is on.
            let mut prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            prefix.push(char::REPLACEMENT_CHARACTER);
            sources.file_mut(id).set_unparsable(prefix);
            Some(
                Diagnostic::error(
                    Code::NotUtf8,
                    Loc::new(id, valid, char::REPLACEMENT_CHARACTER.len_utf8()),
                    format!("{path} is not UTF-8 (invalid byte 0x{:02x} at byte offset {valid})", bytes[valid]),
                )
                .with_label("invalid UTF-8 starts here")
                .with_help("save the file as UTF-8 (manifests written on Windows are sometimes UTF-16 or Windows-1252)"),
            )
        }
    }
}

/// A file's text: UTF-8, without a byte order mark.
fn utf8_text(bytes: Vec<u8>) -> Result<String, std::string::FromUtf8Error> {
    let text = String::from_utf8(bytes)?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Reads back the released files (see [`SourceSet::release_texts`]) that `diagnostics` point
/// into, so each is shown with its text. A file that is gone or changed since it was parsed
/// gets an error of its own: its other diagnostics would point at the wrong text.
pub fn restore_texts(sources: &mut SourceSet, diagnostics: &mut Vec<Diagnostic>) {
    let mut changed = false;
    for id in sources.released_in(diagnostics) {
        let file = sources.file(id);
        let read = match &file.origin {
            Origin::WorkTree => read_limited(Path::new(&file.path)).ok(),
            Origin::Path(path) => read_limited(path).ok(),
            Origin::GitBlob { repository, blob } => crate::git::read_blob(repository, blob),
            Origin::Memory => None,
        };
        let path = file.path.clone();
        let restored = read
            .and_then(|bytes| utf8_text(bytes).ok())
            .is_some_and(|text| sources.restore(id, text));
        if !restored {
            changed = true;
            diagnostics.push(
                Diagnostic::error(
                    Code::ReadFailed,
                    Loc::file_start(id),
                    format!("{path} changed while it was being validated"),
                )
                .with_help("run the command again once the file is no longer being written"),
            );
        }
    }
    if changed {
        crate::diagnostic::sort(diagnostics);
    }
}

fn collect_manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_manifest_files(&path, out)?;
        } else if (file_type.is_file() || file_type.is_symlink() && path.is_file())
            && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
        {
            out.push(path);
        }
    }
    Ok(())
}
