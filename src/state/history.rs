//! Apply history: every change tenantform made, kept for good, to answer "who gave this guest
//! Global Administrator, and from which commit?".
//!
//! Each applied (or failed) change is one [`HistoryEntry`]: when, who (the local user or the
//! CI run and actor), the manifests' commit, the plan and run ids, the address and the
//! attribute changes, and the outcome. Entries live in their change's partition (the catalog
//! for tenant and organization records, else the tenant's), appended under that partition's
//! lock, and are never rewritten: the state journal is dropped once written, history is not.
//!
//! History is written *before* the journal records the change it describes (the change was
//! already made outside tenantform when it is written), so a crash may leave a history entry
//! for a change state does not know yet (the next apply records it again, as an adoption),
//! never a change without its entry.
//!
//! Renames do not break the trail: a move is an entry with `from`, and [`select`] follows an
//! address (and a tenant) back through its former names, each up to the time of the move.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Partition, StateError};
use crate::plan::AttributeChange;

/// One change tenantform made (or tried to make), as `state history` shows it.
pub type HistoryEntry = HistoryRecord<'static>;

/// A [`HistoryEntry`] that may borrow its attribute changes (from the plan's action, while
/// an apply writes it: a create's entry lists its attributes, and copying them for each
/// contact of a first sync was a tenth of its time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord<'a> {
    /// RFC 3339 UTC time the change was made (or failed).
    pub at: String,
    /// The apply (or state edit) that made it: one id per run.
    pub run: String,
    /// The plan it carried out (`plan --out` files and plan JSON show the same id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub who: Actor,
    /// The git commit of the manifests, when they were read from a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The command that made it (`apply`, `import`, `state mv`, `state rm`).
    pub command: String,
    pub tenant: String,
    pub kind: String,
    pub address: String,
    /// The former address, for a move (a rename, or `state mv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub op: HistoryOp,
    /// Attribute-level changes: every attribute of a create (a contact's fields, without the
    /// `entra` snapshot that repeats them; the user's id is in the address), the changed ones
    /// of an update, what a delete removed.
    #[serde(default, skip_serializing_if = "<[AttributeChange]>::is_empty")]
    pub changes: Cow<'a, [AttributeChange]>,
    pub outcome: HistoryOutcome,
}

/// What kind of change an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryOp {
    Create,
    Update,
    Delete,
    /// An existing Entra object taken under management (`--adopt`, `import`, or an
    /// interrupted create found again).
    Adopt,
    /// A record marked archived, with when and why (a contact whose user left).
    Archive,
    /// Renamed in state only (`state mv`).
    Move,
    /// Forgotten by state only (`state rm`); nothing outside state changed.
    Forget,
}

impl HistoryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryOp::Create => "create",
            HistoryOp::Update => "update",
            HistoryOp::Delete => "delete",
            HistoryOp::Adopt => "adopt",
            HistoryOp::Archive => "archive",
            HistoryOp::Move => "move",
            HistoryOp::Forget => "forget",
        }
    }
}

/// How the change ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum HistoryOutcome {
    Applied,
    /// Not made: the cause and what was said.
    Failed {
        cause: crate::outcome::Cause,
        message: String,
    },
}

/// Who made a change: the person or CI identity, as their environment tells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The CI actor (GitHub login, Azure DevOps requester), else `user@host`.
    pub name: String,
    /// The CI run, when running in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiRun>,
}

/// A CI run that made changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiRun {
    /// `github-actions` or `azure-devops`.
    pub system: String,
    /// The run's page.
    pub url: String,
    /// The repository (GitHub) or project (Azure DevOps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The workflow (GitHub) or pipeline (Azure DevOps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

