//! The plan as a document: `Plan` with its summary, tenant outcomes and notes, as written by
//! `--output json` and saved plan files. The actions themselves are in `action`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Action, PlanOptions};
use crate::outcome::{Failure, TenantOutcome};

/// Version of the plan JSON (`--output json` and saved plan files).
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Marks a file as a tenantform plan (so `apply FILE` can tell it from manifests).
pub const PLAN_MARKER: &str = "tenantform-plan";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always `tenantform-plan`.
    pub kind: String,
    pub format_version: u32,
    /// This plan's id, given when it is made (`plan`, `apply`): apply history records it, so
    /// a change traces back to the plan a reviewer saw. Empty for plans made by the pure
    /// planner alone (tests, benchmarks).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Digest of the desired model the plan was made from (`sha256:...`).
    pub manifests_digest: String,
    /// The stored state the plan was made against.
    pub state: StateRef,
    pub options: PlanOptions,
    /// Ordered: creates and updates by dependency (tenant, organization, ...), then deletes in
    /// reverse dependency order. Unchanged objects are listed as `no-op`.
    pub actions: Vec<Action>,
    /// Where each synced tenant's end-user sync stands once this plan is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<SyncPositionUpdate>,
    /// Consent a person signed in with the Azure CLI would make first (`consent.<tenant>`,
    /// `consent.<tenant>.<Permission>`): planned from live Entra, never recorded in state.
    /// Only in plans shown (`plan`), not in saved plans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<crate::consent::ConsentChange>,
    /// Plan-wide notes (hints about likely mistakes).
    pub warnings: Vec<String>,
    /// Tenants whose Entra objects could not be planned (consent needed, read failed, not
    /// read), or sources of a tenant that could not be read (then only the kinds that need
    /// them were not planned there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<TenantNotRead>,
    /// Entra objects held by managed principals that tenantform does not own (never touched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
    /// Every tenant in the plan's scope and how it stands: changes, nothing to do, or failed.
    #[serde(default)]
    pub tenants: Vec<TenantOutcome>,
    pub summary: Summary,
    /// Unchanged objects with a note (pending replication or invitation) that a plan kept for
    /// a terminal did not keep beyond its bound ([`Plan::MAX_NOTED_KEPT`]): counted, not
    /// listed. Never in a plan file or JSON (they list every object).
    #[serde(skip)]
    #[schemars(skip)]
    pub notes_omitted: usize,
    /// Tenants with nothing to do that a plan kept for a terminal counted instead of listing
    /// in `tenants` (a no-change plan of any fleet holds none of them).
    /// Never in a plan file or JSON (they list every tenant).
    #[serde(skip)]
    #[schemars(skip)]
    pub tenants_unlisted: usize,
}

/// Where a tenant's end-user sync stands once this plan is applied (`user_sync.<tenant>`):
/// bookkeeping apply records with the tenant's contacts, never an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPositionUpdate {
    pub tenant: String,
    #[schemars(with = "serde_json::Value")]
    pub position: crate::end_users::SyncPosition,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unmanaged {
    pub tenant: String,
    /// The Entra object id.
    pub id: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantNotRead {
    pub tenant: String,
    /// Why (consent missing, token refused, permission missing, Graph error, not read);
    /// `source` names the live source when only it could not be read.
    #[serde(flatten)]
    pub failure: Failure,
    /// The kinds not planned in this tenant because of it (e.g. `directory_role`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateRef {
    pub lineage: String,
    /// The whole state's serial (the sum of its partitions').
    pub serial: u64,
    /// The serials of the partitions the plan's changes write (the catalog, tenants): a saved
    /// plan is stale only when one of these changed, not when another tenant was applied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, u64>")]
    pub partitions: BTreeMap<crate::state::Partition, u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    #[serde(default)]
    pub adopt: usize,
    /// Records marked archived (contacts whose users left), kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub archive: usize,
    pub no_op: usize,
    /// Planned but not to be carried out (counted in their operation too).
    pub blocked: usize,
}

impl Summary {
    /// The counts of `actions`.
    pub fn of(actions: &[super::Action]) -> Summary {
        let mut summary = Summary::default();
        for a in actions {
            match a.op {
                super::Op::Create => summary.create += 1,
                super::Op::Update => summary.update += 1,
                super::Op::Delete => summary.delete += 1,
                super::Op::Adopt => summary.adopt += 1,
                super::Op::Archive => summary.archive += 1,
                super::Op::NoOp => summary.no_op += 1,
            }
            if a.blocked.is_some() {
                summary.blocked += 1;
            }
        }
        summary
    }

    /// Changes apply would make (blocked ones excluded).
    pub fn changes(&self) -> usize {
        self.create + self.update + self.delete + self.adopt + self.archive - self.blocked
    }
}

/// Where a plan came from: the manifests, the state and the options (the plan document's
/// header, computed once even when the plan is computed tenant by tenant).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanHeader {
    /// See [`Plan::id`].
    pub id: String,
    pub manifests_digest: String,
    pub state: StateRef,
    pub options: PlanOptions,
}

