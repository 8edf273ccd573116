//! Saved plans (`plan --out`, `apply FILE`): the file format, the manifests digest and the
//! check that a saved plan still matches the manifests and state it was made from.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::model::DesiredModel;
use crate::state::State;

/// `sha256:<hex>` of the desired model: what "the manifests changed" means for a saved plan.
pub fn manifests_digest(model: &DesiredModel) -> String {
    crate::model::model_digest(model)
}

/// A plan written by `plan --out`, with where it was made, for `apply FILE`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    #[serde(flatten)]
    pub plan: Plan,
    /// Absolute path of the manifests the plan was made from.
    pub manifests: String,
    /// Absolute path of the state file.
    pub state_path: String,
    /// Made against the embedded Graph sandbox (`--sandbox`); apply uses it too.
    #[serde(default)]
    pub sandbox: bool,
    /// The git commit the manifests were read at (or checked out, for a work tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Read from git (`--ref`) rather than the work tree: apply reads that commit again.
    #[serde(default)]
    pub from_git: bool,
}

/// Why a saved plan may no longer be applied to a state whose partitions are now at
/// `serials`: only the partitions it writes count (another tenant's apply since is fine). A
/// plan that recorded no partitions is checked as a whole ([`staleness`]).
pub fn partition_staleness(
    plan: &Plan,
    manifests_digest: &str,
    state: &State,
    serials: &crate::state::Serials,
) -> Option<String> {
    if plan.state.partitions.is_empty() || plan.state.lineage != serials.lineage {
        return staleness(plan, manifests_digest, state);
    }
    for (partition, then) in &plan.state.partitions {
        let now = serials.of(partition);
        if now != *then {
            return Some(format!(
                "{partition} has changed since the plan was made (serial {then} then, {now} now)"
            ));
        }
    }
    if plan.manifests_digest != manifests_digest {
        return Some("the manifests have changed since the plan was made".to_string());
    }
    None
}

/// Why a saved plan may no longer be applied, if it may not.
pub fn staleness(plan: &Plan, manifests_digest: &str, state: &State) -> Option<String> {
    if plan.state.lineage.is_empty() && !state.lineage.is_empty() {
        return Some(
            "state has changed since the plan was made (there was no state then)".to_string(),
        );
    }
    if plan.state.lineage != state.lineage {
        return Some(format!(
            "the plan was made against another state (lineage {}, this state is {})",
            plan.state.lineage, state.lineage
        ));
    }
    if plan.state.serial != state.serial {
        return Some(format!(
            "state has changed since the plan was made (serial {} then, {} now)",
            plan.state.serial, state.serial
        ));
    }
    if plan.manifests_digest != manifests_digest {
        return Some("the manifests have changed since the plan was made".to_string());
    }
    None
}

/// The state partitions carrying out `plan` writes (the catalog for tenant and organization
/// records, each tenant with changes of its own objects), or `None` when it must hold the whole
/// state: a rename moves objects across partitions, and a state never written has no lineage
/// for partitions to share.
pub fn partitions_written(
    actions: &[super::Action],
    lineage: &str,
) -> Option<std::collections::BTreeSet<crate::state::Partition>> {
    use crate::resources::KindScope;
    use crate::state::Partition;
    if lineage.is_empty() {
        return None;
    }
    let mut partitions = std::collections::BTreeSet::new();
    for action in actions.iter().filter(|a| a.is_change()) {
        if action.moved_from.is_some() {
            return None;
        }
        let kind = crate::resources::kind(&action.kind)?;
        partitions.insert(match kind.scope {
            KindScope::Fleet => Partition::Catalog,
            KindScope::MspTenant | KindScope::CustomerTenant => {
                Partition::tenant(&action.tenant).ok()?
            }
        });
    }
    Some(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Op, PlanInput, PlanOptions};
    use crate::state::Partition;

    fn plan_with(actions: Vec<Action>) -> Plan {
        let model = crate::model::DesiredModel::default();
        let mut plan = crate::plan::plan(&PlanInput {
            desired: &model,
            state: &State::new(),
            live: None,
            options: PlanOptions::default(),
            now: jiff::Timestamp::UNIX_EPOCH,
        });
        plan.summary.create = actions.len();
        plan.actions = actions;
        plan
    }

    fn change(kind: &str, address: &str, tenant: &str) -> Action {
        crate::plan::action::test_action(kind, address, tenant)
    }

    fn stored() -> State {
        let mut state = State::new();
        state.ensure_lineage();
        state
    }

    #[test]
    fn a_plan_writes_the_catalog_for_records_and_a_tenant_for_its_objects() {
        let plan = plan_with(vec![
            change("organization", "organization.a-hq", "a"),
            change("guest", "guest.a.dana", "a"),
            change("msp_role", "msp_role.b.dana.TenantAdmin", "b"),
        ]);
        let written = partitions_written(&plan.actions, &stored().lineage).unwrap();
        assert_eq!(
            written.into_iter().collect::<Vec<_>>(),
            [
                Partition::Catalog,
                Partition::Tenant("a".into()),
                Partition::Tenant("b".into())
            ]
        );
        // Blocked and no-op actions write nothing.
        let mut blocked = change("guest", "guest.c.dana", "c");
        blocked.blocked = Some("deletes need --allow-delete".into());
        let mut unchanged = change("guest", "guest.d.dana", "d");
        unchanged.op = Op::NoOp;
        let plan = plan_with(vec![blocked, unchanged]);
        assert!(
            partitions_written(&plan.actions, &stored().lineage)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn renames_and_a_state_never_written_need_the_whole_state() {
        let mut moved = change("guest", "guest.a.dana", "a");
        moved.moved_from = Some("guest.old.dana".into());
        assert_eq!(
            partitions_written(&plan_with(vec![moved]).actions, &stored().lineage),
            None
        );
        let plan = plan_with(vec![change("guest", "guest.a.dana", "a")]);
        assert_eq!(
            partitions_written(&plan.actions, &State::new().lineage),
            None
        );
    }
}
