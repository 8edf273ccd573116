//! The desired fleet as a run holds it: tenants and drift exceptions in memory, and
//! organizations, guests and role assignments, the bulk of a large fleet, in a [`Spill`]
//! indexed by tenant. A plan reads each tenant's part when it plans that tenant (its
//! organizations with the catalog group it is in), so what a run holds of its manifests grows
//! with the tenants, not with their objects.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::spill::Spill;
use super::unique::{Key, key};
use super::{DesiredModel, Guest, Organization, RoleAssignment, TenantSet};

/// How errors name the object store (an unlinked file in the temporary directory).
pub const STORE_PATH: &str = "temporary store of resolved manifests (in $TMPDIR)";

/// One line of the object store.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Record {
    Guest(Guest),
    RoleAssignment(RoleAssignment),
    Organization(Organization),
}

impl Record {
    fn tenants(&self) -> &TenantSet {
        match self {
            Record::Guest(g) => &g.tenants,
            Record::RoleAssignment(a) => &a.tenants,
            Record::Organization(_) => unreachable!("organizations are stored apart"),
        }
    }

    /// The record as the one tenant of `only` sees it.
    fn into_narrowed(mut self, only: &TenantSet) -> Record {
        match &mut self {
            Record::Guest(g) => g.tenants = only.clone(),
            Record::RoleAssignment(a) => a.tenants = only.clone(),
            Record::Organization(_) => {}
        }
        self
    }

    /// [`Record::into_narrowed`] of a kept record (built field by field: a wide record's
    /// tenant list is never copied).
    fn narrowed(&self, only: &TenantSet) -> Record {
        match self {
            Record::Guest(g) => Record::Guest(Guest {
                name: g.name.clone(),
                email: g.email.clone(),
                display_name: g.display_name.clone(),
                tenants: only.clone(),
                invitation: g.invitation.clone(),
            }),
            Record::RoleAssignment(a) => Record::RoleAssignment(RoleAssignment {
                name: a.name.clone(),
                principal: a.principal.clone(),
                directory_roles: a.directory_roles.clone(),
                scope: a.scope.clone(),
                tenants: only.clone(),
                msp_roles: a.msp_roles.clone(),
            }),
            Record::Organization(o) => Record::Organization(o.clone()),
        }
    }
}

/// A [`Record`] to write (the same JSON).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum RecordRef<'a> {
    Guest(&'a Guest),
    RoleAssignment(&'a RoleAssignment),
    Organization(&'a Organization),
}

impl RecordRef<'_> {
    fn line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serializes")
    }
}