/// The two halves of a plan: the fleet catalog (tenant and organization records, planned
/// across the fleet at once) and the tenants' own objects (planned one tenant at a time when
/// streaming). A plan lists the catalog's actions first, then each tenant's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    Catalog,
    #[default]
    Tenants,
}

impl Part {
    /// Whether this part plans objects of kind `k`.
    pub fn covers(self, k: &crate::resources::ResourceKind) -> bool {
        (k.scope == crate::resources::KindScope::Fleet) == (self == Part::Catalog)
    }
}

/// One part of a plan (the catalog, or one or more tenants), added to a plan in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanPart {
    /// Sync positions to record when the part's actions are applied (tenants whose end-user
    /// sync read everything it needed and held nothing back).
    pub positions: Vec<SyncPositionUpdate>,
    /// Which half of the plan it belongs to (the catalog comes in several parts, first).
    pub part: Part,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
    pub not_read: Vec<TenantNotRead>,
    pub unmanaged: Vec<Unmanaged>,
    pub tenants: Vec<TenantOutcome>,
    pub summary: Summary,
}

impl PlanPart {
    /// Drops unchanged objects that say nothing (no note), keeping their count in the summary;
    /// of those with a note, keeps at most `room` and returns how many it dropped. What a
    /// terminal or a pull-request comment shows of a large no-change fleet.
    pub fn drop_silent_no_ops(&mut self, room: usize) -> usize {
        let mut kept = 0;
        let mut dropped = 0;
        self.actions.retain(|a| {
            if a.op != super::Op::NoOp {
                return true;
            }
            if a.note.is_none() {
                return false;
            }
            if kept < room {
                kept += 1;
                true
            } else {
                dropped += 1;
                false
            }
        });
        dropped
    }
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.create += other.create;
        self.update += other.update;
        self.delete += other.delete;
        self.adopt += other.adopt;
        self.archive += other.archive;
        self.no_op += other.no_op;
        self.blocked += other.blocked;
    }
}

impl Plan {
    /// How many unchanged objects with a note a plan kept for a terminal lists (a fleet where
    /// every guest's invitation is pending would otherwise list, and hold, all of them).
    pub const MAX_NOTED_KEPT: usize = 200;

