//! Resolution, in two passes so a large fleet is never held whole. Pass one takes the decoded
//! documents a round of files at a time: tenants and drift exceptions stay in memory;
//! organizations (tens of thousands in a large fleet) are written to a [`Spill`] as their
//! documents say, and so is each guest and role assignment, with a fixed-size record of its
//! keys (`keys`). Pass two, once every tenant
//! is known, checks the catalog, finds duplicate names and emails and the guests role
//! assignments name a partition of keys at a time, then reads the spills back in document
//! order, resolves targets and references, and stores each resolved object by tenant
//! ([`ObjectStore`]).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::fleet::{DesiredFleet, ObjectStore};
use super::guests::{GuestSpills, GuestTable};
use super::keys::AssignmentKeys;
use super::spill::Spill;
use super::unique::{check_unique, key};
use super::{DesiredModel, DriftException, Guest, RoleAssignment};
use crate::diagnostic::Diagnostic;
use crate::manifest::selector::Selector;
use crate::manifest::{
    Document, DriftExceptionDoc, Manifest, MspRole, OrganizationDoc, PrincipalDoc,
    RoleAssignmentDoc, TenantTargets,
};
use crate::source::{Loc, Located};

/// Tenant targets as pass one keeps them for pass two.
#[derive(Serialize, Deserialize)]
pub(super) enum PendingTargets {
    Names(Vec<(String, Loc)>),
    Selector(Selector, Loc),
}

impl PendingTargets {
    pub(super) fn of(targets: &TenantTargets) -> PendingTargets {
        match targets {
            TenantTargets::Names(names) => {
                PendingTargets::Names(names.iter().map(|n| (n.value.clone(), n.loc)).collect())
            }
            TenantTargets::Selector { selector } => {
                PendingTargets::Selector(selector.value.clone(), selector.loc)
            }
        }
    }

    pub(super) fn into_targets(self) -> TenantTargets {
        match self {
            PendingTargets::Names(names) => TenantTargets::Names(
                names
                    .into_iter()
                    .map(|(n, loc)| Located::new(n, loc))
                    .collect(),
            ),
            PendingTargets::Selector(selector, loc) => TenantTargets::Selector {
                selector: Located::new(selector, loc),
            },
        }
    }
}

/// An organization as pass one keeps it for pass two (on disk: a large fleet has tens of
/// thousands).
#[derive(Serialize, Deserialize)]
struct PendingOrganization {
    name: (String, Loc),
    display_name: Option<(String, Loc)>,
    tenant: Option<(String, Loc)>,
    former_names: Vec<(String, Loc)>,
}

impl PendingOrganization {
    fn of(doc: &OrganizationDoc) -> PendingOrganization {
        let pair = |l: &Located<String>| (l.value.clone(), l.loc);
        PendingOrganization {
            name: pair(&doc.name),
            display_name: doc.display_name.as_ref().map(pair),
            tenant: doc.tenant.as_ref().map(pair),
            former_names: doc.former_names.iter().map(pair).collect(),
        }
    }

    fn into_doc(self) -> OrganizationDoc {
        let located = |(value, loc): (String, Loc)| Located::new(value, loc);
        OrganizationDoc {
            name: located(self.name),
            display_name: self.display_name.map(located),
            tenant: self.tenant.map(located),
            former_names: self.former_names.into_iter().map(located).collect(),
        }
    }
}

/// A guest after pass one: everything but its tenants.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingGuest {
    pub guest: Guest,
    pub name_loc: Loc,
    pub targets: PendingTargets,
}

#[derive(Serialize, Deserialize)]
pub(super) enum PendingPrincipal {
    Guest(String, Loc),
    UserId(String),
    GroupId(String),
}

/// A role assignment after pass one: what its document says.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingAssignment {
    pub name: String,
    pub name_loc: Loc,
    pub principal: PendingPrincipal,
    /// Role names or template ids as written.
    pub directory_roles: Vec<(String, Loc)>,
    pub targets: Option<PendingTargets>,
    pub scope: String,
    pub msp_roles: BTreeSet<MspRole>,
}

impl Resolver {
    /// Pass one over a round of documents, in file order.
    pub fn take(&mut self, documents: Vec<Document>) {
        for doc in documents {
            match doc.manifest {
                Manifest::Tenant(t) => self.add_tenant(&t),
                Manifest::Organization(o) => {
                    let line = serde_json::to_vec(&PendingOrganization::of(&o))
                        .expect("a pending organization serializes");
                    if let Err(e) = self.organizations.append(&line) {
                        self.fail(e);
                    }
                }
                Manifest::GuestUser(g) => self.take_guest(&g, doc.clean),
                Manifest::RoleAssignment(a) => self.take_role_assignment(&a),
                Manifest::DriftException(e) => self.exceptions.push(*e),
                Manifest::EndUserSync(s) => self.syncs.take(*s),
                Manifest::TenantPolicy(p) => self.policies.push((*p, doc.clean)),
                Manifest::GdapRelationship(g) => self.gdap.push((*g, doc.clean)),
            }
        }
        self.merge_new_tenants();
    }

