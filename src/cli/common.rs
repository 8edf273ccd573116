//! Pieces several commands share: where manifests and state are, loading and checking them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::progress::Progress;
use crate::cli::{CliError, Context, render};
use crate::model::DesiredModel;
use crate::ops::{
    GraphSettings, GraphTarget, ManifestSource, Manifests, Note, Phase, Reporter, Selection,
    Settings,
};

/// Where the manifests and the state are.
#[derive(clap::Args, Debug, Clone)]
pub struct Location {
    /// Manifest directory (searched recursively), a single file, or - for stdin.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// State file [default: PATH/.tenantform/state.json].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE")]
    pub state: Option<PathBuf>,
    /// Read the manifests as they are at this git commit, branch or tag (the work tree is not
    /// touched).
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
}

/// Which tenants a command works on (like Terraform's `-target`, but by customer).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TenantSelection {
    /// Only this tenant (its stable name; repeat for several). Others are left as they are.
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Only tenants whose labels match, e.g. 'tier in (gold, silver), !legacy'.
    #[arg(long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Only shard K of N of the tenants selected otherwise, e.g. 2/4: N CI jobs, one per
    /// shard, split a fleet with no overlap and no gap (by a hash of each tenant's name, so a
    /// tenant keeps its shard from run to run). Per-tenant state locks keep overlapping runs
    /// safe.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::ops::Shard>,
}

impl TenantSelection {
    pub fn to_ops(&self) -> Selection {
        Selection {
            tenants: self.tenants.clone(),
            selector: self.selector.clone(),
            shard: self.shard,
        }
    }
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

pub use crate::ops::settings::default_state_path;

impl Location {
    pub fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| default_state_path(&self.path))
    }

    /// The state backend `--state` names (a file or a `postgres://` database).
    pub fn store(
        &self,
    ) -> Result<Box<dyn crate::state::StateStore + Send + Sync>, crate::state::StateError> {
        crate::ops::settings::open_store(&self.state_path())
    }
}

/// Loads and validates manifests (from the work tree, or at `reference` in git); diagnostics
/// go to stderr, errors stop the command.
pub fn load_manifests(
    cx: &Context,
    path: &Path,
    reference: Option<&str>,
    strict: bool,
) -> Result<Manifests, CliError> {
    let source = ManifestSource {
        path: path.to_path_buf(),
        reference: reference.map(str::to_string),
    };
    Ok(crate::ops::workspace::load_manifests(
        &source,
        strict,
        &CliReporter::new(cx),
    )?)
}

/// How to reach Entra.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Use an embedded Graph sandbox instead of Microsoft Graph (no Azure account needed). Its
    /// directory is kept in `sandbox-world.json` beside the state file between runs.
    #[arg(long)]
    pub sandbox: bool,
    /// Faults for the sandbox, e.g. latency=50ms,throttle=0.1,replication=2s (see `sandbox serve --help`).
    #[arg(long, value_name = "SPEC", requires = "sandbox", value_parser = crate::sandbox::Faults::parse)]
    pub sandbox_faults: Option<crate::sandbox::Faults>,
    /// Start the sandbox's directory from this fixture (e.g. examples/sandbox/fixture.yaml,
    /// with Foggy IT's people) when none is kept yet; tenants the manifests map and it lacks
    /// are added empty.
    #[arg(long, value_name = "FILE", requires = "sandbox")]
    pub sandbox_world: Option<PathBuf>,
    /// How many tenants are read (and applied) at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallelism: usize,
    /// The credential source to use instead of the default chain (client-secret,
    /// certificate, federated-token-file, github-actions, azure-pipelines, then
    /// managed-identity when its endpoint variables are set, then azure-cli when `az` is
    /// signed in). A picked source whose variables are missing is an error naming them;
    /// managed-identity asks IMDS (169.254.169.254) only when picked. `tenantform auth
    /// check` shows which source was used and why the others were not.
    #[arg(
        long,
        value_name = "SOURCE",
        env = "TENANTFORM_AUTH",
        value_parser = ["client-secret", "certificate", "federated-token-file", "github-actions", "azure-pipelines", "managed-identity", "azure-cli"]
    )]
    pub auth: Option<String>,
    /// Admin-consent redirect URI shown in "consent needed" links.
    #[arg(
        long,
        value_name = "URL",
        env = "TENANTFORM_CONSENT_REDIRECT_URI",
        default_value = "https://localhost/consent-done"
    )]
    pub consent_redirect_uri: String,
}