impl Actor {
    /// Who runs this process, from its environment (`lookup` is `std::env::var`, or a map in
    /// tests): GitHub Actions (`GITHUB_ACTIONS`, `GITHUB_ACTOR`, the run from `GITHUB_SERVER_URL`,
    /// `GITHUB_REPOSITORY`, `GITHUB_RUN_ID` and `GITHUB_RUN_ATTEMPT`), Azure DevOps (`TF_BUILD`,
    /// `BUILD_REQUESTEDFOR` with its e-mail, the run from `SYSTEM_TEAMFOUNDATIONCOLLECTIONURI`,
    /// `SYSTEM_TEAMPROJECT` and `BUILD_BUILDID`), else the local `user@host`.
    pub fn from_environment(lookup: &dyn Fn(&str) -> Option<String>, local: &str) -> Actor {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if get("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
            let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let repository = get("GITHUB_REPOSITORY");
            let run = get("GITHUB_RUN_ID").unwrap_or_default();
            let mut url = format!(
                "{}/{}/actions/runs/{run}",
                server.trim_end_matches('/'),
                repository.as_deref().unwrap_or("")
            );
            if let Some(attempt) = get("GITHUB_RUN_ATTEMPT") {
                url.push_str(&format!("/attempts/{attempt}"));
            }
            // The one who started this run (a re-run's starter, else the workflow's actor).
            let name = get("GITHUB_TRIGGERING_ACTOR")
                .or_else(|| get("GITHUB_ACTOR"))
                .unwrap_or_else(|| "unknown".into());
            return Actor {
                name,
                ci: Some(CiRun {
                    system: "github-actions".into(),
                    url,
                    repository,
                    workflow: get("GITHUB_WORKFLOW"),
                }),
            };
        }
        if get("TF_BUILD").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let collection = get("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI")
                .or_else(|| get("SYSTEM_COLLECTIONURI"))
                .unwrap_or_default();
            let project = get("SYSTEM_TEAMPROJECT");
            let build = get("BUILD_BUILDID").unwrap_or_default();
            let url = format!(
                "{}/{}/_build/results?buildId={build}",
                collection.trim_end_matches('/'),
                project.as_deref().unwrap_or("")
            );
            let name = match (get("BUILD_REQUESTEDFOR"), get("BUILD_REQUESTEDFOREMAIL")) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n,
                (None, Some(e)) => e,
                (None, None) => "unknown".into(),
            };
            return Actor {
                name,
                ci: Some(CiRun {
                    system: "azure-devops".into(),
                    url,
                    repository: project,
                    workflow: get("BUILD_DEFINITIONNAME"),
                }),
            };
        }
        Actor {
            name: local.to_string(),
            ci: None,
        }
    }

    /// This process's actor (the environment and the local user).
    pub fn current() -> Actor {
        let local = super::LockInfo::for_command(String::new()).who;
        Actor::from_environment(&|name| std::env::var(name).ok(), &local)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ci {
            None => write!(f, "{}", self.name),
            Some(ci) => write!(f, "{} ({} {})", self.name, ci.system, ci.url),
        }
    }
}

/// What an apply's history entries share: which run, which plan, who, from which commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    pub run: String,
    pub plan: Option<String>,
    pub who: Actor,
    pub commit: Option<String>,
    pub command: String,
}

impl Provenance {
    /// A new run's provenance.
    pub fn new(command: &str, plan: Option<String>, commit: Option<String>, who: Actor) -> Self {
        Provenance {
            run: uuid::Uuid::new_v4().to_string(),
            plan,
            who,
            commit,
            command: command.to_string(),
        }
    }

    /// An entry of this run (at the current time).
    #[allow(clippy::too_many_arguments)]
    pub fn entry<'a>(
        &self,
        tenant: &str,
        kind: &str,
        address: &str,
        from: Option<&str>,
        op: HistoryOp,
        changes: impl Into<Cow<'a, [AttributeChange]>>,
        outcome: HistoryOutcome,
    ) -> HistoryRecord<'a> {
        HistoryRecord {
            at: now_micros(),
            run: self.run.clone(),
            plan: self.plan.clone(),
            who: self.who.clone(),
            commit: self.commit.clone(),
            command: self.command.clone(),
            tenant: tenant.to_string(),
            kind: kind.to_string(),
            address: address.to_string(),
            from: from.map(str::to_string),
            op,
            changes: changes.into(),
            outcome,
        }
    }
}

/// The current time in RFC 3339 UTC with microseconds: entries of one second keep their order
/// across partitions (a move and the create before it, say).
fn now_micros() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Orders entries by time (parsed: a time without fractions sorts before one with them in
/// the same second), keeping the order they were read in for equal times.
pub fn sort_by_time(entries: &mut [HistoryEntry]) {
    entries.sort_by_cached_key(|e| e.at());
}

impl HistoryRecord<'_> {
    /// The partition whose history holds it: the catalog for fleet records (tenant and
    /// organization records), else its tenant's.
    pub fn partition(&self) -> Result<Partition, StateError> {
        let fleet = crate::resources::kind(&self.kind)
            .is_some_and(|k| k.scope == crate::resources::KindScope::Fleet);
        if fleet {
            Ok(Partition::Catalog)
        } else {
            Partition::tenant(&self.tenant)
        }
    }

    fn at(&self) -> Option<jiff::Timestamp> {
        self.at.parse().ok()
    }
}

