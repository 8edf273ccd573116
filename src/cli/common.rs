//! Pieces several commands share: where manifests and state are, loading and checking them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{CliError, Context, render};
use crate::load::load_path;
use crate::model::DesiredModel;
use crate::state::file::FileStateStore;
use crate::{Validation, validate_sources};

/// Where the manifests and the state are.
#[derive(clap::Args, Debug, Clone)]
pub struct Location {
    /// Manifest directory (searched recursively), a single file, or - for stdin.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// State file [default: PATH/.tenantform/state.json].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE")]
    pub state: Option<PathBuf>,
}

/// How long to wait for another writer's state lock.
#[derive(clap::Args, Debug, Clone)]
pub struct LockArgs {
    /// Wait this long for the state lock (e.g. 30s, 2m) before giving up.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration like 30s, 2m or 1h30m: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` is negative"))
}

/// The default state file for a manifest path: `.tenantform/state.json` beside the manifests.
pub fn default_state_path(manifests: &Path) -> PathBuf {
    let dir = if manifests == Path::new("-") {
        PathBuf::from(".")
    } else if manifests.is_file() {
        manifests
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        manifests.to_path_buf()
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    dir.join(".tenantform").join("state.json")
}

impl Location {
    pub fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| default_state_path(&self.path))
    }

    pub fn store(&self) -> FileStateStore {
        FileStateStore::new(self.state_path())
    }
}

/// Loads and validates manifests; diagnostics go to stderr, errors stop the command.
pub fn load_model(cx: &Context, path: &Path, strict: bool) -> Result<DesiredModel, CliError> {
    let (sources, load_diagnostics) = load_path(path)?;
    let Validation {
        model, diagnostics, ..
    } = validate_sources(&sources, load_diagnostics);
    eprint!(
        "{}",
        render::render_diagnostics(&sources, &diagnostics, cx.color)
    );
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 || (strict && warnings > 0) {
        return Err(CliError::InvalidManifests { errors, warnings });
    }
    Ok(model)
}

/// Writes a file atomically with owner-only permissions.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