/// How Entra is taken into a plan.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanningArgs {
    /// Do not read Entra: plan only the MSP-side records (tenants, organizations, MSP roles).
    /// Guests and directory roles are neither planned nor checked, and the output says so.
    #[arg(long, conflicts_with = "sandbox")]
    pub offline: bool,
    /// An object applied less than this long ago that Entra does not show yet is pending
    /// (replication), not missing; after it, it is missing and created again.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub replication_window: Duration,
    /// Archive contacts even when a run would archive more than 10% (and at least 5) of a
    /// tenant's: without it such a tenant's archives are held back, with the numbers, in
    /// case a rule or a read went wrong.
    #[arg(long)]
    pub allow_mass_removal: bool,
}

pub use crate::ops::{Connection, Need};

impl GraphArgs {
    /// The resolved Graph settings (credentials read from the environment here, once).
    pub fn to_ops(&self) -> GraphSettings {
        GraphSettings {
            target: GraphTarget::resolve(
                self.sandbox.then(|| {
                    (
                        self.sandbox_faults.clone().unwrap_or_default(),
                        self.sandbox_world.clone(),
                    )
                }),
                |k| match k {
                    "TENANTFORM_AUTH" => self.auth.clone(),
                    _ => std::env::var(k).ok(),
                },
            ),
            parallelism: self.parallelism,
            consent_redirect_uri: self.consent_redirect_uri.clone(),
        }
    }
}

/// The settings of a run from its flags and the environment.
pub fn settings(location: &Location, graph: &GraphArgs, strict: bool) -> Settings {
    Settings {
        manifests: ManifestSource {
            path: location.path.clone(),
            reference: location.reference.clone(),
        },
        state_path: location.state_path(),
        graph: graph.to_ops(),
        strict,
        lock_timeout: Duration::ZERO,
        apply_step_delay: None,
        command_line: command_line(std::env::args()),
        actor: crate::state::Actor::current(),
    }
}

/// The command line as lock records and history show it, with the values of flags that carry
/// secrets (a webhook URL is a credential: Slack's and Teams' hold their token in the path)
/// cut to what may be shown.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let shown = |url: &str| {
        crate::notify::WebhookUrl::parse(url).map_or_else(
            |_| "<redacted>".to_string(),
            |u| format!("{}/<redacted>", u.origin()),
        )
    };
    let mut out: Vec<String> = Vec::new();
    let mut secret_next = false;
    for arg in args {
        if secret_next {
            out.push(shown(&arg));
            secret_next = false;
        } else if arg == "--notify" {
            out.push(arg);
            secret_next = true;
        } else if let Some(url) = arg.strip_prefix("--notify=") {
            out.push(format!("--notify={}", shown(url)));
        } else {
            out.push(arg);
        }
    }
    out.join(" ")
}

/// The day findings are judged on: `--today` when given (tests), else today in UTC.
pub fn today_or(given: Option<jiff::civil::Date>) -> jiff::civil::Date {
    given.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    })
}

/// Connects for a command that cannot do anything without Entra.
pub fn connect_required(
    args: &GraphArgs,
    catalog: &DesiredModel,
    state_path: &Path,
    command: &str,
) -> Result<Connection, CliError> {
    let location = Location {
        path: PathBuf::from("."),
        state: Some(state_path.to_path_buf()),
        reference: None,
    };
    let settings = settings(&location, args, false);
    Ok(crate::ops::workspace::connect_required(
        &settings, catalog, command,
    )?)
}

/// Progress and notes of a run on the terminal: a bar (or CI ticker) per phase, notes on
/// stderr unless `-q`, diagnostics rendered with their snippets.
pub struct CliReporter<'a> {
    cx: &'a Context,
    progress: std::sync::Mutex<Option<Progress>>,
}

impl<'a> CliReporter<'a> {
    pub fn new(cx: &'a Context) -> CliReporter<'a> {
        CliReporter {
            cx,
            progress: std::sync::Mutex::new(None),
        }
    }

    /// Runs `f` with the progress bar hidden (for printing whole lines).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        let progress = self.progress.lock().expect("progress lock");
        match progress.as_ref() {
            Some(p) => p.suspend(f),
            None => f(),
        }
    }

