//! The command line: clap types -> resolved settings -> thin command functions over the library.
//!
//! This is the only module that prints or decides exit codes.

mod access;
mod apply;
mod auth;
mod common;
mod consent;
mod contacts;
mod customers;
mod drift;
mod export;
mod licences;
mod notify;
pub(crate) mod plan;
pub mod progress;
mod render;
mod report;
mod roles;
mod sandbox;
mod schema;
mod secure_score;
mod state;
mod sync;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes shared by every command (CI conventions: 2 means "changes" or "drift").
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` with changes; `drift` with drift.
    pub const CHANGES: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "tenantform",
    version,
    about = "Declarative GitOps for MSPs: tenant mappings, organizations, guest users and roles across many Entra ID tenants",
    long_about = "tenantform reads YAML manifests that declare, for every customer, the tenant mapping, \
its billing organizations, the MSP engineers invited as guests and their roles; it checks them, \
plans the changes against Microsoft Entra and its own state, and applies them when asked.",
    after_help = "Examples:\n  tenantform validate examples/foggy-it\n  tenantform validate --output json manifests/ | jq .summary\n  cat customer.yaml | tenantform validate -\n  tenantform plan --out plan.tfp && tenantform apply plan.tfp\n  tenantform access --tenant foggy-it\n  tenantform schema > manifest.schema.json\n\nExit codes: 0 success, 2 changes or drift (plan --detailed-exitcode, drift), 1 any error: invalid\nmanifests, bad usage, missing credentials, or any tenant that was not read, planned or applied\n(even when other tenants have changes). Without credentials use --sandbox, or --offline for\nMSP-side records only."
)]
pub struct Cli {
    /// When to use colors: auto (only on a terminal, and never when NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// More detail on stderr: -v per-tenant steps, -vv also every Graph request (method, path,
    /// status, duration, request-id; never a token or secret).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Only errors and the final summary.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check manifests and report every problem with file:line:column.
    #[command(
        long_about = "Load every *.yaml / *.yml file under PATH (or one file, or - for stdin), check the \
syntax, fields, names, references, GUIDs, emails, URLs, role names and selectors, and report every \
problem at once, each with a stable code (TF…), the offending text and a hint.\n\n\
Exit 0 when valid (warnings allowed unless --strict), 1 when any error was found.",
        after_help = "Examples:\n  tenantform validate                      # manifests in the current directory\n  tenantform validate customers/ --strict  # warnings fail too\n  tenantform validate --output json . > diagnostics.json"
    )]
    Validate(validate::Args),
    /// Show what apply would change: create, update, delete, attribute by attribute.
    #[command(
        long_about = "Compare the manifests with stored state and live Entra and print the changes apply \
would make, each with its reason (new, changed, renamed or removed in manifests, changed or missing \
in Entra). Nothing is changed.\n\n\
Deletes are listed as blocked unless --allow-delete is given. Every tenant ends with an outcome \
(changes, nothing to do, or failed with its cause); any failed tenant makes the exit code 1.",
        after_help = "Examples:\n  tenantform plan examples/foggy-it\n  tenantform plan --output markdown > plan.md        # pull-request comment\n  tenantform plan --out plan.tfp && tenantform apply plan.tfp\n  tenantform plan --detailed-exitcode                # exit 2 when there are changes\n  AZURE_CLIENT_ID=<app> tenantform plan --auth azure-cli --tenant acme   # as a person: also the consent acme needs\n\nSigned in as a person (--auth azure-cli, e.g. an MSP engineer with GDAP roles) with AZURE_CLIENT_ID\nnaming tenantform's app, the plan starts with the consent each tenant still needs: the app's\nservice principal (consent.<tenant>) and one Microsoft Graph permission per need\n(consent.<tenant>.<Permission>), each with why."
    )]
    Plan(plan::Args),
    /// Carry out a plan: computed now, or saved with `plan --out`.
    #[command(
        long_about = "Apply the manifests (or exactly a saved plan) and record every change in state as it \
is made. On a terminal it asks for confirmation; without one it refuses unless --auto-approve. A \
saved plan is refused when state or the manifests changed since it was made.",
        after_help = "Examples:\n  tenantform apply examples/foggy-it\n  tenantform apply --auto-approve plan.tfp          # CI, after review\n  tenantform apply --allow-delete --lock-timeout 2m\n  AZURE_CLIENT_ID=<app> tenantform apply --auth azure-cli --tenant acme   # consent for acme through GDAP\n\nSigned in as a person with Cloud Application Administrator and Privileged Role Administrator in\na customer (GDAP), apply first consents tenantform's app there: it creates the service principal\nand grants the Microsoft Graph permissions the manifests' kinds need, then applies the rest."
    )]
    Apply(apply::Args),
    /// Report drift: differences between the manifests and state and Entra, with causes.
    #[command(
        long_about = "Compare live Entra and stored state with the manifests (at --ref, or the work tree) \
and report every difference with its cause: changed in Entra, missing in Entra, unmanaged object \
found, invitation pending too long, manifests not applied, consent needed. Nothing is changed. \
DriftException manifests accept a deviation until their expiry date; accepted ones are listed apart.\n\n\
Tenants with a TenantPolicy also have their licences and Secure Score read (only those tenants) \
and each promise not kept is drift with its numbers (policy-breach, addressed \
policy.<tenant>.<expectation>); a tenant whose policy cannot be checked fails the run.\n\n\
Exit 0 no drift, 2 drift, 1 error.",
        after_help = "Examples:\n  tenantform drift --sandbox examples/foggy-it\n  tenantform drift --ref origin/main --output junit > drift.xml\n  tenantform drift --output markdown --pending-days 7"
    )]
    Drift(drift::Args),
    /// Sync end users: contacts from each tenant's Entra users, by its EndUserSync rules.
    #[command(
        long_about = "Plan and apply contacts only, as one job: each tenant with an EndUserSync is read from its stored delta link (users/delta; the whole directory on the first run, after the rules that choose users change, or when Graph refuses the link), contacts are created, updated and archived with the reason, and the tenant's position is recorded. No other kind is read or changed, and no approval is asked: the rules are reviewed in git, and a round that would archive more than 10% (and at least 5) of a tenant's contacts is held back unless --allow-mass-removal. A tenant whose users could not be read keeps its contacts and fails the round (exit 1).

With --every it keeps running (a round every DURATION, never two at once; SIGTERM or Ctrl-C stops between changes); per-tenant state locks keep it from overlapping an apply or another sync.",
        after_help = "Examples:
  tenantform sync customers/                       # one round (a scheduled CI job)
  tenantform sync customers/ --every 1h --output json
  tenantform sync customers/ --tenant foggy-it --allow-mass-removal"
    )]
    Sync(sync::Args),
    /// Write manifests from live tenants (onboarding), then `import` them.
    #[command(
        after_help = "Examples:\n  tenantform export --all-customers --out customers/\n  tenantform export --tenant-id 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b --out customers/\n  tenantform import customers/ && tenantform plan customers/   # no changes"
    )]
    Export(export::Args),
    /// Record existing guests and role assignments as owned, changing nothing in Entra.
    #[command(
        long_about = "Plan the manifests against Entra and record what already exists (guests, directory role \
assignments) as owned in state, with the MSP-side records; nothing in Entra is created, changed or \
deleted. After `export`, the next plan is empty.",
        after_help = "Example:\n  tenantform export --all-customers --out customers/ && tenantform import customers/"
    )]
    Import(apply::Args),
    /// List the partner's customers (`/contracts`) and which are mapped to tenants.
    #[command(
        after_help = "Examples:\n  tenantform customers customers/ --search foggy\n  tenantform customers customers/ --unmapped --output json"
    )]
    Customers(customers::Args),
    /// Print admin-consent URLs to send customers' administrators.
    #[command(
        name = "consent-url",
        after_help = "Examples:\n  tenantform consent-url customers/ --tenant foggy-it\n  tenantform consent-url customers/ --all-unconsented --output json"
    )]
    ConsentUrl(consent::Args),
    /// Check credentials: a token and a Graph read for every tenant.
    Auth(auth::Args),
    /// Inspect or edit stored state (list, show, mv, rm, unlock).
    State(state::Args),
    /// Who can switch into which customer (MSP roles recorded in state).
    #[command(
        after_help = "Examples:\n  tenantform access --user dana.whitfield@contoso-msp.example\n  tenantform access --tenant foggy-it --output json"
    )]
    Access(access::Args),
    /// List contacts: the MSP-side records synced from customers' Entra users.
    #[command(
        long_about = "List the contacts recorded in state, tenant by tenant (sorted by tenant, organization, \
name, then user id). A contact is the MSP's record of one of a customer's Entra users: an \
EndUserSync manifest says which users to keep and into which organization, and `apply` \
creates, updates and archives the contacts from what Entra reports of those users. A contact is keyed by the \
user's object id; when the user leaves the rules, is disabled or deleted, the contact is archived \
with the date and reason, never dropped. Nothing is read from Entra here.\n\n\
By default only active contacts; --archived only archived ones, --all both. Names come from \
customers' directories: the table escapes control characters, CSV defuses cells a spreadsheet \
would run as formulas (a leading ', per OWASP), JSON keeps every value exactly.\n\n\
Exit 0 (also when nothing matches), 1 on an error: unreadable state, an unknown tenant or \
organization.",
        after_help = "Examples:\n  tenantform contacts examples/foggy-it\n  tenantform contacts --tenant foggy-it --organization foggy-boston\n  tenantform contacts --all --output csv > contacts.csv\n  tenantform contacts --archived --output json | jq '.[] | {name, archivedReason}'\n  tenantform contacts --state 'postgres://tenantform@db.example/tenantform' --tenant foggy-it"
    )]
    Contacts(contacts::Args),
    /// Licences by tenant: seats by product, and what to act on (read live from Entra).
    #[command(
        long_about = "Read each tenant's licences from Microsoft Graph (subscribedSkus, directory/subscriptions, \
and its users' and soft-deleted users' licences, in one $batch a tenant) and print them by product: \
purchased, in grace (expired, not renewed), suspended, assigned, available (negative: \
over-assigned) and paid seats nobody holds, with the next renewal or expiry. Under each tenant, \
the findings: paid licences on disabled or deleted users, unassigned paid seats, \
over-assignment, assigned seats living on a grace period, assignment errors, subscriptions \
and trials ending soon. Graph has no prices: a SKU counts as paid unless all its subscriptions \
are trials or Microsoft names it free, a trial or viral. Needs Organization.Read.All and \
User.Read.All.\n\nExit 0 when every selected tenant was read (findings are information, \
not errors); 1 when any could not be, naming each with its cause.",
        after_help = "Examples:\n  tenantform licenses --sandbox examples/foggy-it\n  tenantform licenses customers/ --output csv > licences.csv\n  tenantform licenses customers/ --tenant foggy-it --output json | jq '.[].findings'"
    )]
    Licenses(licences::Args),
    /// Secure Score by tenant: now, its change over 7, 30 and 90 days, the top open controls,
    /// and the sign-in posture (MFA registration, admins without MFA, security defaults).
    #[command(
        name = "secure-score",
        long_about = "Read each tenant's Secure Score from Microsoft Graph (security/secureScores, the last 90 \
days, and secureScoreControlProfiles, in one $batch a tenant) and print the latest score, its \
change in percentage points over 7, 30 and 90 days, and the open controls worth the most \
points; then the fleet's mean. A tenant without Secure Score records shows \"no records\". \
Each run adds the days not stored yet to the tenant's history in state (idempotent), so the \
trend reaches back beyond Microsoft's 90 days (JSON: `since`, `changeAll`, `daysKept`).\n\n\
Beside the score, in a second $batch, each tenant's sign-in posture: the share of its enabled \
members registered for MFA and the admins among them who are not \
(reports/authenticationMethods/userRegistrationDetails), and whether security defaults are \
on (policies/identitySecurityDefaultsEnforcementPolicy). The registration report needs \
Microsoft Entra ID P1 or P2 in the tenant: without it the tenant shows \"not available\", \
which is no error. Needs SecurityEvents.Read.All, AuditLog.Read.All and Policy.Read.All.\n\n\
Exit 0 when every selected tenant was read; 1 when any could not be (a missing permission \
among them), naming each with its cause.",
        after_help = "Examples:\n  tenantform secure-score --sandbox examples/foggy-it\n  tenantform secure-score customers/ --output csv > scores.csv\n  tenantform secure-score customers/ --tenant foggy-it --top 10 --output json"
    )]
    SecureScore(secure_score::Args),
    /// The fleet report: one HTML page a service manager opens (overview, Secure Score trends,
    /// licences, sign-in security, access), or its data as JSON.
    #[command(
        long_about = "Read the fleet and write one self-contained HTML report (styles, script and charts \
inline; the page fetches nothing, and its Content-Security-Policy lets only its own script \
run). It checks drift as `drift` does (each tenant's read status, consent, drift findings, \
pending invitations, privileged access nobody declared), then reads each tenant's licences, \
Secure Score and sign-in posture as `licenses` and `secure-score` do, keeps the Secure Score \
history in state (beyond Microsoft's 90 days) and takes MSP role grants and last applies from \
state.\n\nSections: overview; Secure Score (the fleet's trend, tenants lowest and falling \
first); licences (seats by SKU, waste, over-assignment, expiries, seats by organization); \
sign-in security; access (who can switch into which tenant, pending invitations, undeclared \
privileged access); a section per tenant, linkable as #tenant-<name>. Tables sort and filter \
with JavaScript and read the same without it. Names from customers' directories are \
escaped.\n\nExit 0 when every selected tenant was read (drift and findings are the report's \
content; gate on `drift` for them); 1 when any could not be, naming each with its cause; \
the report is still written and shows them as not read.",
        after_help = "Examples:\n  tenantform report --sandbox examples/foggy-it --out fleet.html\n  tenantform report customers/ --out /srv/reports/fleet.html --notify https://psa.example/hooks/tenantform\n  tenantform report customers/ --output json --out - | jq '.overview'"
    )]
    Report(report::Args),
    /// Print the JSON Schema of the manifest format (for editors and CI checks).
    #[command(
        after_help = "Editors with the YAML language server pick it up from a first line like:\n  # yaml-language-server: $schema=../schemas/manifest.schema.json"
    )]
    Schema(schema::Args),
    /// List the Entra built-in directory roles that manifests may name.
    Roles(roles::Args),
    /// Run the embedded Microsoft Graph emulator (no Azure account needed).
    Sandbox(sandbox::Args),
    /// Write a synthetic manifest tree of N tenants (for trying tenantform at scale).
    #[command(hide = true)]
    GenerateFleet(GenerateFleetArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How data-producing commands print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// Machine-readable JSON (stable, versioned).
    Json,
}

#[derive(clap::Args, Debug)]
struct GenerateFleetArgs {
    /// How many tenants (about ten documents each).
    #[arg(long)]
    tenants: usize,
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Guests declared per tenant (the benchmarks' large fleets use 20); without it, three per
    /// tenant and two fleet-wide engineers targeted by selectors.
    #[arg(long)]
    guests_per_tenant: Option<usize>,
    /// Directory roles per guest (with --guests-per-tenant).
    #[arg(long, default_value_t = 1, requires = "guests_per_tenant")]
    roles_per_guest: usize,
    /// An EndUserSync per tenant (offices routed to its organizations), for a sandbox started
    /// with `sandbox serve --tenants N --users M --profiles`.
    #[arg(long)]
    end_user_sync: bool,
}

fn generate_fleet(args: GenerateFleetArgs) -> Result<u8, CliError> {
    let shape = match args.guests_per_tenant {
        Some(guests) => crate::synthetic::Shape {
            guests_per_tenant: guests,
            roles_per_guest: args.roles_per_guest,
            fleet_wide_guests: false,
            end_user_sync: args.end_user_sync,
        },
        None => crate::synthetic::Shape {
            end_user_sync: args.end_user_sync,
            ..crate::synthetic::Shape::default()
        },
    };
    for file in crate::synthetic::fleet_shaped(args.tenants, shape) {
        let path = args.out.join(&file.path);
        let io = |source| CliError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("relative path has a parent")).map_err(io)?;
        std::fs::write(&path, file.text).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(exit::OK)
}

/// Errors that stop a command before it can report anything else.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the pipeline (manifests, state, Graph, credentials, a stale plan, ...).
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
    #[error("{0}")]
    Refused(String),
    /// A request the command line cannot make sense of (flags that do not go together).
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::state::StateError> for CliError {
    fn from(e: crate::state::StateError) -> Self {
        CliError::Ops(e.into())
    }
}

impl From<crate::load::LoadError> for CliError {
    fn from(e: crate::load::LoadError) -> Self {
        CliError::Ops(e.into())
    }
}

impl From<crate::git::GitError> for CliError {
    fn from(e: crate::git::GitError) -> Self {
        CliError::Ops(e.into())
    }
}

/// Settings every command receives, resolved from flags and the environment.
pub struct Context {
    /// Colors on stderr/stdout (decided once from --color, TTY and NO_COLOR).
    pub color: bool,
    /// `-q`, `-v`, `-vv`.
    pub verbosity: progress::Verbosity,
}

/// Where manifests come from when PATH is omitted.
pub fn default_manifest_path() -> PathBuf {
    PathBuf::from(".")
}

/// Benchmarks set TENANTFORM_PEAK_MEMORY_FILE: the process writes its own peak resident
/// memory (VmHWM, kB) there. Measured from outside, a child's peak can include its parent's
/// memory (Linux charges the parent's resident set to a vfork child at exec).
fn report_peak_memory() {
    let Some(path) = std::env::var_os("TENANTFORM_PEAK_MEMORY_FILE") else {
        return;
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        let _ = std::fs::write(path, kb.trim().trim_end_matches("kB").trim());
    }
}

/// Output to a closed pipe (`tenantform roles | head -1`) ends the process quietly with the
/// conventional status (141), as for any Unix tool, instead of a panic. Apply and import keep
/// the signal ignored: they treat a closed stdout as a request to stop between changes.
fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main() -> ExitCode {
    // clap exits with 2 on usage errors, which CI reads as "changes"; usage errors are 1 here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            });
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    let verbosity = progress::Verbosity::from_flags(cli.verbose, cli.quiet);
    verbosity.install_logging(color);
    let cx = Context { color, verbosity };
    if !matches!(
        cli.command,
        Command::Apply(_) | Command::Import(_) | Command::Sync(_)
    ) {
        default_sigpipe();
    }
    let result = match cli.command {
        Command::Validate(args) => validate::run(&cx, args),
        Command::Plan(args) => plan::run(&cx, args),
        Command::Apply(args) => apply::run(&cx, args),
        Command::Drift(args) => drift::run(&cx, args),
        Command::Sync(args) => sync::run(&cx, args),
        Command::Customers(args) => customers::run(&cx, args),
        Command::ConsentUrl(args) => consent::run(&cx, args),
        Command::Auth(args) => auth::run(&cx, args),
        Command::Export(args) => export::run(&cx, args),
        Command::Import(args) => apply::run_import(&cx, args),
        Command::State(args) => state::run(&cx, args),
        Command::Access(args) => access::run(&cx, args),
        Command::Contacts(args) => contacts::run(&cx, args),
        Command::Licenses(args) => licences::run(&cx, args),
        Command::SecureScore(args) => secure_score::run(&cx, args),
        Command::Report(args) => report::run(&cx, args),
        Command::Schema(args) => schema::run(&cx, args),
        Command::Roles(args) => roles::run(&cx, args),
        Command::GenerateFleet(args) => generate_fleet(args),
        Command::Sandbox(args) => sandbox::run(&cx, args),
    };
    report_peak_memory();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            render::print_error(&cx, &err);
            ExitCode::from(exit::ERROR)
        }
    }
}