/// Refuses an entry a journal of `partition` may not hold (a programming error).
pub(crate) fn check_entry_partition(
    partition: &Partition,
    entry: &HistoryRecord<'_>,
) -> Result<(), StateError> {
    let belongs = entry.partition()?;
    if belongs != *partition {
        return Err(StateError::WrongPartition {
            address: entry.address.clone(),
            belongs: belongs.to_string(),
            partition: partition.to_string(),
        });
    }
    Ok(())
}

/// What a backend reads of history: entries of these tenants (all, when `None`; fleet records
/// of a tenant count as its own), at or after `since`, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryRead {
    pub tenants: Option<BTreeSet<String>>,
    pub since: Option<jiff::Timestamp>,
    /// Only the catalog's history (tenant and organization records: where renames are).
    pub catalog_only: bool,
}

impl HistoryRead {
    pub fn only_catalog(self) -> Self {
        HistoryRead {
            catalog_only: true,
            ..self
        }
    }

    /// Whether `entry` is one this read asks for.
    pub fn wants(&self, entry: &HistoryEntry) -> bool {
        if let Some(tenants) = &self.tenants
            && !tenants.contains(&entry.tenant)
        {
            return false;
        }
        match (self.since, entry.at()) {
            (Some(since), Some(at)) => at >= since,
            _ => true,
        }
    }
}

/// `--since`: a date (`2026-11-01`, midnight UTC), an RFC 3339 time, or an age before `now`
/// (`90d`, `12h`, `30m`).
pub fn parse_since(text: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Some(unit) = text.chars().last().filter(|c| matches!(c, 'd' | 'h' | 'm'))
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        let seconds = match unit {
            'd' => n.checked_mul(86_400),
            'h' => n.checked_mul(3_600),
            _ => n.checked_mul(60),
        }
        .ok_or("too long ago")?;
        return now
            .checked_sub(jiff::SignedDuration::from_secs(seconds))
            .map_err(|e| e.to_string());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    text.parse::<jiff::Timestamp>().map_err(|_| {
        "not a date (2026-11-01), an RFC 3339 time (2026-11-01T09:00:00Z) or an age (90d, 12h, 30m)"
            .to_string()
    })
}

/// The history entry of a state edit (`state mv`, `state rm`) making `change` to `state`.
pub fn edit_entry(
    provenance: &Provenance,
    state: &super::State,
    change: &super::StateChange,
) -> HistoryEntry {
    use super::StateChange;
    let tenant_of = |address: &str, object: &super::StateObject| {
        crate::resources::kind(&object.kind)
            .map(|k| (k.tenant_of)(address, object))
            .unwrap_or_default()
    };
    match change {
        StateChange::Move {
            from,
            address,
            object,
        } => provenance.entry(
            &tenant_of(address, object),
            &object.kind,
            address,
            Some(from),
            HistoryOp::Move,
            Vec::new(),
            HistoryOutcome::Applied,
        ),
        StateChange::Put { address, object } => {
            let before = state.objects.get(address);
            let changes = object
                .attributes
                .iter()
                .filter(|(k, v)| before.and_then(|b| b.attributes.get(*k)) != Some(*v))
                .map(|(k, v)| AttributeChange {
                    path: k.clone(),
                    before: before.and_then(|b| b.attributes.get(k)).cloned(),
                    after: Some(v.clone()),
                })
                .collect::<Vec<_>>();
            provenance.entry(
                &tenant_of(address, object),
                &object.kind,
                address,
                None,
                HistoryOp::Update,
                changes,
                HistoryOutcome::Applied,
            )
        }
        StateChange::Delete { address } => {
            let object = state.objects.get(address);
            provenance.entry(
                &object.map(|o| tenant_of(address, o)).unwrap_or_default(),
                object.map_or("", |o| o.kind.as_str()),
                address,
                None,
                HistoryOp::Forget,
                Vec::new(),
                HistoryOutcome::Applied,
            )
        }
    }
}

/// What `state history` asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryFilter {
    pub tenant: Option<String>,
    pub address: Option<String>,
    pub since: Option<jiff::Timestamp>,
}