/// Adds a record's SHA-256 to a digest's sum (four wrapping u64 lanes).
fn add_to_sum(sum: &mut [u64; 4], line: &[u8]) {
    let hash = Sha256::digest(line);
    for (lane, bytes) in sum.iter_mut().zip(hash.chunks(8)) {
        *lane = lane.wrapping_add(u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
    }
}

/// The digest of a whole model in memory: the same as [`DesiredFleet::digest`] of its fleet.
pub fn model_digest(model: &DesiredModel) -> String {
    let mut sum = [0; 4];
    for guest in model.guests.values() {
        add_to_sum(&mut sum, &RecordRef::Guest(guest).line());
    }
    for assignment in model.role_assignments.values() {
        add_to_sum(&mut sum, &RecordRef::RoleAssignment(assignment).line());
    }
    for organization in model.organizations.values() {
        add_to_sum(&mut sum, &RecordRef::Organization(organization).line());
    }
    digest(model, sum)
}

/// What the manifests ask for, as one hash: the JSON of tenants and drift exceptions and the
/// sum of the stored records' hashes (so they count in any order they were stored in).
fn digest(catalog: &DesiredModel, sum: [u64; 4]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tenantform desired fleet v3\n");
    for part in [
        serde_json::to_vec(&catalog.tenants),
        serde_json::to_vec(&catalog.drift_exceptions),
    ] {
        hasher.update(part.expect("the catalog serializes"));
        hasher.update(b"\n");
    }
    // Only when there are any, so fleets without end-user syncs keep their digests.
    if !catalog.end_user_syncs.is_empty() {
        let syncs = serde_json::to_vec(&catalog.end_user_syncs).expect("syncs serialize");
        hasher.update(&syncs);
        hasher.update(b"\n");
    }
    // Likewise tenant policies: what drift holds tenants to is part of what the manifests ask.
    if !catalog.tenant_policies.is_empty() {
        let policies = serde_json::to_vec(&catalog.tenant_policies).expect("policies serialize");
        hasher.update(&policies);
        hasher.update(b"\n");
    }
    // Likewise GDAP relationships.
    if !catalog.gdap_relationships.is_empty() {
        let gdap = serde_json::to_vec(&catalog.gdap_relationships).expect("GDAP serializes");
        hasher.update(&gdap);
        hasher.update(b"\n");
    }
    for lane in sum {
        hasher.update(lane.to_le_bytes());
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A byte range of consecutive records that all target one tenant.
#[derive(Clone, Copy)]
struct Run {
    start: u64,
    end: u64,
}

/// Adds `run` to `runs`, merged with the last one when it follows it.
fn extend_runs(runs: &mut Vec<Run>, run: Run) {
    match runs.last_mut() {
        Some(last) if last.end == run.start => last.end = run.end,
        _ => runs.push(run),
    }
}

/// Records that target more tenants than this stay in memory, parsed once: every tenant
/// they target reads them (an engineer selected into thousands of tenants would otherwise be
/// parsed, with its whole tenant list, once per tenant), and they cost memory in proportion
/// to their tenants, as the index does anyway.
const WIDE: usize = 8;

/// Where one tenant's objects are.
#[derive(Default)]
struct TenantObjects {
    runs: Vec<Run>,
    /// Positions in [`ObjectStore::wide`].
    wide: Vec<u32>,
    /// The organizations under it (read with the catalog, not with its slice).
    organizations: Vec<Run>,
}

/// Guests and role assignments on disk, with where each tenant's are.
pub struct ObjectStore {
    spill: Spill,
    by_tenant: HashMap<Box<str>, TenantObjects>,
    wide: Vec<Record>,
    /// Sum of each record's SHA-256 (four wrapping u64 lanes): the same objects give the same
    /// sum in any order.
    sum: [u64; 4],
    guests: usize,
    role_assignments: usize,
    organizations: usize,
}

impl ObjectStore {
    pub fn new() -> ObjectStore {
        ObjectStore::new_in(Spill::new())
    }

    fn new_in(spill: Spill) -> ObjectStore {
        ObjectStore {
            spill,
            by_tenant: HashMap::new(),
            wide: Vec::new(),
            sum: [0; 4],
            guests: 0,
            role_assignments: 0,
            organizations: 0,
        }
    }

    pub fn add_organization(&mut self, organization: Organization) -> std::io::Result<()> {
        self.organizations += 1;
        let line = RecordRef::Organization(&organization).line();
        add_to_sum(&mut self.sum, &line);
        let start = self.spill.append(&line)?;
        let end = self.spill.len();
        extend_runs(
            &mut self.objects_of(&organization.tenant).organizations,
            Run { start, end },
        );
        Ok(())
    }

    /// The organizations under `tenant`.
    fn organizations_of(&self, tenant: &str) -> std::io::Result<Vec<Organization>> {
        let mut out = Vec::new();
        for run in self
            .by_tenant
            .get(tenant)
            .map_or(&[][..], |o| &o.organizations)
        {
            self.records(*run, &mut |record| {
                if let Record::Organization(o) = record {
                    out.push(o);
                }
            })?;
        }
        Ok(out)
    }

    pub fn add_guest(&mut self, guest: Guest) -> std::io::Result<()> {
        self.guests += 1;
        let line = RecordRef::Guest(&guest).line();
        self.add(&line, Record::Guest(guest))
    }

    pub fn add_role_assignment(&mut self, assignment: RoleAssignment) -> std::io::Result<()> {
        self.role_assignments += 1;
        let line = RecordRef::RoleAssignment(&assignment).line();
        self.add(&line, Record::RoleAssignment(assignment))
    }

    fn add(&mut self, line: &[u8], record: Record) -> std::io::Result<()> {
        add_to_sum(&mut self.sum, line);
        let tenants = record.tenants();
        if tenants.len() > WIDE {
            let position = self.wide.len() as u32;
            for tenant in tenants {
                self.objects_of(tenant).wide.push(position);
            }
            self.wide.push(record);
            return Ok(());
        }
        let start = self.spill.append(line)?;
        let end = self.spill.len();
        for tenant in tenants {
            extend_runs(&mut self.objects_of(tenant).runs, Run { start, end });
        }
        Ok(())
    }

    fn objects_of(&mut self, tenant: &str) -> &mut TenantObjects {
        if !self.by_tenant.contains_key(tenant) {
            self.by_tenant
                .insert(tenant.into(), TenantObjects::default());
        }
        self.by_tenant.get_mut(tenant).expect("just inserted")
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        for objects in self.by_tenant.values_mut() {
            objects.runs.shrink_to_fit();
            objects.wide.shrink_to_fit();
            objects.organizations.shrink_to_fit();
        }
        self.by_tenant.shrink_to_fit();
        self.spill.finish()
    }

    fn records(&self, run: Run, each: &mut dyn FnMut(Record)) -> std::io::Result<()> {
        let bytes = self.spill.read(run.start, run.end)?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            each(serde_json::from_slice(line).map_err(std::io::Error::other)?);
        }
        Ok(())
    }
}

impl Default for ObjectStore {
    fn default() -> Self {
        ObjectStore::new()
    }
}

/// Validated manifests: the catalog in memory, guests and role assignments by tenant on disk.
pub struct DesiredFleet {
    /// Tenants and drift exceptions; its `organizations`, `guests` and `role_assignments`
    /// are empty (they are in the object store: see [`DesiredFleet::slice`] and
    /// [`DesiredFleet::organizations_of`]).
    pub catalog: DesiredModel,
    objects: ObjectStore,
    /// Drift exceptions' names by tenant, so a slice never scans them all.
    exceptions_by_tenant: HashMap<String, Vec<String>>,
    /// Each organization's tenant, as its position among the tenants (in name order), by the
    /// organization's name key, sorted by key: what grouping the stored catalog needs of
    /// 30,000 of them (a hash map of them took three times the room).
    organization_tenants: Box<[(Key, u32)]>,
    /// The organization renamed from a former name.
    renamed_organizations: HashMap<String, String>,
}

impl std::fmt::Debug for DesiredFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredFleet")
            .field("tenants", &self.catalog.tenants.len())
            .field("guests", &self.objects.guests)
            .field("role_assignments", &self.objects.role_assignments)
            .finish()
    }
}