    /// Adds the tenants taken since the last merge to the model. Merged a round of files at
    /// a time (and the implicit tenants at once): `append` builds the tree anew with full
    /// nodes, where inserting tenants one by one in name order (files are read in path order)
    /// leaves every node about half empty, and every tenant is kept for the whole run.
    fn merge_new_tenants(&mut self) {
        self.model.tenants.append(&mut self.new_tenants);
    }

    fn take_role_assignment(&mut self, doc: &RoleAssignmentDoc) {
        let (principal, guest) = match &doc.principal {
            PrincipalDoc::Guest(reference) => (
                PendingPrincipal::Guest(reference.value.clone(), reference.loc),
                Some((key(&reference.value), key(&reference.value.to_lowercase()))),
            ),
            PrincipalDoc::UserId(id) => (PendingPrincipal::UserId(id.value.to_lowercase()), None),
            PrincipalDoc::GroupId(id) => (PendingPrincipal::GroupId(id.value.to_lowercase()), None),
        };
        let pending = PendingAssignment {
            name: doc.name.value.clone(),
            name_loc: doc.name.loc,
            principal,
            directory_roles: doc
                .directory_roles
                .iter()
                .map(|r| (r.value.clone(), r.loc))
                .collect(),
            targets: doc.tenants.as_ref().map(PendingTargets::of),
            scope: doc
                .scope
                .as_ref()
                .map_or_else(|| "/".to_string(), |s| s.value.clone()),
            msp_roles: doc.msp_roles.iter().map(|r| r.value).collect(),
        };
        let line = serde_json::to_vec(&pending).expect("a pending assignment serializes");
        let written = self.pending_assignments.append(&line).and_then(|offset| {
            self.assignment_keys.append_raw(
                &AssignmentKeys {
                    name: key(&doc.name.value),
                    name_loc: doc.name.loc,
                    pending: offset,
                    guest,
                }
                .encode(),
            )
        });
        if let Err(e) = written {
            self.fail(e);
        }
    }

    pub(super) fn fail(&mut self, error: std::io::Error) {
        self.io_error.get_or_insert(error);
    }

    /// Pass two: the catalog's cross-document checks, then guests and role assignments:
    /// duplicates found a partition of keys at a time, then each read back in document order
    /// and resolved. Fails only when the spills cannot be written or read.
    pub fn finish(mut self) -> std::io::Result<(DesiredFleet, Vec<Diagnostic>)> {
        if let Some(error) = self.io_error.take() {
            return Err(error);
        }
        self.check_microsoft_ids();
        let mut organizations = std::mem::take(&mut self.organizations);
        organizations.finish()?;
        let doc = |line: &[u8]| -> std::io::Result<OrganizationDoc> {
            let pending: PendingOrganization =
                serde_json::from_slice(line).map_err(std::io::Error::other)?;
            Ok(pending.into_doc())
        };
        organizations.for_each_line(|_, line| {
            self.add_implicit_tenant(&doc(line)?);
            Ok(())
        })?;
        self.merge_new_tenants();
        let syncs = !self.syncs.is_empty();
        if syncs {
            self.resolve_sync_targets();
        }
        organizations.for_each_line(|_, line| {
            self.add_organization(&doc(line)?);
            Ok(())
        })?;
        drop(organizations);
        if syncs {
            self.finish_syncs();
        }
        self.check_former_names();
        self.guests.index_tenants(&self.model);

        let mut guests = GuestSpills {
            pending: std::mem::take(&mut self.pending_guests),
            keys: std::mem::take(&mut self.guest_keys),
            facts: Spill::new(),
            facts_keys: Spill::new(),
        };
        guests.pending.finish()?;
        guests.keys.finish()?;
        let verdicts = self.judge_guests(&guests)?;
        let GuestSpills {
            pending,
            keys,
            mut facts,
            mut facts_keys,
        } = guests;
        drop(keys);
        let mut seq = 0;
        pending.for_each_line(|_, line| {
            let verdict = verdicts[seq];
            seq += 1;
            if verdict.duplicate || verdict.email_taken {
                return Ok(());
            }
            let guest: PendingGuest =
                serde_json::from_slice(line).map_err(std::io::Error::other)?;
            self.add_guest(guest, verdict, &mut facts, &mut facts_keys)
        })?;
        drop(verdicts);
        facts.finish()?;
        facts_keys.finish()?;

        let mut assignments = std::mem::take(&mut self.pending_assignments);
        let mut assignment_keys = std::mem::take(&mut self.assignment_keys);
        assignments.finish()?;
        assignment_keys.finish()?;
        let duplicates = self.judge_assignments(&assignment_keys, &assignments)?;
        let found = self.find_guests(&assignment_keys, &duplicates, &facts_keys)?;
        drop((assignment_keys, facts_keys));
        let mut seq = 0;
        assignments.for_each_line(|_, line| {
            let (duplicate, guest) = (duplicates[seq], found[seq]);
            seq += 1;
            if duplicate {
                return Ok(());
            }
            let assignment: PendingAssignment =
                serde_json::from_slice(line).map_err(std::io::Error::other)?;
            self.add_role_assignment(assignment, guest, &facts, &pending)
        })?;
        drop((assignments, facts, pending));

        let (policies, clean): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.policies).into_iter().unzip();
        self.finish_policies(policies, clean);
        let gdap = std::mem::take(&mut self.gdap);
        self.finish_gdap(gdap);