/// A name (an address or a tenant) and the time up to which entries under it count: a former
/// name counts until the move away from it (it may be reused later by something else).
#[derive(Clone, Debug, PartialEq)]
struct Alias {
    name: String,
    until: Option<jiff::Timestamp>,
}

/// The former names of `name`, following moves (`from` -> `to`) back in time: each former name
/// with the time of the move away from it. `moves` are (from, to, at).
fn aliases(name: &str, moves: &[(String, String, Option<jiff::Timestamp>)]) -> Vec<Alias> {
    let mut found = vec![Alias {
        name: name.to_string(),
        until: None,
    }];
    let mut i = 0;
    while i < found.len() {
        let current = found[i].clone();
        for (from, to, at) in moves.iter().rev() {
            let before_until = match (current.until, at) {
                (Some(until), Some(at)) => *at <= until,
                _ => true,
            };
            if *to == current.name && before_until && !found.iter().any(|a| a.name == *from) {
                found.push(Alias {
                    name: from.clone(),
                    until: *at,
                });
            }
        }
        i += 1;
    }
    found
}

fn within(aliases: &[Alias], name: &str, at: Option<jiff::Timestamp>) -> bool {
    aliases.iter().any(|a| {
        a.name == name
            && match (a.until, at) {
                (Some(until), Some(at)) => at <= until,
                _ => true,
            }
    })
}

/// The tenants a history read needs for `filter`: the tenant and its former names (from the
/// tenant records' moves in `catalog`, the catalog's history).
pub fn tenants_to_read(
    filter: &HistoryFilter,
    catalog: &[HistoryEntry],
) -> Option<BTreeSet<String>> {
    let tenant = filter.tenant.as_ref()?;
    let moves = tenant_moves(catalog);
    Some(
        aliases(tenant, &moves)
            .into_iter()
            .map(|a| a.name)
            .collect(),
    )
}

/// Tenant renames as (from, to, at) by tenant name.
fn tenant_moves(entries: &[HistoryEntry]) -> Vec<(String, String, Option<jiff::Timestamp>)> {
    entries
        .iter()
        .filter(|e| e.kind == "tenant" && e.outcome == HistoryOutcome::Applied)
        .filter_map(|e| {
            let from = e.from.as_deref()?.strip_prefix("tenant.")?;
            let to = e.address.strip_prefix("tenant.")?;
            Some((from.to_string(), to.to_string(), e.at()))
        })
        .collect()
}