impl DesiredFleet {
    /// The fleet of `catalog` (its organizations go to the store) and the stored objects.
    pub fn new(
        mut catalog: DesiredModel,
        mut objects: ObjectStore,
    ) -> std::io::Result<DesiredFleet> {
        debug_assert!(catalog.guests.is_empty() && catalog.role_assignments.is_empty());
        for (_, organization) in std::mem::take(&mut catalog.organizations) {
            objects.add_organization(organization)?;
        }
        objects.finish()?;
        let mut exceptions_by_tenant: HashMap<String, Vec<String>> = HashMap::new();
        for (name, exception) in &catalog.drift_exceptions {
            exceptions_by_tenant
                .entry(exception.tenant.clone())
                .or_default()
                .push(name.clone());
        }
        let mut organization_tenants = Vec::with_capacity(objects.organizations);
        let mut renamed_organizations = HashMap::new();
        for (position, tenant) in catalog.tenants.keys().enumerate() {
            for organization in objects.organizations_of(tenant)? {
                organization_tenants.push((key(&organization.name), position as u32));
                for former in organization.former_names {
                    renamed_organizations.insert(former, organization.name.clone());
                }
            }
        }
        organization_tenants.sort_unstable();
        // Names are unique: one entry a key.
        organization_tenants.dedup_by_key(|(key, _)| *key);
        Ok(DesiredFleet {
            catalog,
            objects,
            exceptions_by_tenant,
            organization_tenants: organization_tenants.into_boxed_slice(),
            renamed_organizations,
        })
    }

    /// The organizations under `tenant`, in the order they were declared.
    pub fn organizations_of(&self, tenant: &str) -> std::io::Result<Vec<Organization>> {
        self.objects.organizations_of(tenant)
    }

    /// The position (among the tenants, in name order) of the tenant organization `name` is
    /// declared under.
    pub fn organization_tenant(&self, name: &str) -> Option<usize> {
        let wanted = key(name);
        self.organization_tenants
            .binary_search_by_key(&wanted, |(key, _)| *key)
            .ok()
            .map(|at| self.organization_tenants[at].1 as usize)
    }

    /// The organization renamed from `former`.
    pub fn renamed_organization(&self, former: &str) -> Option<&str> {
        self.renamed_organizations.get(former).map(String::as_str)
    }

    pub fn organization_count(&self) -> usize {
        self.objects.organizations
    }

    /// A fleet of a whole model, its objects kept in memory (no I/O: the pure planner's
    /// tenant-by-tenant path slices models this way).
    pub fn in_memory(mut model: DesiredModel) -> DesiredFleet {
        let mut objects = ObjectStore::new_in(Spill::default());
        let in_memory = "a spill in memory cannot fail";
        for (_, guest) in std::mem::take(&mut model.guests) {
            objects.add_guest(guest).expect(in_memory);
        }
        for (_, assignment) in std::mem::take(&mut model.role_assignments) {
            objects.add_role_assignment(assignment).expect(in_memory);
        }
        DesiredFleet::new(model, objects).expect(in_memory)
    }

