//! What a plan is asked to do (`PlanOptions`, recorded in the plan) and what it is computed
//! from (`PlanInput`): kept apart from the plan's output types because the CLI builds them.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::live::LiveSnapshot;
use crate::model::DesiredModel;
use crate::state::State;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanOptions {
    /// Deletes are planned as blocked unless this is set.
    pub allow_delete: bool,
    /// Take over objects that exist in Entra but tenantform does not own (instead of blocking).
    #[serde(default)]
    pub adopt: bool,
    /// Send invitations that are still pending again (Graph `resetRedemption`).
    #[serde(default)]
    pub resend_invitations: bool,
    /// Plan only these tenants (`--changed-since`); others are left as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_tenants: Option<BTreeSet<String>>,
    /// `import`: record what exists; nothing in Entra is created, changed or deleted.
    #[serde(default)]
    pub import_only: bool,
    /// `--offline`: Entra is not read; only MSP-side kinds are planned, on purpose.
    #[serde(default)]
    pub offline: bool,
    /// An object recorded in state less than this long ago that Entra does not show yet is
    /// pending replication, not missing (seconds).
    #[serde(default = "default_replication_window")]
    pub replication_window_secs: u64,
    /// `--allow-mass-removal`: archive contacts even when a run archives many of a tenant's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_mass_removal: bool,
    /// Plan only these kinds (`sync`: contacts); objects of others are left as they are,
    /// neither compared nor read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_kinds: Option<BTreeSet<String>>,
}

/// Entra usually shows a new object within seconds, sometimes minutes.
pub const DEFAULT_REPLICATION_WINDOW_SECS: u64 = 600;

fn default_replication_window() -> u64 {
    DEFAULT_REPLICATION_WINDOW_SECS
}

impl PlanOptions {
    /// Whether the plan covers `tenant` (`--changed-since` narrows it).
    pub fn in_scope(&self, tenant: &str) -> bool {
        self.only_tenants
            .as_ref()
            .is_none_or(|only| only.contains(tenant))
    }

    /// Whether the plan covers objects of kind `name` (`sync` plans contacts only).
    pub fn plans_kind(&self, name: &str) -> bool {
        // A tenant's sync position goes with its contacts.
        let name = if name == crate::plan::contacts::USER_SYNC {
            crate::plan::contacts::CONTACT
        } else {
            name
        };
        self.only_kinds
            .as_ref()
            .is_none_or(|only| only.contains(name))
    }
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            allow_delete: false,
            adopt: false,
            resend_invitations: false,
            only_tenants: None,
            import_only: false,
            offline: false,
            replication_window_secs: DEFAULT_REPLICATION_WINDOW_SECS,
            allow_mass_removal: false,
            only_kinds: None,
        }
    }
}

/// Everything a plan is computed from.
pub struct PlanInput<'a> {
    pub desired: &'a DesiredModel,
    pub state: &'a State,
    /// What Entra holds now; without it, objects that live in Entra are not planned.
    pub live: Option<&'a LiveSnapshot>,
    pub options: PlanOptions,
    /// The time the plan is made (replication windows are measured from it).
    pub now: jiff::Timestamp,
}
