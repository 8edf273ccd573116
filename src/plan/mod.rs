//! The plan: a pure diff of (desired model, stored state) into ordered actions.
//!
//! Each action has an address, an operation, a reason and attribute-level before/after. Live
//! Entra snapshots will join the inputs later and add the drift reasons without changing this
//! shape. Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::live::{LiveSnapshot, LiveTenant};
use crate::model::DesiredModel;
use crate::outcome::{Cause, Failure, Outcome, TenantOutcome};
use crate::resources::{DesiredObject, KINDS, address, kind};
use crate::state::{Attributes, Ids, State, StateObject};

/// Version of the plan JSON (`--output json` and saved plan files).
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Marks a file as a tenantform plan (so `apply FILE` can tell it from manifests).
pub const PLAN_MARKER: &str = "tenantform-plan";

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
    /// Tenants whose Entra objects could not be planned (consent needed, read failed, not read).
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
    /// Why (consent missing, token refused, permission missing, Graph error, not read).
    #[serde(flatten)]
    pub failure: Failure,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateRef {
    pub lineage: String,
    pub serial: u64,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Create,
    Update,
    Delete,
    /// Record an existing Entra object as owned, without changing it.
    Adopt,
    NoOp,
}

/// Why an action is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// In the manifests, not in state.
    NewInManifests,
    /// Manifest attributes differ from the last applied ones.
    ChangedInManifests,
    /// The stable name changed (`formerNames` or a renamed tenant); the object is kept.
    RenamedInManifests,
    /// In state, no longer in the manifests.
    RemovedFromManifests,
    /// Changed in Entra since the last apply.
    DriftedInEntra,
    /// Recorded in state but gone from Entra.
    MissingInEntra,
    /// In Entra already, but not created or adopted by tenantform.
    ExistsInEntra,
    /// `--resend-invitations` for an invitation still pending.
    ResendRequested,
    /// An interrupted apply created it in Entra without recording it; recorded now.
    Recovered,
    /// Recorded in state a moment ago and not visible in Entra yet (replication).
    PendingReplication,
    /// Waits for another object that is not planned or blocked (e.g. the guest of a role).
    WaitsForDependency,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NewInManifests => "new in manifests",
            Reason::ChangedInManifests => "changed in manifests",
            Reason::RenamedInManifests => "renamed in manifests",
            Reason::RemovedFromManifests => "removed from manifests",
            Reason::DriftedInEntra => "changed in Entra since last apply",
            Reason::MissingInEntra => "missing in Entra",
            Reason::ExistsInEntra => "exists in Entra, not owned by tenantform",
            Reason::ResendRequested => "invitation resend requested",
            Reason::Recovered => "created by an interrupted apply, recorded now",
            Reason::PendingReplication => "not visible in Entra yet (replication)",
            Reason::WaitsForDependency => "waits for an object that is not planned",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub address: String,
    pub kind: String,
    /// The tenant this object belongs to (plans are grouped per customer).
    pub tenant: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The address the object had in state, when it is renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// Attribute-level differences (`labels.tier` for nested values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttributeChange>,
    /// Attributes as last applied (updates and deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Value>>")]
    pub before: Option<Attributes>,
    /// Attributes to apply (creates and updates).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Value>>")]
    pub after: Option<Attributes>,
    /// Why this action will not be carried out (e.g. a delete without `--allow-delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Ids of the live Entra object (for updates, deletes and adoptions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub live_ids: Option<Ids>,
    /// Live information shown with the object, e.g. `PendingAcceptance since ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Action {
    /// Will apply do something for it?
    pub fn is_change(&self) -> bool {
        self.op != Op::NoOp && self.blocked.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributeChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
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

    /// 1 if any tenant failed; with `detailed`, 2 for changes; else 0.
    pub fn exit_code(&self, detailed: bool) -> u8 {
        crate::outcome::exit_code(&self.tenants, self.has_changes(), detailed)
    }
}