    /// The model as far as `tenant` is concerned: its tenant record, the guests and role
    /// assignments that target it (narrowed to it) and its drift exceptions. Organizations are
    /// fleet records, planned with the catalog, so they are left out. Costs one read of the
    /// tenant's records; never a scan of the fleet.
    pub fn slice(&self, tenant: &str) -> std::io::Result<DesiredModel> {
        let catalog = &self.catalog;
        let mut slice = DesiredModel::default();
        if let Some(t) = catalog.tenants.get(tenant) {
            slice.tenants.insert(t.name.clone(), t.clone());
        }
        if let Some(sync) = catalog.end_user_syncs.get(tenant) {
            slice
                .end_user_syncs
                .insert(tenant.to_string(), sync.clone());
        }
        if let Some(relationships) = catalog.gdap_relationships.get(tenant) {
            slice
                .gdap_relationships
                .insert(tenant.to_string(), relationships.clone());
        }
        for name in self.exceptions_by_tenant.get(tenant).into_iter().flatten() {
            slice
                .drift_exceptions
                .insert(name.clone(), catalog.drift_exceptions[name].clone());
        }
        let Some(objects) = self.objects.by_tenant.get(tenant) else {
            return Ok(slice);
        };
        let only = TenantSet::one(tenant);
        let mut add = |record: Record| match record {
            Record::Guest(guest) => {
                slice.guests.insert(guest.name.clone(), guest);
            }
            Record::RoleAssignment(assignment) => {
                slice
                    .role_assignments
                    .insert(assignment.name.clone(), assignment);
            }
            Record::Organization(_) => {}
        };
        for run in &objects.runs {
            self.objects
                .records(*run, &mut |record| add(record.into_narrowed(&only)))?;
        }
        for &position in &objects.wide {
            add(self.objects.wide[position as usize].narrowed(&only));
        }
        Ok(slice)
    }

    /// The whole model, read back (small fleets, tests, and commands that need every object).
    pub fn to_model(&self) -> std::io::Result<DesiredModel> {
        let mut model = self.catalog.clone();
        let mut organizations = Vec::with_capacity(self.objects.organizations);
        let mut guests = Vec::with_capacity(self.objects.guests);
        let mut assignments = Vec::with_capacity(self.objects.role_assignments);
        self.objects.records(
            Run {
                start: 0,
                end: self.objects.spill.len(),
            },
            &mut |record| match record {
                Record::Guest(g) => guests.push((g.name.clone(), g)),
                Record::RoleAssignment(a) => assignments.push((a.name.clone(), a)),
                Record::Organization(o) => organizations.push((o.name.clone(), o)),
            },
        )?;
        for record in self.objects.wide.iter().cloned() {
            match record {
                Record::Guest(g) => guests.push((g.name.clone(), g)),
                Record::RoleAssignment(a) => assignments.push((a.name.clone(), a)),
                Record::Organization(o) => organizations.push((o.name.clone(), o)),
            }
        }
        model.organizations = organizations.into_iter().collect();
        model.guests = guests.into_iter().collect();
        model.role_assignments = assignments.into_iter().collect();
        Ok(model)
    }

    /// Tenants that guests or role assignments target.
    pub fn tenants_with_objects(&self) -> impl Iterator<Item = &str> {
        self.objects
            .by_tenant
            .iter()
            .filter(|(_, o)| !o.runs.is_empty() || !o.wide.is_empty())
            .map(|(t, _)| &**t)
    }

    pub fn guest_count(&self) -> usize {
        self.objects.guests
    }

    pub fn role_assignment_count(&self) -> usize {
        self.objects.role_assignments
    }