        let mut exception_names = HashMap::new();
        for e in std::mem::take(&mut self.exceptions) {
            if !check_unique(
                &mut self.diags,
                &mut exception_names,
                "DriftException",
                &e.name,
            ) || !self.check_tenant_exists(&e.tenant, "drift exception")
            {
                continue;
            }
            self.model.drift_exceptions.insert(
                e.name.value.clone(),
                DriftException {
                    name: e.name.value.clone(),
                    tenant: e.tenant.value.clone(),
                    address: e.address.value.clone(),
                    reason: e.reason.value.clone(),
                    expires: e.expires.value.clone(),
                },
            );
        }
        if let Some(error) = self.io_error.take() {
            return Err(error);
        }
        Ok((DesiredFleet::new(self.model, self.objects)?, self.diags))
    }

    pub(super) fn store_role_assignment(
        &mut self,
        assignment: RoleAssignment,
    ) -> std::io::Result<()> {
        self.objects.add_role_assignment(assignment)
    }
}

/// Builds a [`DesiredFleet`]: documents go in a round at a time ([`Resolver::take`]), the
/// fleet and every problem found come out of [`Resolver::finish`].
pub struct Resolver {
    /// The catalog (tenants, organizations, drift exceptions).
    pub(super) model: DesiredModel,
    /// Tenants taken since the last [`Resolver::merge_new_tenants`].
    pub(super) new_tenants: std::collections::BTreeMap<String, super::Tenant>,
    pub(super) diags: Vec<Diagnostic>,
    /// Where each tenant's name was written (for explicit ones and for implicit ones: the org).
    /// By name key ([`super::unique::Key`]): a run keeps every tenant's.
    pub(super) tenant_locs: HashMap<super::unique::Key, Loc>,
    pub(super) org_locs: HashMap<super::unique::Key, Loc>,
    /// Name keys of the organizations stored (they are not kept in memory).
    pub(super) organization_keys: std::collections::HashSet<super::unique::Key>,
    pub(super) guests: GuestTable,
    /// (kind, owner, former names), checked once every current name is known.
    pub(super) former_names: Vec<(&'static str, String, Vec<Located<String>>)>,
    /// [`PendingOrganization`]s, in document order.
    organizations: Spill,
    exceptions: Vec<DriftExceptionDoc>,
    /// `TenantPolicy` documents (few: one per tenant at most), each with whether it decoded
    /// cleanly.
    policies: Vec<(crate::manifest::TenantPolicyDoc, bool)>,
    /// `GdapRelationship` documents (a few per tenant), each with whether it decoded cleanly.
    gdap: Vec<(crate::manifest::GdapRelationshipDoc, bool)>,
    pub(super) syncs: super::end_users::PendingSyncs,
    pub(super) pending_guests: Spill,
    pub(super) guest_keys: Spill,
    pending_assignments: Spill,
    assignment_keys: Spill,
    pub(super) objects: ObjectStore,
    /// Each label key and value once: fleets label thousands of tenants with a few words
    /// (`tier: gold`), and every tenant is kept for the whole run.
    pub(super) label_texts: std::collections::HashSet<super::LabelText>,
    io_error: Option<std::io::Error>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            model: DesiredModel::default(),
            new_tenants: std::collections::BTreeMap::new(),
            diags: Vec::new(),
            tenant_locs: HashMap::new(),
            org_locs: HashMap::new(),
            organization_keys: std::collections::HashSet::new(),
            guests: GuestTable::default(),
            former_names: Vec::new(),
            organizations: Spill::new(),
            exceptions: Vec::new(),
            policies: Vec::new(),
            gdap: Vec::new(),
            syncs: Default::default(),
            pending_guests: Spill::new(),
            guest_keys: Spill::new(),
            pending_assignments: Spill::new(),
            assignment_keys: Spill::new(),
            objects: ObjectStore::new(),
            label_texts: std::collections::HashSet::new(),
            io_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Code;
    use crate::model::Principal;
    use crate::source::{SourceFile, SourceSet};

    /// Unit tests partition keys three to a pass (`keys::PER_PARTITION`): duplicates and
    /// references are found across many passes, each against the first definition.
    #[test]
    fn duplicates_and_references_are_found_across_partitions() {
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!(
                "kind: Tenant\nname: t{i:02}\nmicrosoftTenantId: 00000000-0000-4000-8000-{i:012}\n---\n"
            ));
        }
        for i in 0..20 {
            text.push_str(&format!(
                "kind: GuestUser\nname: g{i:02}\nemail: g{i:02}@msp.example\ntenants: [t{:02}]\n---\n\
                 kind: RoleAssignment\nname: r{i:02}\nprincipal: {{guest: g{i:02}}}\ndirectoryRoles: [Global Reader]\n---\n",
                i % 12
            ));
        }
        text.push_str(
            "kind: GuestUser\nname: g05\nemail: other@msp.example\ntenants: [t00]\n---\n\
             kind: GuestUser\nname: h1\nemail: G07@MSP.example\ntenants: [t07]\n---\n\
             kind: RoleAssignment\nname: r20\nprincipal: {guest: G03@msp.EXAMPLE}\ndirectoryRoles: [Global Reader]\n---\n\
             kind: RoleAssignment\nname: r04\nprincipal: {guest: g04}\ndirectoryRoles: [Not A Role]\n---\n\
             kind: RoleAssignment\nname: r21\nprincipal: {guest: nobody}\nmspRoles: [TenantAdmin]\n---\n\
             kind: RoleAssignment\nname: r22\nprincipal: {guest: h1}\nmspRoles: [TenantAdmin]\n---\n\
             kind: RoleAssignment\nname: r23\nprincipal: {guest: g09}\ntenants: [t00]\nmspRoles: [TenantAdmin]\n",
        );
        let mut sources = SourceSet::new();
        let file = sources.add(SourceFile::new("fleet.yaml", text.clone()));
        let v = crate::validate_sources(&mut sources, Vec::new()).unwrap();
        let at =
            |needle: &str, nth: usize| text.match_indices(needle).nth(nth).map(|(i, _)| i as u32);
        let found: Vec<(Code, u32)> = v
            .diagnostics
            .iter()
            .map(|d| (d.code, d.labels[0].loc.offset))
            .collect();
        assert_eq!(
            found,
            [
                (Code::DuplicateName, at("name: g05", 1).unwrap() + 6),
                (Code::DuplicateEmail, at("G07@MSP", 0).unwrap()),
                (Code::DuplicateName, at("name: r04", 1).unwrap() + 6),
                (Code::UnknownGuest, at("nobody", 0).unwrap()),
                (Code::UnknownGuest, at("guest: h1", 0).unwrap() + 7),
                (Code::GuestNotInTenant, at("[t00]", 3).unwrap() + 1),
            ],
            "{:#?}",
            v.diagnostics
        );
        assert!(v.diagnostics.iter().all(|d| d.labels[0].loc.file == file));
        let duplicate_email = &v.diagnostics[1];
        assert_eq!(
            duplicate_email.message,
            "guests `g07` and `h1` have the same email G07@MSP.example"
        );
        let model = v.model().unwrap();
        assert_eq!(
            model.guests.len(),
            20,
            "the second g05 and h1 are not in the model"
        );
        assert_eq!(
            model.guests["g05"].email, "g05@msp.example",
            "the first g05 wins"
        );
        assert_eq!(model.role_assignments.len(), 21, "r00..r19 and r20");
        assert_eq!(
            model.role_assignments["r20"].principal,
            Principal::Guest("g03".into()),
            "found by email, case-insensitively"
        );
        assert_eq!(
            model.role_assignments["r04"].directory_roles[0]
                .display_name
                .as_deref(),
            Some("Global Reader"),
            "the first r04; the second's unknown role is not reported"
        );
        assert_eq!(
            model.role_assignments["r13"]
                .tenants
                .iter()
                .collect::<Vec<_>>(),
            ["t01"]
        );
    }
}