/// `sha256:<hex>` of the desired model: what "the manifests changed" means for a saved plan.
pub fn manifests_digest(model: &DesiredModel) -> String {
    /// Hashes what is written, so the model's JSON is never held in memory whole.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Sha256::new());
    serde_json::to_writer(&mut writer, model).expect("model serializes");
    let digest = writer.0.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Computes the plan.
pub fn plan(input: &PlanInput) -> Plan {
    let in_scope = |tenant: &str| input.options.in_scope(tenant);
    // Without a live snapshot, kinds that live in Entra are not planned: only their tenants
    // are listed as not read (without building their objects).
    let mut not_read: BTreeMap<String, TenantNotRead> = BTreeMap::new();
    let planned = |k: &&crate::resources::ResourceKind| input.live.is_some() || k.live.is_none();
    for k in KINDS.iter().filter(|k| !planned(k)) {
        let rules = k.live.as_ref().expect("only live kinds are skipped");
        for tenant in (rules.tenants)(input.desired)
            .into_iter()
            .filter(|t| in_scope(t))
        {
            readable(None, input.options.offline, &tenant, &mut not_read);
        }
    }
    // A tenant Entra was asked about and did not answer is not read, whatever it holds.
    if let Some(live) = input.live {
        for (tenant, status) in &live.tenants {
            if matches!(status, LiveTenant::Failed(_)) && in_scope(tenant) {
                readable(input.live, input.options.offline, tenant, &mut not_read);
            }
        }
    }
    let desired: Vec<DesiredObject> = KINDS
        .iter()
        .filter(planned)
        .flat_map(|k| (k.desired)(input.desired))
        .filter(|d| in_scope(&d.tenant))
        .collect();
    let desired_addresses: BTreeSet<&str> = desired.iter().map(|d| d.address.as_str()).collect();

    // The state as the manifests name it: objects with a former name move to the new address.
    let mut stored: BTreeMap<String, &StateObject> = input
        .state
        .objects
        .iter()
        .filter(|(a, o)| kind(&o.kind).is_none_or(|k| in_scope(&(k.tenant_of)(a, o))))
        .map(|(a, o)| (a.clone(), o))
        .collect();
    let mut moved_from: BTreeMap<String, String> = BTreeMap::new();
    for k in KINDS {
        for (current, formers) in (k.former_names)(input.desired) {
            let new = address(k.name, &current);
            if stored.contains_key(&new) {
                continue; // already renamed: former names are history
            }
            let Some(former) = formers.iter().find(|f| {
                let old = address(k.name, f);
                stored.contains_key(&old) && !desired_addresses.contains(old.as_str())
            }) else {
                continue;
            };
            move_object(&mut stored, &mut moved_from, &address(k.name, former), &new);
            if k.name == "tenant" {
                let addresses: Vec<String> = stored.keys().cloned().collect();
                for old in addresses {
                    let object_kind = kind(&stored[&old].kind);
                    if let Some(new) =
                        object_kind.and_then(|ok| (ok.after_tenant_rename)(&old, former, &current))
                        && !stored.contains_key(&new)
                        && !desired_addresses.contains(old.as_str())
                    {
                        move_object(&mut stored, &mut moved_from, &old, &new);
                    }
                }
            }
        }
    }

    let delete_blocked =
        || (!input.options.allow_delete).then(|| "deletes need --allow-delete".to_string());
    let mut actions = Vec::with_capacity(desired.len() + 8);
    for d in &desired {
        let k = kind(d.kind).expect("registered kind");
        let stored_object = stored.remove(&d.address);
        let from = moved_from.get(&d.address).cloned();
        if let Some(rules) = &k.live {
            let Some(dir) = readable(input.live, input.options.offline, &d.tenant, &mut not_read)
            else {
                continue;
            };
            let found = (rules.find)(dir, &d.attributes, stored_object);
            let pick = |a: &Attributes| -> Attributes {
                rules
                    .compared
                    .iter()
                    .filter_map(|c| a.get(*c).map(|v| ((*c).to_string(), v.clone())))
                    .collect()
            };
            let base = Action {
                address: d.address.clone(),
                kind: d.kind.to_string(),
                tenant: d.tenant.clone(),
                op: Op::NoOp,
                reason: None,
                moved_from: from.clone(),
                changes: Vec::new(),
                before: stored_object.map(|o| o.attributes.clone()),
                after: Some(d.attributes.clone()),
                blocked: None,
                warnings: Vec::new(),
                live_ids: found.as_ref().map(|l| l.ids.clone()),
                note: found.as_ref().and_then(|l| l.note.clone()),
            };
            // A create an interrupted apply started: what Entra has now is ours.
            let interrupted =
                stored_object.is_some_and(|o| o.ids.contains_key(crate::state::PENDING_ID));
            let action = match (stored_object, found) {
                (Some(_), Some(_)) if interrupted => Action {
                    op: Op::Adopt,
                    reason: Some(Reason::Recovered),
                    ..base
                },
                (Some(_), None) if interrupted => Action {
                    op: Op::Create,
                    reason: Some(Reason::NewInManifests),
                    changes: diff(&Attributes::new(), &d.attributes),
                    ..base
                },
                (None, None) => Action { op: Op::Create, reason: Some(Reason::NewInManifests), changes: diff(&Attributes::new(), &d.attributes), ..base },
                (None, Some(_)) => Action {
                    op: Op::Adopt,
                    reason: Some(Reason::ExistsInEntra),
                    blocked: (!input.options.adopt).then(|| "exists in Entra but is not owned: pass --adopt to manage it (it is never invited or created twice)".to_string()),
                    ..base
                },
                (Some(object), None) if replicating(object, &input.options, input.now) => Action {
                    after: None,
                    before: None,
                    reason: Some(Reason::PendingReplication),
                    note: Some(pending_note(object, &input.options)),
                    ..base
                },
                (Some(_), None) => Action { op: Op::Create, reason: Some(Reason::MissingInEntra), changes: diff(&Attributes::new(), &d.attributes), ..base },
                (Some(object), Some(live)) => {
                    let wanted = pick(&d.attributes);
                    let mut changes = diff(&live.attributes, &wanted);
                    let resend = input.options.resend_invitations && live.pending_invitation;
                    if resend {
                        changes.push(AttributeChange {
                            path: "invitation".into(),
                            before: Some(Value::String("PendingAcceptance".into())),
                            after: Some(Value::String("resent".into())),
                        });
                    }
                    if changes.is_empty() && from.is_none() {
                        Action { after: None, before: None, ..base }
                    } else {
                        let reason = if from.is_some() {
                            Reason::RenamedInManifests
                        } else if resend && changes.len() == 1 {
                            Reason::ResendRequested
                        } else if pick(&object.attributes) == wanted {
                            Reason::DriftedInEntra
                        } else {
                            Reason::ChangedInManifests
                        };
                        Action { op: Op::Update, reason: Some(reason), changes, ..base }
                    }
                }
            };
            actions.push(action);
            continue;
        }
        let action = match stored_object {
            None => Action {
                address: d.address.clone(),
                kind: d.kind.to_string(),
                tenant: d.tenant.clone(),
                op: Op::Create,
                reason: Some(Reason::NewInManifests),
                moved_from: None,
                changes: diff(&Attributes::new(), &d.attributes),
                before: None,
                after: Some(d.attributes.clone()),
                blocked: None,
                warnings: Vec::new(),
                live_ids: None,
                note: None,
            },
            Some(object) => {
                let changes = diff(&object.attributes, &d.attributes);
                let (op, reason) = match (changes.is_empty(), &from) {
                    (true, None) => (Op::NoOp, None),
                    (_, Some(_)) => (Op::Update, Some(Reason::RenamedInManifests)),
                    (false, None) => (Op::Update, Some(Reason::ChangedInManifests)),
                };
                let warnings = if op == Op::Update {
                    (k.update_warnings)(&d.address, &object.attributes, &d.attributes)
                } else {
                    Vec::new()
                };
                Action {
                    address: d.address.clone(),
                    kind: d.kind.to_string(),
                    tenant: d.tenant.clone(),
                    op,
                    reason,
                    moved_from: from,
                    changes,
                    before: (op != Op::NoOp).then(|| object.attributes.clone()),
                    after: (op != Op::NoOp).then(|| d.attributes.clone()),
                    blocked: None,
                    warnings,
                    live_ids: None,
                    note: None,
                }
            }
        };
        actions.push(action);
    }
    for (addr, object) in stored {
        let k = kind(&object.kind);
        let tenant = k.map_or_else(String::new, |k| (k.tenant_of)(&addr, object));
        let mut live_ids = None;
        let mut reason = Reason::RemovedFromManifests;
        if let Some(rules) = k.and_then(|k| k.live.as_ref()) {
            // Never delete what cannot be seen: unreadable tenants keep their objects.
            let Some(dir) = readable(input.live, input.options.offline, &tenant, &mut not_read)
            else {
                continue;
            };
            match (rules.find)(dir, &object.attributes, Some(object)) {
                Some(live) => live_ids = Some(live.ids),
                None => reason = Reason::MissingInEntra,
            }
        }
        actions.push(Action {
            changes: diff(&object.attributes, &Attributes::new()),
            address: addr,
            kind: object.kind.clone(),
            tenant,
            op: Op::Delete,
            reason: Some(reason),
            moved_from: None,
            before: Some(object.attributes.clone()),
            after: None,
            blocked: delete_blocked(),
            warnings: Vec::new(),
            live_ids,
            note: None,
        });
    }
    if input.options.import_only {
        for a in &mut actions {
            let in_entra = kind(&a.kind).is_some_and(|k| k.live.is_some());
            if in_entra
                && matches!(a.op, Op::Create | Op::Update | Op::Delete)
                && a.blocked.is_none()
            {
                a.blocked =
                    Some("import changes nothing in Entra: run `tenantform apply` for this".into());
            }
        }
    }
    block_unmet_dependencies(&mut actions, input.state);
    order(&mut actions);
    let mut warnings = hints(&actions, input.state);
    let unmanaged = unowned_role_assignments(&actions, input.live);
    warnings.extend(
        unmanaged
            .iter()
            .map(|u| format!("{}: {}", u.tenant, u.description)),
    );
    let mut summary = Summary::default();
    for a in &actions {
        match a.op {
            Op::Create => summary.create += 1,
            Op::Update => summary.update += 1,
            Op::Delete => summary.delete += 1,
            Op::Adopt => summary.adopt += 1,
            Op::NoOp => summary.no_op += 1,
        }
        if a.blocked.is_some() {
            summary.blocked += 1;
        }
    }
    let tenants = tenant_outcomes(input, &actions, &not_read);
    Plan {
        kind: PLAN_MARKER.to_string(),
        format_version: PLAN_FORMAT_VERSION,
        manifests_digest: manifests_digest(input.desired),
        state: StateRef {
            lineage: input.state.lineage.clone(),
            serial: input.state.serial,
        },
        options: input.options.clone(),
        actions,
        warnings,
        not_read: not_read.into_values().collect(),
        unmanaged,
        tenants,
        summary,
    }
}

/// Role assignments in Entra held by guests tenantform manages, that tenantform neither
/// wants nor owns: reported, never deleted.
fn unowned_role_assignments(actions: &[Action], live: Option<&LiveSnapshot>) -> Vec<Unmanaged> {
    let Some(live) = live else { return Vec::new() };
    let catalog = crate::roles::RoleCatalog::builtin();
    let mut notes = Vec::new();
    // Owned ids per tenant, gathered in one pass over the actions.
    let mut managed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut owned: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for a in actions {
        let ids = a.live_ids.as_ref();
        match a.kind.as_str() {
            "guest" => {
                if let Some(id) = ids.and_then(|i| i.get("objectId")) {
                    managed
                        .entry(a.tenant.as_str())
                        .or_default()
                        .insert(id.to_lowercase());
                }
            }
            "directory_role" => {
                if let Some(id) = ids.and_then(|i| i.get("assignmentId")) {
                    owned
                        .entry(a.tenant.as_str())
                        .or_default()
                        .insert(id.clone());
                }
            }
            _ => {}
        }
    }
    let empty = BTreeSet::new();
    for (tenant, status) in &live.tenants {
        let LiveTenant::Read(dir) = status else {
            continue;
        };
        let managed = managed.get(tenant.as_str()).unwrap_or(&empty);
        let owned = owned.get(tenant.as_str()).unwrap_or(&empty);
        for ra in &dir.role_assignments {
            if !managed.contains(&ra.principal_id) || owned.contains(&ra.id) {
                continue;
            }
            let role = catalog
                .by_template_id(&ra.role_definition_id)
                .map_or(ra.role_definition_id.as_str(), |r| r.name);
            let who = dir
                .guest_by_id(&ra.principal_id)
                .and_then(|g| g.mail.clone())
                .unwrap_or_else(|| ra.principal_id.clone());
            notes.push(Unmanaged {
                tenant: tenant.clone(),
                id: ra.id.clone(),
                description: format!(
                    "{who} also holds {role} (scope {}), not managed by tenantform: reported, not changed",
                    ra.directory_scope_id
                ),
            });
        }
    }
    notes
}

/// The live directory of `tenant`, or why it cannot be planned (recorded once per tenant).
fn readable<'a>(
    live: Option<&'a LiveSnapshot>,
    offline: bool,
    tenant: &str,
    not_read: &mut BTreeMap<String, TenantNotRead>,
) -> Option<&'a crate::live::LiveDirectory> {
    let failure = match live.map(|l| l.tenants.get(tenant)) {
        Some(Some(LiveTenant::Read(dir))) => return Some(dir),
        Some(Some(LiveTenant::Failed(failure))) => failure.clone(),
        Some(None) => Failure::new(Cause::NotRead, "Entra was not read for this tenant"),
        None if offline => Failure::new(
            Cause::NotRead,
            "Entra was not read (--offline): guests and directory roles were not planned",
        ),
        None => Failure::new(
            Cause::NotRead,
            "Entra was not read (no Graph credentials: set AZURE_CLIENT_ID, AZURE_TENANT_ID and a credential, or use --sandbox): guests and directory roles were not planned",
        ),
    };
    not_read
        .entry(tenant.to_string())
        .or_insert_with(|| TenantNotRead {
            tenant: tenant.to_string(),
            failure,
        });
    None
}

