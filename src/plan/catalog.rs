//! The catalog's part of a plan, a group of tenants at a time. The catalog holds a record for
//! every tenant and organization of the fleet; planning it whole held all of them, with their
//! stored objects and an action for each, at once. Grouped by tenant name, a run holds one
//! group's records and the changes found so far.
//!
//! A group is a range of tenant names: each tenant's record, and each organization under the
//! tenant the manifests give it, are planned together, so what one diff must see at once stays
//! in one group: a renamed record and its former name (grouped by the current name), an
//! organization moved to another tenant (by its new tenant), an organization and the tenant
//! created for it. Deletes wait for the end and are ordered there as one list (organizations
//! before their tenants whatever group they came from), and the hints, which compare created
//! with deleted records across the fleet, are found there too. A fleet of one group plans
//! exactly as the whole catalog at once did.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde_json::Value;

use super::diff::order;
use super::hints::{CreatedTenant, hints};
use super::{Action, Op, Part, PlanInput, PlanPart, Summary, plan_part};
use crate::model::{DesiredFleet, DesiredModel, Organization, Tenant};
use crate::outcome::TenantOutcome;
use crate::resources::{address, split_address};
use crate::state::{State, StateObject};

/// Tenants planned together: a few hundred kilobytes of records and actions at a time.
pub const TENANTS_PER_GROUP: usize = 256;

/// What grouping the catalog needs of the manifests: a model in memory, or a fleet whose
/// organizations are in its object store (`model::DesiredFleet`).
pub trait CatalogSource {
    fn tenants(&self) -> &BTreeMap<String, Tenant>;
    /// The tenant organization `name` is declared under.
    fn organization_tenant(&self, name: &str) -> Option<TenantAt<'_>>;
    /// The organization renamed from `former`.
    fn renamed_organization(&self, former: &str) -> Option<&str>;
    /// The organizations under `tenants` (names in order).
    fn organizations_under(&self, tenants: &[&str]) -> std::io::Result<Vec<Organization>>;
}

/// A tenant by name, or by its position among the tenants in name order.
pub enum TenantAt<'a> {
    Name(&'a str),
    Position(usize),
}

impl CatalogSource for DesiredModel {
    fn tenants(&self) -> &BTreeMap<String, Tenant> {
        &self.tenants
    }

    fn organization_tenant(&self, name: &str) -> Option<TenantAt<'_>> {
        let o = self.organizations.get(name)?;
        Some(TenantAt::Name(&o.tenant))
    }

    fn renamed_organization(&self, former: &str) -> Option<&str> {
        self.organizations
            .values()
            .find(|o| o.former_names.iter().any(|f| f == former))
            .map(|o| o.name.as_str())
    }

    fn organizations_under(&self, tenants: &[&str]) -> std::io::Result<Vec<Organization>> {
        Ok(self
            .organizations
            .values()
            .filter(|o| tenants.binary_search(&o.tenant.as_str()).is_ok())
            .cloned()
            .collect())
    }
}

impl CatalogSource for DesiredFleet {
    fn tenants(&self) -> &BTreeMap<String, Tenant> {
        &self.catalog.tenants
    }

    fn organization_tenant(&self, name: &str) -> Option<TenantAt<'_>> {
        DesiredFleet::organization_tenant(self, name).map(TenantAt::Position)
    }

    fn renamed_organization(&self, former: &str) -> Option<&str> {
        DesiredFleet::renamed_organization(self, former)
    }

    fn organizations_under(&self, tenants: &[&str]) -> std::io::Result<Vec<Organization>> {
        let mut out = Vec::new();
        for tenant in tenants {
            out.extend(self.organizations_of(tenant)?);
        }
        Ok(out)
    }
}

/// Which group each catalog record belongs to, from the manifests.
pub struct CatalogGroups<'m, S: CatalogSource> {
    source: &'m S,
    per_group: usize,
    /// The first tenant name of every group but the first, ascending.
    starts: Vec<&'m str>,
    /// A former tenant name -> the tenant renamed from it.
    former_tenants: HashMap<&'m str, &'m str>,
}

impl<'m, S: CatalogSource> CatalogGroups<'m, S> {
    pub fn new(source: &'m S, per_group: usize) -> Self {
        let per_group = per_group.max(1);
        let tenants = source.tenants();
        let starts: Vec<&str> = tenants
            .keys()
            .skip(per_group)
            .step_by(per_group)
            .map(String::as_str)
            .collect();
        let mut former_tenants = HashMap::new();
        for t in tenants.values() {
            for former in &t.former_names {
                former_tenants.insert(former.as_str(), t.name.as_str());
            }
        }
        CatalogGroups {
            source,
            per_group,
            starts,
            former_tenants,
        }
    }