/// The entries `filter` asks for, oldest first, following renames: an address's entries
/// under its former addresses, a tenant's under its former names, each up to the move.
pub fn select(mut entries: Vec<HistoryEntry>, filter: &HistoryFilter) -> Vec<HistoryEntry> {
    sort_by_time(&mut entries);
    let tenants = filter
        .tenant
        .as_ref()
        .map(|t| aliases(t, &tenant_moves(&entries)));
    let addresses = filter.address.as_ref().map(|address| {
        let moves: Vec<_> = entries
            .iter()
            .filter(|e| e.outcome == HistoryOutcome::Applied)
            .filter_map(|e| Some((e.from.clone()?, e.address.clone(), e.at())))
            .collect();
        aliases(address, &moves)
    });
    entries.retain(|e| {
        let at = e.at();
        if let Some(since) = filter.since
            && at.is_some_and(|at| at < since)
        {
            return false;
        }
        if let Some(tenants) = &tenants
            && !within(tenants, &e.tenant, at)
        {
            return false;
        }
        if let Some(addresses) = &addresses
            && !within(addresses, &e.address, at)
            && !e.from.as_deref().is_some_and(|f| within(addresses, f, at))
        {
            return false;
        }
        true
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(at: &str, tenant: &str, address: &str, from: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at: at.into(),
            run: "r".into(),
            plan: None,
            who: Actor::default(),
            commit: None,
            command: "apply".into(),
            tenant: tenant.into(),
            kind: address.split('.').next().unwrap().into(),
            address: address.into(),
            from: from.map(Into::into),
            op: if from.is_some() {
                HistoryOp::Update
            } else {
                HistoryOp::Create
            },
            changes: Default::default(),
            outcome: HistoryOutcome::Applied,
        }
    }

    #[test]
    fn a_github_actions_run_is_its_actor_and_the_run_page() {
        let env: HashMap<&str, &str> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "contoso/fleet"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_WORKFLOW", "apply"),
        ]
        .into();
        let actor = Actor::from_environment(&|k| env.get(k).map(|v| v.to_string()), "me@box");
        assert_eq!(actor.name, "octocat");
        let ci = actor.ci.unwrap();
        assert_eq!(ci.system, "github-actions");
        assert_eq!(
            ci.url,
            "https://github.com/contoso/fleet/actions/runs/42/attempts/2"
        );
        assert_eq!(ci.workflow.as_deref(), Some("apply"));
    }

    #[test]
    fn an_azure_devops_run_is_its_requester_and_the_build_page() {
        let env: HashMap<&str, &str> = [
            ("TF_BUILD", "True"),
            ("BUILD_REQUESTEDFOR", "Dana Whitfield"),
            ("BUILD_REQUESTEDFOREMAIL", "dana@contoso.example"),
            (
                "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
                "https://dev.azure.com/contoso/",
            ),
            ("SYSTEM_TEAMPROJECT", "Fleet"),
            ("BUILD_BUILDID", "1234"),
        ]
        .into();
        let actor = Actor::from_environment(&|k| env.get(k).map(|v| v.to_string()), "me@box");
        assert_eq!(actor.name, "Dana Whitfield <dana@contoso.example>");
        assert_eq!(
            actor.ci.unwrap().url,
            "https://dev.azure.com/contoso/Fleet/_build/results?buildId=1234"
        );
        let local = Actor::from_environment(&|_| None, "me@box");
        assert_eq!(local.name, "me@box");
        assert!(local.ci.is_none());
    }

    #[test]
    fn an_address_is_followed_back_through_its_renames_up_to_each_move() {
        let entries = vec![
            entry("2026-01-01T00:00:00Z", "old", "guest.old.dana", None),
            entry(
                "2026-02-01T00:00:00Z",
                "new",
                "guest.new.dana",
                Some("guest.old.dana"),
            ),
            entry("2026-03-01T00:00:00Z", "new", "guest.new.dana", None),
            // The old name reused later by another object: not this one's history.
            entry("2026-04-01T00:00:00Z", "old", "guest.old.dana", None),
            entry("2026-04-02T00:00:00Z", "new", "guest.new.ben", None),
        ];
        let picked = select(
            entries,
            &HistoryFilter {
                address: Some("guest.new.dana".into()),
                ..Default::default()
            },
        );
        let times: Vec<&str> = picked.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(
            times,
            [
                "2026-01-01T00:00:00Z",
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z"
            ]
        );
    }

    #[test]
    fn a_tenant_is_followed_back_through_its_renames() {
        let entries = vec![
            entry("2026-01-01T00:00:00Z", "acme-old", "tenant.acme-old", None),
            entry(
                "2026-01-02T00:00:00Z",
                "acme-old",
                "guest.acme-old.dana",
                None,
            ),
            entry(
                "2026-02-01T00:00:00Z",
                "acme",
                "tenant.acme",
                Some("tenant.acme-old"),
            ),
            entry("2026-03-01T00:00:00Z", "other", "guest.other.dana", None),
        ];
        let filter = HistoryFilter {
            tenant: Some("acme".into()),
            ..Default::default()
        };
        assert_eq!(
            tenants_to_read(&filter, &entries).unwrap(),
            ["acme".to_string(), "acme-old".to_string()].into()
        );
        let picked = select(entries, &filter);
        assert_eq!(picked.len(), 3);
        assert!(picked.iter().all(|e| e.tenant != "other"));
    }

    #[test]
    fn since_takes_dates_times_and_ages() {
        let now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let at = |s: &str| parse_since(s, now).unwrap().to_string();
        assert_eq!(at("2026-11-01"), "2026-11-01T00:00:00Z");
        assert_eq!(at("2026-11-01T09:30:00Z"), "2026-11-01T09:30:00Z");
        assert_eq!(at("7d"), "2026-11-25T12:00:00Z");
        assert_eq!(at("12h"), "2026-12-02T00:00:00Z");
        assert_eq!(at("30m"), "2026-12-02T11:30:00Z");
        assert!(parse_since("last tuesday", now).is_err());
    }

    #[test]
    fn since_drops_older_entries() {
        let entries = vec![
            entry("2026-01-01T00:00:00Z", "a", "guest.a.x", None),
            entry("2026-03-01T00:00:00Z", "a", "guest.a.y", None),
        ];
        let picked = select(
            entries,
            &HistoryFilter {
                since: Some("2026-02-01T00:00:00Z".parse().unwrap()),
                ..Default::default()
            },
        );
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].address, "guest.a.y");
    }
}