/// Recorded so recently that Entra may not show it yet.
fn replicating(object: &StateObject, options: &PlanOptions, now: jiff::Timestamp) -> bool {
    let Ok(applied) = object.applied_at.parse::<jiff::Timestamp>() else {
        return false;
    };
    // Times in state are rounded to the second, and clocks differ a little between runners:
    // an `appliedAt` slightly ahead of now is still recent.
    let age = now.duration_since(applied);
    options.replication_window_secs > 0
        && age > jiff::SignedDuration::from_secs(-60)
        && age < jiff::SignedDuration::from_secs(options.replication_window_secs as i64)
}

fn pending_note(object: &StateObject, options: &PlanOptions) -> String {
    format!(
        "recorded {} and not visible in Entra yet (replication); counted missing {} s after that",
        object.applied_at, options.replication_window_secs
    )
}

/// Blocks roles whose guest will not be there: a guest blocked in this plan, or (when its
/// tenant was not read) one that state does not record as invited. A role never runs
/// ahead of the guest it is for.
fn block_unmet_dependencies(actions: &mut [Action], state: &State) {
    let guests: BTreeMap<String, (Option<String>, Op)> = actions
        .iter()
        .filter(|a| a.kind == "guest")
        .map(|a| (a.address.clone(), (a.blocked.clone(), a.op)))
        .collect();
    for a in actions.iter_mut() {
        if !matches!(a.kind.as_str(), "msp_role" | "directory_role")
            || !matches!(a.op, Op::Create | Op::Update | Op::Adopt)
            || a.blocked.is_some()
        {
            continue;
        }
        let principal = a
            .after
            .as_ref()
            .map(|attrs| crate::resources::attr_str(attrs, "principal").to_string())
            .unwrap_or_default();
        let Some(name) = principal.strip_prefix("guest:") else {
            continue;
        };
        let guest = address("guest", &format!("{}.{name}", a.tenant));
        let why = match guests.get(&guest) {
            Some((Some(blocked), _)) => {
                Some(format!("waits for {guest}, which is blocked: {blocked}"))
            }
            Some((None, Op::Delete)) => Some(format!("waits for {guest}, which is being removed")),
            Some((None, _)) => None,
            None => {
                let invited = state.objects.get(&guest).is_some_and(|g| {
                    g.ids.contains_key("objectId") && !g.ids.contains_key(crate::state::PENDING_ID)
                });
                (!invited).then(|| {
                    format!("waits for {guest}, which is not invited yet and was not planned (Entra not read)")
                })
            }
        };
        if let Some(why) = why {
            a.blocked = Some(why);
            a.reason = Some(Reason::WaitsForDependency);
        }
    }
}