    /// How many groups there are (at least one).
    pub fn len(&self) -> usize {
        self.starts.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The group of the tenant of this name (declared or not).
    fn of_tenant(&self, name: &str) -> usize {
        self.starts.partition_point(|start| *start <= name)
    }

    fn of(&self, tenant: TenantAt) -> usize {
        match tenant {
            TenantAt::Name(name) => self.of_tenant(name),
            TenantAt::Position(position) => position / self.per_group,
        }
    }

    /// The group a stored catalog object is planned in: a tenant record with its tenant (or
    /// with the tenant renamed from it), an organization with the tenant the manifests give
    /// it (or give the organization renamed from it), else with the tenant it has in state.
    /// Anything else goes with the first group.
    pub fn of_object(&self, address: &str, object: &StateObject) -> usize {
        match split_address(address) {
            Some(("tenant", name)) => {
                let name = match self.source.tenants().contains_key(name) {
                    true => name,
                    false => self.former_tenants.get(name).copied().unwrap_or(name),
                };
                self.of_tenant(name)
            }
            Some(("organization", name)) => {
                let declared = self.source.organization_tenant(name).or_else(|| {
                    let current = self.source.renamed_organization(name)?;
                    self.source.organization_tenant(current)
                });
                match declared {
                    Some(tenant) => self.of(tenant),
                    None => match object.attributes.get("tenant").and_then(Value::as_str) {
                        Some(tenant) => self.of_tenant(tenant),
                        None => 0,
                    },
                }
            }
            _ => 0,
        }
    }

    /// The manifests' records of one group: its tenants and their organizations.
    pub fn desired(&self, group: usize) -> std::io::Result<DesiredModel> {
        let low = match group {
            0 => Bound::Unbounded,
            _ => Bound::Included(self.starts[group - 1]),
        };
        let high = match self.starts.get(group) {
            Some(start) => Bound::Excluded(*start),
            None => Bound::Unbounded,
        };
        let tenants: BTreeMap<String, Tenant> = self
            .source
            .tenants()
            .range::<str, _>((low, high))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let names: Vec<&str> = tenants.keys().map(String::as_str).collect();
        Ok(DesiredModel {
            organizations: self
                .source
                .organizations_under(&names)?
                .into_iter()
                .map(|o| (o.name.clone(), o))
                .collect(),
            tenants,
            ..DesiredModel::default()
        })
    }
}

/// Plans the catalog group by group ([`CatalogPlanner::plan_group`]), then its deletes and
/// hints ([`CatalogPlanner::finish`]).
#[derive(Default)]
pub struct CatalogPlanner {
    deletes: Vec<Action>,
    /// The outcomes of the tenants `deletes` are of, which go with them: a plan for a terminal
    /// lists a tenant (with its display name) only beside its actions.
    delete_outcomes: Vec<TenantOutcome>,
    created: Vec<CreatedTenant>,
}

impl CatalogPlanner {
    /// One group's part: `input` holds the group's records ([`CatalogGroups::desired`]) and
    /// its stored objects. Its deletes are held for [`CatalogPlanner::finish`].
    pub fn plan_group(&mut self, input: &PlanInput) -> PlanPart {
        let mut part = plan_part(input, Part::Catalog);
        for created in part
            .actions
            .iter()
            .filter(|a| a.op == Op::Create && a.kind == "tenant")
        {
            let name = created.address.trim_start_matches("tenant.");
            self.created.push(CreatedTenant {
                address: created.address.clone(),
                microsoft_tenant_id: created
                    .after
                    .as_ref()
                    .and_then(|a| a.get("microsoftTenantId"))
                    .filter(|v| !v.is_null())
                    .cloned(),
                organizations: part
                    .actions
                    .iter()
                    .filter(|a| a.kind == "organization" && a.tenant == name)
                    .filter_map(|a| a.address.strip_prefix("organization."))
                    .map(str::to_string)
                    .collect(),
            });
        }
        let (deletes, kept): (Vec<Action>, Vec<Action>) =
            part.actions.into_iter().partition(|a| a.op == Op::Delete);
        let of_deletes: BTreeSet<&str> = deletes.iter().map(|a| a.tenant.as_str()).collect();
        self.delete_outcomes.extend(
            part.tenants
                .iter()
                .filter(|t| of_deletes.contains(t.tenant.as_str()))
                .cloned(),
        );
        self.deletes.extend(deletes);
        part.actions = kept;
        part.summary = Summary::of(&part.actions);
        part
    }

