//! `plan`: manifests, state and live Entra in, a plan out (the planner itself is pure).

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::live::LiveSnapshot;
use crate::model::DesiredModel;
use crate::ops::live_read::{LiveScope, read_live};
use crate::ops::settings::narrow;
use crate::ops::{Need, Note, OpsError, Reporter, Selection, Workspace};
use crate::plan::{Plan, PlanInput, PlanOptions};
use crate::state::State;

/// What a plan is asked for.
pub struct PlanRequest<'a> {
    pub options: PlanOptions,
    /// Plan only tenants whose desired objects differ from the manifests at this git ref.
    pub changed_since: Option<&'a str>,
    pub selection: &'a Selection,
    pub need: Need<'a>,
}

/// A computed plan, with what Entra held when it was made (drift reads privileged access
/// from it).
pub struct PlanRun {
    pub plan: Plan,
    pub live: Option<LiveSnapshot>,
}

/// The tenants a run covers: `--tenant`/`--selector`, narrowed by `--changed-since`.
pub fn scope(
    ws: &Workspace,
    selection: &Selection,
    changed_since: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Option<BTreeSet<String>>, OpsError> {
    let model = &ws.manifests.model;
    let selected = selection.resolve(model)?;
    let mut only = None;
    if let Some(base) = changed_since {
        // The base may not validate (it is history); its model is still what was wanted then.
        let (sources, diags, _) = crate::git::load_at(&ws.settings.manifests.path, base)?;
        let base_model = crate::validate_sources(&sources, diags).model;
        let changed = crate::plan::changed_tenants(&base_model, model);
        reporter.note(&Note::ChangedSince {
            base: base.to_string(),
            changed: changed.len(),
            total: model.tenants.len(),
        });
        only = Some(changed);
    }
    Ok(narrow(only, selected))
}

/// The model with guests and role assignments narrowed to the tenants in scope, so only
/// those are read from Entra.
pub fn scoped_model<'m>(
    model: &'m DesiredModel,
    only: Option<&BTreeSet<String>>,
) -> Cow<'m, DesiredModel> {
    match only {
        Some(only) => {
            let mut scoped = model.clone();
            for guest in scoped.guests.values_mut() {
                guest.tenants.retain(|t| only.contains(t));
            }
            for ra in scoped.role_assignments.values_mut() {
                ra.tenants.retain(|t| only.contains(t));
            }
            Cow::Owned(scoped)
        }
        None => Cow::Borrowed(model),
    }
}

/// Loads state and (when connected) live Entra, and computes the plan.
pub fn plan(
    ws: &mut Workspace,
    request: PlanRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<PlanRun, OpsError> {
    let PlanRequest {
        mut options,
        changed_since,
        selection,
        need,
    } = request;
    options.only_tenants = scope(ws, selection, changed_since, reporter)?;
    let graph_model = scoped_model(&ws.manifests.model, options.only_tenants.as_ref());
    if ws.connection.is_none() {
        ws.connection = crate::ops::workspace::connect(&ws.settings, &graph_model, need)?;
    }
    let every_mapped = matches!(need, Need::Always { .. });
    // Read before state: if a write slips in between, the plan looks older than it is (stale
    // at apply), never newer.
    let serials = ws.store.serials()?;
    let store = &ws.store;
    let load = || store.load().map_err(OpsError::from);
    let (state, live) = match &ws.connection {
        Some(connection) => {
            let live_scope = LiveScope {
                model: &graph_model,
                every_mapped,
                only: options.only_tenants.as_ref(),
            };
            let (state, live) =
                read_live(connection, &ws.settings.graph, &live_scope, reporter, load)?;
            (state, Some(live))
        }
        None => (load()?, None),
    };
    drop(graph_model);
    note_recovered(&state, ws, reporter);
    let mut plan = crate::plan::plan(&PlanInput {
        desired: &ws.manifests.model,
        state: &state,
        live: live.as_ref(),
        options,
        now: jiff::Timestamp::now(),
    });
    if let Some(written) = crate::plan::partitions_written(&plan, &state) {
        plan.state.partitions = written
            .into_iter()
            .map(|p| {
                let serial = serials.of(&p);
                (p, serial)
            })
            .collect();
    }
    Ok(PlanRun { plan, live })
}

fn note_recovered(state: &State, ws: &Workspace, reporter: &dyn Reporter) {
    if state.recovered_changes > 0 {
        reporter.note(&Note::RecoveredChanges {
            changes: state.recovered_changes,
            store: ws.store.describe(),
        });
    }
}