/// Every tenant in scope, with how it stands.
fn tenant_outcomes(
    input: &PlanInput,
    actions: &[Action],
    not_read: &BTreeMap<String, TenantNotRead>,
) -> Vec<TenantOutcome> {
    let in_scope = |tenant: &str| input.options.in_scope(tenant);
    let mut names: BTreeSet<&str> = input
        .desired
        .tenants
        .keys()
        .map(String::as_str)
        .filter(|t| in_scope(t))
        .collect();
    names.extend(
        actions
            .iter()
            .map(|a| a.tenant.as_str())
            .filter(|t| !t.is_empty()),
    );
    names.extend(not_read.keys().map(String::as_str));
    let changing: BTreeSet<&str> = actions
        .iter()
        .filter(|a| a.is_change())
        .map(|a| a.tenant.as_str())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let desired = input.desired.tenants.get(name);
            let stored = input.state.objects.get(&format!("tenant.{name}"));
            let stored_attr = |k: &str| {
                stored
                    .and_then(|o| o.attributes.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let outcome = match not_read.get(name) {
                Some(n) if !input.options.offline || n.failure.cause != Cause::NotRead => {
                    Outcome::Failed(n.failure.clone())
                }
                _ if changing.contains(name) => Outcome::Changes,
                _ => Outcome::NothingToDo,
            };
            TenantOutcome {
                tenant: name.to_string(),
                display_name: desired
                    .map(|t| t.display_name.clone())
                    .or_else(|| stored_attr("displayName")),
                microsoft_tenant_id: desired
                    .and_then(|t| t.microsoft_tenant_id.clone())
                    .or_else(|| stored_attr("microsoftTenantId")),
                outcome,
            }
        })
        .collect()
}