    fn quiet(&self) -> bool {
        self.cx.verbosity == crate::cli::progress::Verbosity::Quiet
    }
}

impl Reporter for CliReporter<'_> {
    fn diagnostics(
        &self,
        sources: &crate::source::SourceSet,
        diagnostics: &[crate::diagnostic::Diagnostic],
    ) {
        // Quiet runs show errors only.
        let shown: Vec<crate::diagnostic::Diagnostic> = diagnostics
            .iter()
            .filter(|d| !self.quiet() || d.is_error())
            .cloned()
            .collect();
        eprint!(
            "{}",
            render::render_diagnostics(sources, &shown, self.cx.color)
        );
    }

    fn note(&self, note: &Note) {
        let line = match note {
            Note::RecoveredChanges { changes, store } if !self.quiet() => format!(
                "note: {changes} changes from an interrupted apply were recovered from {store}; the next apply records them"
            ),
            Note::RecordingRecovered { changes, store } => format!(
                "Recovered {changes} changes from an interrupted apply; recording them in {store} first."
            ),
            Note::Replanning { tenants } => format!(
                "{} changed while this apply waited for {}; planning {} again.",
                crate::render::terminal_safe(&tenants.join(", ")),
                if tenants.len() == 1 {
                    "its lock"
                } else {
                    "their locks"
                },
                if tenants.len() == 1 { "it" } else { "them" },
            ),
            Note::ChangedSince {
                base,
                changed,
                total,
            } if !self.quiet() => {
                format!("--changed-since {base}: {changed} of {total} tenants changed")
            }
            _ => return,
        };
        self.suspend(|| eprintln!("{}", crate::render::terminal_safe(&line)));
    }

    fn phase_started(&self, phase: Phase, tenants: usize) {
        let what = match phase {
            Phase::ReadingEntra => "Reading Entra",
            Phase::Planning => "Planning",
            Phase::Applying => "Applying",
            Phase::Exporting => "Exporting",
        };
        *self.progress.lock().expect("progress lock") =
            Some(Progress::new(what, tenants, self.cx.verbosity));
    }

    fn phase_grew(&self, _phase: Phase, more: usize) {
        if let Some(p) = self.progress.lock().expect("progress lock").as_ref() {
            p.add_total(more);
        }
    }

    fn tenant_done(&self, _phase: Phase, failed: bool) {
        if let Some(p) = self.progress.lock().expect("progress lock").as_ref() {
            p.tenant_done(failed);
        }
    }

    fn phase_finished(&self, _phase: Phase) {
        if let Some(mut p) = self.progress.lock().expect("progress lock").take() {
            p.finish();
        }
    }
}

/// After a live report (`licenses`, `secure-score`): notes the selected tenants with nothing to
/// read, names each tenant that could not be read with why, and gives the exit code: 1 when
/// any could not be read (a report that left tenants out is not a success), else 0.
pub fn report_unread(
    unmapped: &[String],
    failures: &[(String, crate::outcome::Failure)],
    read: usize,
) -> u8 {
    use crate::render::terminal_safe;
    for name in unmapped {
        eprintln!(
            "note: {} has no Microsoft tenant id: nothing to read",
            terminal_safe(name)
        );
    }
    if failures.is_empty() {
        return crate::cli::exit::OK;
    }
    eprintln!(
        "error: {} of {} tenants could not be read:",
        failures.len(),
        failures.len() + read
    );
    for (name, failure) in failures {
        eprintln!(
            "  {}: {}",
            terminal_safe(name),
            terminal_safe(&failure.describe())
        );
    }
    crate::cli::exit::ERROR
}

#[cfg(test)]
mod command_line_tests {
    #[test]
    fn a_webhook_url_never_reaches_lock_records_or_history() {
        let line = super::command_line(
            [
                "tenantform",
                "drift",
                "--notify",
                "https://hooks.slack.com/services/T0/B0/SECRET",
                "--notify=https://psa.example/hook?token=SECRET",
                "tenants",
            ]
            .map(String::from),
        );
        assert!(!line.contains("SECRET"), "{line}");
        assert_eq!(
            line,
            "tenantform drift --notify https://hooks.slack.com/<redacted> --notify=https://psa.example/<redacted> tenants"
        );
    }
}