    /// The deletes of every group, in order, with the plan-wide hints.
    pub fn finish(mut self) -> PlanPart {
        order(&mut self.deletes);
        PlanPart {
            part: Part::Catalog,
            warnings: hints(&self.created, &self.deletes),
            summary: Summary::of(&self.deletes),
            actions: self.deletes,
            tenants: self.delete_outcomes,
            ..PlanPart::default()
        }
    }
}

/// The catalog's part of a plan from inputs in memory, in groups of `per_group` tenants (what
/// a streaming run does with its stored catalog on disk). `input.state` may hold the whole
/// state: only the catalog's objects are planned.
pub fn plan_catalog(input: &PlanInput, per_group: usize) -> Vec<PlanPart> {
    let groups = CatalogGroups::new(input.desired, per_group);
    let mut stored: Vec<BTreeMap<String, StateObject>> = vec![BTreeMap::new(); groups.len()];
    for (a, o) in &input.state.objects {
        if crate::state::partition_of(a, o) == crate::state::Partition::Catalog {
            stored[groups.of_object(a, o)].insert(a.clone(), o.clone());
        }
    }
    let mut planner = CatalogPlanner::default();
    let mut parts: Vec<PlanPart> = stored
        .into_iter()
        .enumerate()
        .map(|(group, objects)| {
            let state = State {
                lineage: input.state.lineage.clone(),
                serial: input.state.serial,
                objects,
                ..State::new()
            };
            let desired = groups
                .desired(group)
                .expect("a model in memory reads without I/O");
            planner.plan_group(&PlanInput {
                desired: &desired,
                state: &state,
                live: None,
                options: input.options.clone(),
                now: input.now,
            })
        })
        .collect();
    parts.push(planner.finish());
    parts
}

/// `tenant.NAME`, the address of a tenant's record.
pub fn tenant_record(name: &str) -> String {
    address(crate::resources::tenant::KIND.name, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanOptions;

    fn model(yaml: &str) -> DesiredModel {
        let mut sources = crate::source::SourceSet::new();
        sources.add(crate::source::SourceFile::new(
            "fleet.yaml",
            yaml.to_string(),
        ));
        let v = crate::validate_sources(&mut sources, Vec::new()).unwrap();
        assert!(v.diagnostics.is_empty(), "{:#?}", v.diagnostics);
        v.model().unwrap()
    }

    /// The state an apply of `model` leaves in the catalog.
    fn applied(model: &DesiredModel) -> State {
        let input = PlanInput {
            desired: model,
            state: &State::new(),
            live: None,
            options: PlanOptions::default(),
            now: jiff::Timestamp::now(),
        };
        let mut state = State::new();
        for part in plan_catalog(&input, 1) {
            for a in part.actions {
                state.objects.insert(
                    a.address.clone(),
                    StateObject {
                        kind: a.kind.clone(),
                        ids: Default::default(),
                        attributes: a.after.clone().unwrap(),
                        source: crate::state::Source {
                            digest: "sha256:00".into(),
                            commit: None,
                        },
                        applied_at: "2026-01-01T00:00:00Z".into(),
                    },
                );
            }
        }
        state
    }

    fn plan_in_groups(model: &DesiredModel, state: &State, per_group: usize) -> Vec<PlanPart> {
        plan_catalog(
            &PlanInput {
                desired: model,
                state,
                live: None,
                options: PlanOptions {
                    allow_delete: true,
                    ..PlanOptions::default()
                },
                now: jiff::Timestamp::now(),
            },
            per_group,
        )
    }

    fn merged(parts: Vec<PlanPart>) -> (Vec<(String, Op)>, Vec<String>, Summary) {
        let mut plan = crate::plan::Plan::new(crate::plan::PlanHeader {
            id: String::new(),
            manifests_digest: String::new(),
            state: crate::plan::StateRef {
                lineage: String::new(),
                serial: 0,
                partitions: BTreeMap::new(),
            },
            options: PlanOptions::default(),
        });
        for part in parts {
            plan.add_part(part);
        }
        let actions = plan
            .actions
            .iter()
            .filter(|a| a.op != Op::NoOp)
            .map(|a| (a.address.clone(), a.op))
            .collect();
        (actions, plan.warnings, plan.summary)
    }

    /// Renames, moves across groups, deletes and a hint found across groups: groups of one
    /// tenant plan what one group of all does, deletes last and in one order.
    #[test]
    fn groups_of_any_size_plan_the_same_changes() {
        let before = model(
            "kind: Tenant\nname: alpha\n---\nkind: Tenant\nname: bravo\n---\n\
             kind: Tenant\nname: charlie\nmicrosoftTenantId: 00000000-0000-4000-8000-000000000003\n---\n\
             kind: Organization\nname: zulu\n---\n\
             kind: Organization\nname: a-office\ntenant: alpha\n---\n\
             kind: Organization\nname: b-office\ntenant: bravo\n---\n\
             kind: Organization\nname: gone-office\ntenant: bravo\n",
        );
        let state = applied(&before);
        // bravo renamed to yankee (another group), a-office moved to charlie's successor
        // delta (same Microsoft tenant: a hint), zulu's office renamed (and its implicit
        // tenant declared), gone-office removed.
        let after = model(
            "kind: Tenant\nname: alpha\n---\n\
             kind: Tenant\nname: yankee\nformerNames: [bravo]\n---\n\
             kind: Tenant\nname: delta\nmicrosoftTenantId: 00000000-0000-4000-8000-000000000003\n---\n\
             kind: Organization\nname: zulu-hq\nformerNames: [zulu]\ntenant: zulu\n---\n\
             kind: Tenant\nname: zulu\n---\n\
             kind: Organization\nname: a-office\ntenant: delta\n---\n\
             kind: Organization\nname: b-office\ntenant: yankee\n",
        );
        let whole = merged(plan_in_groups(&after, &state, 1000));
        assert_eq!(
            whole.0,
            [
                ("tenant.delta".to_string(), Op::Create),
                ("tenant.yankee".to_string(), Op::Update),
                ("tenant.zulu".to_string(), Op::Update),
                ("organization.a-office".to_string(), Op::Update),
                ("organization.b-office".to_string(), Op::Update),
                ("organization.zulu-hq".to_string(), Op::Update),
                ("organization.gone-office".to_string(), Op::Delete),
                ("tenant.charlie".to_string(), Op::Delete),
            ]
        );
        assert_eq!(whole.1.len(), 1, "{:?}", whole.1);
        assert!(
            whole.1[0].contains("formerNames: [charlie]"),
            "{:?}",
            whole.1
        );
        for per_group in [1, 2, 3] {
            let grouped = merged(plan_in_groups(&after, &state, per_group));
            let mut sorted = grouped.0.clone();
            let mut expected = whole.0.clone();
            sorted.sort();
            expected.sort();
            assert_eq!(sorted, expected, "groups of {per_group}");
            assert_eq!(
                grouped.0[grouped.0.len() - 2..],
                whole.0[whole.0.len() - 2..],
                "deletes last, organizations first"
            );
            assert_eq!(grouped.1, whole.1, "groups of {per_group}");
            assert_eq!(grouped.2, whole.2, "groups of {per_group}");
        }
        // A plan after the apply of it is empty in any grouping.
        let now = applied(&after);
        for per_group in [1, 1000] {
            let again = merged(plan_in_groups(&after, &now, per_group));
            assert_eq!(again.0, [], "groups of {per_group}");
        }
    }

    #[test]
    fn records_go_with_the_group_of_their_current_tenant() {
        let m = model(
            "kind: Tenant\nname: a\n---\nkind: Tenant\nname: m\nformerNames: [z]\n---\n\
             kind: Tenant\nname: x\n---\nkind: Organization\nname: o1\ntenant: x\nformerNames: [o0]\n",
        );
        assert_eq!(CatalogGroups::new(&m, 2).len(), 2, "a, m | x");
        assert_eq!(CatalogGroups::new(&m, 3).len(), 1);
        let groups = CatalogGroups::new(&m, 1);
        assert_eq!(groups.len(), 3);
        let object = |tenant: &str| crate::state::test_object("organization", Some(tenant));
        let fleet = DesiredFleet::in_memory(m.clone());
        let stored = CatalogGroups::new(&fleet, 1);
        for (address, tenant, group, why) in [
            ("tenant.a", "", 0, "declared"),
            ("tenant.z", "", 1, "former name of m"),
            ("tenant.b", "", 0, "undeclared: by name"),
            ("organization.o1", "a", 2, "declared under x"),
            ("organization.o0", "a", 2, "renamed to o1"),
            ("organization.gone", "m", 1, "its stored tenant"),
            ("future.thing", "x", 0, "unknown kind"),
        ] {
            assert_eq!(groups.of_object(address, &object(tenant)), group, "{why}");
            assert_eq!(
                stored.of_object(address, &object(tenant)),
                group,
                "{why}: fleet"
            );
        }
        for g in 0..3 {
            assert_eq!(groups.desired(g).unwrap(), stored.desired(g).unwrap());
        }
        assert_eq!(groups.desired(2).unwrap().organizations.len(), 1);
        assert_eq!(
            groups
                .desired(1)
                .unwrap()
                .tenants
                .keys()
                .collect::<Vec<_>>(),
            ["m"]
        );
    }
}