fn move_object(
    stored: &mut BTreeMap<String, &StateObject>,
    moved_from: &mut BTreeMap<String, String>,
    old: &str,
    new: &str,
) {
    if let Some(object) = stored.remove(old) {
        stored.insert(new.to_string(), object);
        moved_from.insert(new.to_string(), old.to_string());
    }
}

/// Creates, updates and no-ops in dependency order; then deletes in reverse.
fn order(actions: &mut [Action]) {
    let rank = |a: &Action| kind(&a.kind).map_or(u8::MAX, |k| k.order);
    actions.sort_by(|a, b| {
        let (a_del, b_del) = (a.op == Op::Delete, b.op == Op::Delete);
        a_del.cmp(&b_del).then_with(|| {
            if a_del {
                rank(b)
                    .cmp(&rank(a))
                    .then_with(|| a.address.cmp(&b.address))
            } else {
                rank(a)
                    .cmp(&rank(b))
                    .then_with(|| a.address.cmp(&b.address))
            }
        })
    });
}

/// Attribute differences, one level deep for nested objects (`labels.tier`).
pub fn diff(before: &Attributes, after: &Attributes) -> Vec<AttributeChange> {
    let mut changes = Vec::new();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (b, a) = (
            before.get(key).filter(|v| !v.is_null()),
            after.get(key).filter(|v| !v.is_null()),
        );
        match (b, a) {
            (Some(Value::Object(bm)), Some(Value::Object(am))) => {
                let sub: BTreeSet<&String> = bm.keys().chain(am.keys()).collect();
                for s in sub {
                    if bm.get(s) != am.get(s) {
                        changes.push(AttributeChange {
                            path: format!("{key}.{s}"),
                            before: bm.get(s).cloned(),
                            after: am.get(s).cloned(),
                        });
                    }
                }
            }
            (Some(Value::Object(m)), None) | (None, Some(Value::Object(m))) if m.is_empty() => {}
            (b, a) if b != a => changes.push(AttributeChange {
                path: key.clone(),
                before: b.cloned(),
                after: a.cloned(),
            }),
            _ => {}
        }
    }
    changes
}

