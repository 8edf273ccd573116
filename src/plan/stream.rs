//! Planning tenant by tenant: which tenants a plan covers, the partitions each one's objects
//! are in, and the state a tenant's part is planned from. Pure: `ops::plan` does the loading
//! and reading around it, and [`plan_by_tenant`] runs the same steps over in-memory inputs, so
//! every plan case checks that planning tenant by tenant gives the whole plan.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::tenant_record;
use super::{Part, Plan, PlanInput, PlanOptions, header, plan_part};
use crate::live::LiveSnapshot;
use crate::model::{DesiredFleet, DesiredModel};
use crate::state::{Partition, State, StateObject};

/// One tenant to plan: its name and the state partitions its objects are in (its own, and a
/// former name's when it was renamed and state does not record the rename yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantJob {
    pub name: String,
    pub partitions: Vec<String>,
}

/// Every tenant to plan, by name: the manifests' tenants in scope and those only state knows
/// (removed from the manifests). A former name is planned with the tenant renamed from it,
/// under the rule the catalog part renames by (`plan_part`): the catalog holds the former
/// record and not the new one, and no tenant of the former name is declared.
pub fn tenant_jobs(
    model: &DesiredModel,
    has_record: impl Fn(&str) -> bool,
    stored_tenants: impl IntoIterator<Item = String>,
    options: &PlanOptions,
) -> Vec<TenantJob> {
    let mut jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut claimed = BTreeSet::new();
    for t in model.tenants.values().filter(|t| options.in_scope(&t.name)) {
        let mut partitions = vec![t.name.clone()];
        if !has_record(&t.name)
            && let Some(former) = t
                .former_names
                .iter()
                .find(|f| has_record(f) && !model.tenants.contains_key(*f) && options.in_scope(f))
        {
            partitions.push(former.clone());
            claimed.insert(former.clone());
        }
        jobs.insert(t.name.clone(), partitions);
    }
    for name in stored_tenants {
        if options.in_scope(&name) && !claimed.contains(&name) && !jobs.contains_key(&name) {
            jobs.insert(name.clone(), vec![name]);
        }
    }
    jobs.into_iter()
        .map(|(name, partitions)| TenantJob { name, partitions })
        .collect()
}

/// The state a tenant's part is planned from: its partitions' objects and the catalog's
/// records of the tenant names involved (`records`: those of the job's partitions' names; a
/// rename is found from them, the catalog part plans them).
pub fn tenant_state(
    lineage: &str,
    records: impl IntoIterator<Item = (String, StateObject)>,
    partitions: impl IntoIterator<Item = BTreeMap<String, StateObject>>,
) -> State {
    let mut state = State {
        lineage: lineage.to_string(),
        ..State::new()
    };
    state.objects.extend(records);
    for objects in partitions {
        state.objects.extend(objects);
    }
    state
}

/// The plan computed as a streaming run computes it, from in-memory inputs: the catalog part,
/// then each tenant's part from its slice of the model, its partitions and its live read.
/// Equal to [`super::plan`] (the plan cases check it).
pub fn plan_by_tenant(input: &PlanInput) -> Plan {
    let mut by_partition: BTreeMap<Partition, BTreeMap<String, StateObject>> = BTreeMap::new();
    for (address, object) in &input.state.objects {
        by_partition
            .entry(crate::state::partition_of(address, object))
            .or_default()
            .insert(address.clone(), object.clone());
    }
    let catalog = State {
        lineage: input.state.lineage.clone(),
        serial: input.state.serial,
        objects: by_partition.remove(&Partition::Catalog).unwrap_or_default(),
        ..State::new()
    };
    let mut plan = Plan::new(header(input));
    let catalog_input = PlanInput {
        state: &catalog,
        live: None,
        options: input.options.clone(),
        ..*input
    };
    for part in super::catalog::plan_catalog(&catalog_input, super::catalog::TENANTS_PER_GROUP) {
        plan.add_part(part);
    }
    let stored: Vec<String> = by_partition
        .keys()
        .filter_map(|p| p.tenant_name().map(str::to_string))
        .collect();
    let fleet = DesiredFleet::in_memory(input.desired.clone());
    let options = PlanOptions {
        only_tenants: None,
        ..input.options.clone()
    };
    let has_record = |name: &str| catalog.objects.contains_key(&tenant_record(name));
    for job in tenant_jobs(input.desired, has_record, stored, &input.options) {
        let partitions = job.partitions.iter().map(|name| {
            by_partition
                .get(&Partition::Tenant(name.clone()))
                .cloned()
                .unwrap_or_default()
        });
        let records = job.partitions.iter().filter_map(|name| {
            let address = tenant_record(name);
            let record = catalog.objects.get(&address)?.clone();
            Some((address, record))
        });
        let state = tenant_state(&catalog.lineage, records, partitions);
        let desired = fleet
            .slice(&job.name)
            .expect("a fleet in memory reads without I/O");
        let live = input.live.map(|l| LiveSnapshot {
            tenants: l
                .tenants
                .get(&job.name)
                .map(|t| (job.name.clone(), t.clone()))
                .into_iter()
                .collect(),
        });
        plan.add_part(plan_part(
            &PlanInput {
                desired: &desired,
                state: &state,
                live: live.as_ref(),
                options: options.clone(),
                now: input.now,
            },
            Part::Tenants,
        ));
    }
    plan
}