    /// Unchanged objects with a note in the plan (pending replication or invitation).
    pub fn noted_no_ops(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| a.op == super::Op::NoOp && a.note.is_some())
            .count()
    }

    /// A plan with no parts yet.
    pub fn new(header: PlanHeader) -> Plan {
        Plan {
            kind: PLAN_MARKER.to_string(),
            format_version: PLAN_FORMAT_VERSION,
            id: header.id,
            manifests_digest: header.manifests_digest,
            state: header.state,
            options: header.options,
            actions: Vec::new(),
            positions: Vec::new(),
            warnings: Vec::new(),
            not_read: Vec::new(),
            unmanaged: Vec::new(),
            tenants: Vec::new(),
            summary: Summary::default(),
            notes_omitted: 0,
            tenants_unlisted: 0,
            consent: Vec::new(),
        }
    }

    /// How many tenants the plan covers, listed in `tenants` or only counted.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len() + self.tenants_unlisted
    }

    /// Whether `tenant` has an outcome listed in the plan.
    pub fn lists_tenant(&self, tenant: &str) -> bool {
        self.tenants
            .binary_search_by(|t| t.tenant.as_str().cmp(tenant))
            .is_ok()
    }

    /// Adds a part: its actions after those already added, and each tenant's outcome merged
    /// with the one the plan has (failed over changes over nothing to do).
    pub fn add_part(&mut self, part: PlanPart) {
        self.actions.extend(part.actions);
        self.positions.extend(part.positions);
        self.warnings.extend(part.warnings);
        self.not_read.extend(part.not_read);
        self.unmanaged.extend(part.unmanaged);
        self.summary.add(&part.summary);
        for outcome in part.tenants {
            merge_outcome(&mut self.tenants, outcome);
        }
    }

    pub fn has_changes(&self) -> bool {
        self.summary.changes() > 0
    }

    /// Tenants that could not be planned (each a reason for exit code 1).
    pub fn failed_tenants(&self) -> impl Iterator<Item = &TenantOutcome> {
        self.tenants.iter().filter(|t| t.outcome.is_failed())
    }

    /// For a tenant that was read but not every source a kind needs: the kinds not planned
    /// there (empty when the whole tenant was not read, or everything was).
    pub fn kinds_not_planned(&self, tenant: &str) -> Vec<&str> {
        let entries: Vec<&TenantNotRead> = self
            .not_read
            .iter()
            .filter(|n| n.tenant == tenant)
            .collect();
        kinds_of(&entries)
    }

    /// [`Plan::kinds_not_planned`] for every tenant at once (one pass: a fleet where every
    /// tenant failed is not tenants x not-read).
    pub fn kinds_not_planned_by_tenant(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut by_tenant: BTreeMap<&str, Vec<&TenantNotRead>> = BTreeMap::new();
        for n in &self.not_read {
            by_tenant.entry(n.tenant.as_str()).or_default().push(n);
        }
        by_tenant
            .into_iter()
            .map(|(tenant, entries)| (tenant, kinds_of(&entries)))
            .collect()
    }

    /// 1 if any tenant failed; with `detailed`, 2 for changes; else 0.
    pub fn exit_code(&self, detailed: bool) -> u8 {
        crate::outcome::exit_code(&self.tenants, self.has_changes(), detailed)
    }
}

/// The kinds not planned in a tenant from its not-read entries (none when the whole tenant
/// was not read).
fn kinds_of<'a>(entries: &[&'a TenantNotRead]) -> Vec<&'a str> {
    if entries.iter().any(|n| n.failure.source.is_none()) {
        return Vec::new();
    }
    let mut kinds: Vec<&str> = entries
        .iter()
        .flat_map(|n| n.kinds.iter().map(String::as_str))
        .collect();
    kinds.sort_unstable_by_key(|k| crate::resources::kind(k).map_or(u8::MAX, |k| k.order));
    kinds.dedup();
    kinds
}

/// Merges `outcome` into `tenants` (kept sorted by tenant name).
fn merge_outcome(tenants: &mut Vec<TenantOutcome>, outcome: TenantOutcome) {
    use crate::outcome::Outcome;
    match tenants.binary_search_by(|t| t.tenant.as_str().cmp(&outcome.tenant)) {
        Err(at) => tenants.insert(at, outcome),
        Ok(at) => {
            let into = &mut tenants[at];
            let TenantOutcome {
                display_name,
                microsoft_tenant_id,
                outcome: other,
                sources,
                ..
            } = outcome;
            into.outcome = match (
                std::mem::replace(&mut into.outcome, Outcome::NothingToDo),
                other,
            ) {
                (Outcome::Failed(f), _) | (_, Outcome::Failed(f)) => Outcome::Failed(f),
                (Outcome::Done, _) | (_, Outcome::Done) => Outcome::Done,
                (Outcome::Changes, _) | (_, Outcome::Changes) => Outcome::Changes,
                _ => Outcome::NothingToDo,
            };
            if into.display_name.is_none() {
                into.display_name = display_name;
            }
            if into.microsoft_tenant_id.is_none() {
                into.microsoft_tenant_id = microsoft_tenant_id;
            }
            // Moved when the plan has none yet (nearly always): extending would leave spare
            // capacity in every tenant's outcome.
            if into.sources.is_empty() {
                into.sources = sources;
            } else {
                into.sources.extend(sources);
            }
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