/// Plan-wide hints: a likely rename planned as delete + create.
fn hints(actions: &[Action], state: &State) -> Vec<String> {
    let mut hints = Vec::new();
    let deleted_tenants: BTreeMap<&str, &Action> = actions
        .iter()
        .filter(|a| a.op == Op::Delete && a.kind == "tenant")
        .map(|a| (a.address.as_str(), a))
        .collect();
    for created in actions
        .iter()
        .filter(|a| a.op == Op::Create && a.kind == "tenant")
    {
        let new_name = created.address.trim_start_matches("tenant.");
        let new_id = created
            .after
            .as_ref()
            .and_then(|a| a.get("microsoftTenantId"))
            .filter(|v| !v.is_null());
        // Organizations now under the new tenant whose old implicit tenant is being deleted.
        let mut candidates: Vec<&str> = actions
            .iter()
            .filter(|a| a.kind == "organization" && a.tenant == new_name)
            .filter_map(|a| a.address.strip_prefix("organization."))
            .filter(|org| {
                let old = format!("tenant.{org}");
                deleted_tenants.contains_key(old.as_str())
                    && state
                        .objects
                        .get(&old)
                        .and_then(|o| o.attributes.get("implicit"))
                        == Some(&Value::Bool(true))
            })
            .collect();
        for (old, action) in &deleted_tenants {
            if new_id.is_some()
                && action
                    .before
                    .as_ref()
                    .and_then(|b| b.get("microsoftTenantId"))
                    == new_id
            {
                candidates.push(old.trim_start_matches("tenant."));
            }
        }
        candidates.sort();
        candidates.dedup();
        if let Some(first) = candidates.first() {
            hints.push(format!(
                "{} is created while tenant.{first} is deleted; if it is the same customer, add `formerNames: [{first}]` to Tenant `{new_name}` to keep the existing tenant record (an update instead of delete + create)",
                created.address
            ));
        }
    }
    hints
}

/// Tenants whose desired objects differ between two models, of any kind and in any
/// attribute, including tenants present in only one. Exact by construction: a label change
/// that moves a tenant in or out of a selector changes that tenant's guests, so it counts.
pub fn changed_tenants(base: &DesiredModel, head: &DesiredModel) -> BTreeSet<String> {
    fn by_tenant(model: &DesiredModel) -> BTreeMap<String, BTreeMap<String, Attributes>> {
        let mut out: BTreeMap<String, BTreeMap<String, Attributes>> = BTreeMap::new();
        for k in KINDS {
            for d in (k.desired)(model) {
                out.entry(d.tenant)
                    .or_default()
                    .insert(d.address, d.attributes);
            }
        }
        for name in model.tenants.keys() {
            out.entry(name.clone()).or_default();
        }
        out
    }
    let (before, after) = (by_tenant(base), by_tenant(head));
    before
        .keys()
        .chain(after.keys())
        .filter(|t| before.get(*t) != after.get(*t))
        .cloned()
        .collect()
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
