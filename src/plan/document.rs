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
    /// Digest of the desired model the plan was made from (`sha256:...`).
    pub manifests_digest: String,
    /// The stored state the plan was made against.
    pub state: StateRef,
    pub options: PlanOptions,
    /// Ordered: creates and updates by dependency (tenant, organization, ...), then deletes in
    /// reverse dependency order. Unchanged objects are listed as `no-op`.
    pub actions: Vec<Action>,
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
    pub no_op: usize,
    /// Planned but not to be carried out (counted in their operation too).
    pub blocked: usize,
}

impl Summary {
    /// Changes apply would make (blocked ones excluded).
    pub fn changes(&self) -> usize {
        self.create + self.update + self.delete + self.adopt - self.blocked
    }
}

impl Plan {
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

    /// 1 if any tenant failed; with `detailed`, 2 for changes; else 0.
    pub fn exit_code(&self, detailed: bool) -> u8 {
        crate::outcome::exit_code(&self.tenants, self.has_changes(), detailed)
    }
}
