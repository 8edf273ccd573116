//! Manifests from a git repository at any commit, branch or tag, without touching the work
//! tree (git2, local repositories only).

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::source::{Origin, SourceFile, SourceSet};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "{path} is not inside a git repository (needed for --ref and --changed-since): {message}"
    )]
    NoRepository { path: String, message: String },
    #[error("cannot resolve `{reference}` in {repo}: {message}")]
    BadReference {
        reference: String,
        repo: String,
        message: String,
    },
    #[error("`{path}` does not exist at {reference}")]
    NoSuchPath { path: String, reference: String },
    #[error("git: {0}")]
    Other(String),
}

fn other(e: git2::Error) -> GitError {
    GitError::Other(e.message().to_string())
}

/// The repository holding `path`, and `path` relative to its work tree.
fn open(path: &Path) -> Result<(git2::Repository, PathBuf), GitError> {
    let absolute = std::path::absolute(path).map_err(|e| GitError::Other(e.to_string()))?;
    let repo = git2::Repository::discover(&absolute).map_err(|e| GitError::NoRepository {
        path: path.display().to_string(),
        message: e.message().to_string(),
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| GitError::Other("bare repositories are not supported".into()))?;
    let canonical = absolute.canonicalize().unwrap_or(absolute);
    let root = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let relative = canonical
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok((repo, relative))
}

/// The full commit id `reference` names (a commit, branch, tag, `HEAD~2`, ...).
pub fn resolve_commit(path: &Path, reference: &str) -> Result<String, GitError> {
    let (repo, _) = open(path)?;
    let commit = peel(&repo, reference)?;
    Ok(commit.id().to_string())
}

fn peel<'r>(repo: &'r git2::Repository, reference: &str) -> Result<git2::Commit<'r>, GitError> {
    let bad = |e: git2::Error| GitError::BadReference {
        reference: reference.to_string(),
        repo: repo
            .workdir()
            .map_or_else(String::new, |p| p.display().to_string()),
        message: e.message().to_string(),
    };
    repo.revparse_single(reference)
        .and_then(|o| o.peel_to_commit())
        .map_err(bad)
}

/// The commit checked out at `path`, when it is in a repository with a commit.
pub fn head_commit(path: &Path) -> Option<String> {
    let (repo, _) = open(path).ok()?;
    repo.head()
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id().to_string())
}

/// Manifests under `path` as they are at `reference`: files named `REF:relative/path`.
pub fn load_at(
    path: &Path,
    reference: &str,
) -> Result<(SourceSet, Vec<Diagnostic>, String), GitError> {
    let (repo, relative) = open(path)?;
    let commit = peel(&repo, reference)?;
    let tree = commit.tree().map_err(other)?;
    let short = &commit.id().to_string()[..12];
    let mut sources = SourceSet::new();
    let object = if relative.as_os_str().is_empty() {
        tree.into_object()
    } else {
        tree.get_path(&relative)
            .and_then(|entry| entry.to_object(&repo))
            .map_err(|_| GitError::NoSuchPath {
                path: relative.display().to_string(),
                reference: reference.to_string(),
            })?
    };
    let mut files: Vec<(String, git2::Oid)> = Vec::new();
    match object.kind() {
        Some(git2::ObjectType::Blob) => {
            files.push((relative.display().to_string(), object.id()));
        }
        _ => {
            let subtree = object.peel_to_tree().map_err(other)?;
            collect(&repo, &subtree, &relative, &mut files)?;
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let repository: std::sync::Arc<Path> = repo.path().into();
    // Blobs are read as they are parsed (`load::read_texts`), a chunk at a time.
    let diags = Vec::new();
    sources.reserve_exact(files.len());
    for (name, oid) in files {
        let origin = Origin::GitBlob {
            repository: repository.clone(),
            blob: oid.to_string().into_boxed_str(),
        };
        sources.add(SourceFile::unread(format!("{short}:{name}"), origin));
    }
    Ok((sources, diags, commit.id().to_string()))
}

/// A blob's bytes, read again for a diagnostic (see `load::restore_texts`); None when the
/// repository or the blob cannot be read.
pub fn read_blob(repository: &Path, blob: &str) -> Option<Vec<u8>> {
    let repo = git2::Repository::open(repository).ok()?;
    blob_bytes(&repo, blob)
}

/// A blob's bytes from an open repository.
pub fn blob_bytes(repo: &git2::Repository, blob: &str) -> Option<Vec<u8>> {
    let oid = git2::Oid::from_str(blob).ok()?;
    Some(repo.find_blob(oid).ok()?.content().to_vec())
}

fn collect(
    repo: &git2::Repository,
    tree: &git2::Tree,
    prefix: &Path,
    out: &mut Vec<(String, git2::Oid)>,
) -> Result<(), GitError> {
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = prefix.join(name);
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let sub = entry
                    .to_object(repo)
                    .and_then(|o| o.peel_to_tree())
                    .map_err(other)?;
                collect(repo, &sub, &path, out)?;
            }
            Some(git2::ObjectType::Blob) if name.ends_with(".yaml") || name.ends_with(".yml") => {
                out.push((path.display().to_string(), entry.id()));
            }
            _ => {}
        }
    }
    Ok(())
}