    /// A digest of everything the manifests ask for: a saved plan records it, and apply
    /// refuses the plan when the manifests changed since. Computed as the objects were
    /// stored, so it costs no pass over the fleet.
    pub fn digest(&self) -> String {
        digest(&self.catalog, self.objects.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceFile, SourceSet};

    /// Twelve mapped tenants; a guest in one of them, an engineer selected into all twelve
    /// (a wide record), their role assignments, and a drift exception.
    fn validated() -> DesiredFleet {
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!(
                "kind: Tenant\nname: t{i:02}\nmicrosoftTenantId: 00000000-0000-4000-8000-{i:012}\nlabels: {{tier: gold}}\n---\n"
            ));
        }
        text.push_str(
            "kind: GuestUser\nname: ada\nemail: ada@msp.example\ntenants: [t03]\n---\n\
             kind: RoleAssignment\nname: ada-roles\nprincipal: {guest: ada}\ndirectoryRoles: [Global Reader]\n---\n\
             kind: GuestUser\nname: bob\nemail: bob@msp.example\ntenants: {selector: tier=gold}\n---\n\
             kind: RoleAssignment\nname: bob-roles\nprincipal: {guest: bob@MSP.example}\ndirectoryRoles: [Helpdesk Administrator]\nmspRoles: [TenantAdmin]\n---\n\
             kind: DriftException\nname: known\ntenant: t03\naddress: guest.t03.*\nreason: known\nexpires: 2099-01-01\n---\n\
             kind: Organization\nname: t03-boston\ntenant: t03\nformerNames: [boston]\n---\n\
             kind: Organization\nname: t03-nyc\ntenant: t03\n",
        );
        let mut sources = SourceSet::new();
        sources.add(SourceFile::new("fleet.yaml", text));
        let v = crate::validate_sources(&mut sources, Vec::new()).unwrap();
        assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
        v.fleet
    }

    #[test]
    fn the_store_reads_back_the_whole_model_with_the_same_digest() {
        let fleet = validated();
        let model = fleet.to_model().unwrap();
        assert_eq!((model.guests.len(), model.role_assignments.len()), (2, 2));
        assert_eq!(model.organizations.len(), 2);
        assert_eq!(fleet.organization_count(), 2);
        assert!(fleet.catalog.organizations.is_empty(), "in the store");
        let names = |orgs: Vec<crate::model::Organization>| -> Vec<String> {
            orgs.into_iter().map(|o| o.name).collect()
        };
        assert_eq!(
            names(fleet.organizations_of("t03").unwrap()),
            ["t03-boston", "t03-nyc"]
        );
        assert_eq!(
            fleet.organization_tenant("t03-nyc"),
            Some(3),
            "t03 is fourth"
        );
        assert_eq!(fleet.organization_tenant("boston"), None);
        assert_eq!(fleet.renamed_organization("boston"), Some("t03-boston"));
        assert_eq!(
            model.guests["bob"].tenants.len(),
            12,
            "wide record kept whole"
        );
        assert_eq!(
            model.role_assignments["bob-roles"].principal,
            crate::model::Principal::Guest("bob".into()),
            "referenced by email, resolved to the name"
        );
        assert_eq!(fleet.digest(), model_digest(&model));
        let in_memory = DesiredFleet::in_memory(model.clone());
        assert_eq!(in_memory.digest(), fleet.digest());
        assert_eq!(in_memory.to_model().unwrap(), model);
        let mut changed = model.clone();
        changed.guests.get_mut("ada").unwrap().display_name = "Ada L.".into();
        assert_ne!(model_digest(&changed), fleet.digest());
        let mut moved = model.clone();
        moved.organizations.get_mut("t03-nyc").unwrap().tenant = "t04".into();
        assert_ne!(model_digest(&moved), fleet.digest());
    }

    #[test]
    fn a_slice_is_the_tenants_objects_narrowed_to_it() {
        let fleet = validated();
        let model = fleet.to_model().unwrap();
        for tenant in model.tenants.keys() {
            let slice = fleet.slice(tenant).unwrap();
            let only = TenantSet::one(tenant);
            let mut expected = DesiredModel::default();
            expected
                .tenants
                .insert(tenant.clone(), model.tenants[tenant].clone());
            for g in model.guests.values().filter(|g| g.tenants.contains(tenant)) {
                let mut g = g.clone();
                g.tenants = only.clone();
                expected.guests.insert(g.name.clone(), g);
            }
            for a in model
                .role_assignments
                .values()
                .filter(|a| a.tenants.contains(tenant))
            {
                let mut a = a.clone();
                a.tenants = only.clone();
                expected.role_assignments.insert(a.name.clone(), a);
            }
            for (name, e) in &model.drift_exceptions {
                if &e.tenant == tenant {
                    expected.drift_exceptions.insert(name.clone(), e.clone());
                }
            }
            assert_eq!(slice, expected, "{tenant}");
        }
        assert_eq!(fleet.slice("t03").unwrap().guests.len(), 2);
        assert_eq!(fleet.slice("nobody").unwrap(), DesiredModel::default());
        let mut with_objects: Vec<&str> = fleet.tenants_with_objects().collect();
        with_objects.sort();
        assert_eq!(with_objects.len(), 12);
    }
}
