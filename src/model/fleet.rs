//! The desired fleet as a run holds it: the catalog (tenants, organizations, drift
//! exceptions) in memory, and the guests and role assignments, the bulk of a large fleet, in
//! a [`Spill`] indexed by tenant. A plan reads each tenant's part when it plans that tenant,
//! so what a run holds of its manifests grows with the tenants, not with their objects.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::spill::Spill;
use super::{DesiredModel, Guest, RoleAssignment, TenantSet};

/// How errors name the object store (an unlinked file in the temporary directory).
pub const STORE_PATH: &str = "temporary store of resolved manifests (in $TMPDIR)";

/// One line of the object store.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Record {
    Guest(Guest),
    RoleAssignment(RoleAssignment),
}

/// A [`Record`] to write (the same JSON).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum RecordRef<'a> {
    Guest(&'a Guest),
    RoleAssignment(&'a RoleAssignment),
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
    digest(model, sum)
}

/// What the manifests ask for, as one hash: the catalog's JSON and the sum of the records'
/// hashes (so the objects count in any order they were stored in).
fn digest(catalog: &DesiredModel, sum: [u64; 4]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tenantform desired fleet v2\n");
    for part in [
        serde_json::to_vec(&catalog.tenants),
        serde_json::to_vec(&catalog.organizations),
        serde_json::to_vec(&catalog.drift_exceptions),
    ] {
        hasher.update(part.expect("the catalog serializes"));
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

/// Guests and role assignments on disk, with where each tenant's are.
pub struct ObjectStore {
    spill: Spill,
    by_tenant: HashMap<Box<str>, Vec<Run>>,
    /// Sum of each record's SHA-256 (four wrapping u64 lanes): the same objects give the same
    /// sum in any order.
    sum: [u64; 4],
    guests: usize,
    role_assignments: usize,
}

impl ObjectStore {
    pub fn new() -> ObjectStore {
        ObjectStore::new_in(Spill::new())
    }

    fn new_in(spill: Spill) -> ObjectStore {
        ObjectStore {
            spill,
            by_tenant: HashMap::new(),
            sum: [0; 4],
            guests: 0,
            role_assignments: 0,
        }
    }

    pub fn add_guest(&mut self, guest: Guest) -> std::io::Result<()> {
        self.guests += 1;
        self.add(&RecordRef::Guest(&guest).line(), &guest.tenants)
    }

    pub fn add_role_assignment(&mut self, assignment: RoleAssignment) -> std::io::Result<()> {
        self.role_assignments += 1;
        self.add(
            &RecordRef::RoleAssignment(&assignment).line(),
            &assignment.tenants,
        )
    }

    fn add(&mut self, line: &[u8], tenants: &TenantSet) -> std::io::Result<()> {
        add_to_sum(&mut self.sum, line);
        let start = self.spill.append(line)?;
        let end = self.spill.len();
        for tenant in tenants {
            let runs = match self.by_tenant.get_mut(tenant.as_str()) {
                Some(runs) => runs,
                None => self.by_tenant.entry(tenant.as_str().into()).or_default(),
            };
            match runs.last_mut() {
                Some(run) if run.end == start => run.end = end,
                _ => runs.push(Run { start, end }),
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        for runs in self.by_tenant.values_mut() {
            runs.shrink_to_fit();
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
    /// Tenants, organizations and drift exceptions; its `guests` and `role_assignments` are
    /// empty (they are in the object store: see [`DesiredFleet::slice`]).
    pub catalog: DesiredModel,
    objects: ObjectStore,
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
    pub fn new(catalog: DesiredModel, objects: ObjectStore) -> DesiredFleet {
        debug_assert!(catalog.guests.is_empty() && catalog.role_assignments.is_empty());
        DesiredFleet { catalog, objects }
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
        objects.finish().expect(in_memory);
        DesiredFleet::new(model, objects)
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
        for (name, exception) in &catalog.drift_exceptions {
            if exception.tenant == tenant {
                slice
                    .drift_exceptions
                    .insert(name.clone(), exception.clone());
            }
        }
        let only = TenantSet::one(tenant);
        for run in self.objects.by_tenant.get(tenant).into_iter().flatten() {
            self.objects.records(*run, &mut |record| match record {
                Record::Guest(mut guest) => {
                    guest.tenants = only.clone();
                    slice.guests.insert(guest.name.clone(), guest);
                }
                Record::RoleAssignment(mut assignment) => {
                    assignment.tenants = only.clone();
                    slice
                        .role_assignments
                        .insert(assignment.name.clone(), assignment);
                }
            })?;
        }
        Ok(slice)
    }

    /// The whole model, read back (small fleets, tests, and commands that need every object).
    pub fn to_model(&self) -> std::io::Result<DesiredModel> {
        let mut model = self.catalog.clone();
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
            },
        )?;
        model.guests = guests.into_iter().collect();
        model.role_assignments = assignments.into_iter().collect();
        Ok(model)
    }

    /// Tenants that guests or role assignments target.
    pub fn tenants_with_objects(&self) -> impl Iterator<Item = &str> {
        self.objects.by_tenant.keys().map(|t| &**t)
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
