//! Carrying out a plan: in its order, each change journaled as soon as it is made.
//!
//! The world outside state is reached only through an [`Executor`]; MSP-side kinds have no
//! outside world (the state record is the change), so they use [`StateOnlyExecutor`]. An
//! interrupted apply leaves a journal from which the next run resumes: nothing done is
//! forgotten, nothing is done twice.

pub mod entra;

use crate::plan::{Action, Op, Plan};
use crate::resources::kind;
use crate::state::{Journal, Source, State, StateChange, StateError, StateObject, now_rfc3339};

/// What carrying out one action produced.
#[derive(Debug, Default)]
pub struct Executed {
    /// Outside-world ids to record (merged over the stored ones).
    pub ids: crate::state::Ids,
    /// Whether something outside tenantform changed (then the journal entry is fsynced).
    pub external: bool,
}

/// Makes a change happen outside tenantform's state.
pub trait Executor {
    /// Carries out `action`; `stored` is its object as recorded, `state` everything recorded
    /// so far in this apply (e.g. the object id of a guest invited a moment ago).
    fn execute(
        &mut self,
        action: &Action,
        stored: Option<&StateObject>,
        state: &State,
    ) -> Result<Executed, ApplyError>;
}

/// For kinds that live only in state (tenant records, organizations, MSP roles).
pub struct StateOnlyExecutor;

impl Executor for StateOnlyExecutor {
    fn execute(
        &mut self,
        action: &Action,
        _stored: Option<&StateObject>,
        _state: &State,
    ) -> Result<Executed, ApplyError> {
        let ids = match action.op {
            Op::Create => kind(&action.kind)
                .map(|k| (k.new_ids)())
                .unwrap_or_default(),
            _ => crate::state::Ids::new(),
        };
        Ok(Executed {
            ids,
            external: false,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{address}: {message}")]
    Failed { address: String, message: String },
}

/// Progress, for the CLI to show.
pub enum ApplyEvent<'a> {
    Started(&'a Action),
    Done(&'a Action),
    Skipped(&'a Action),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub adopted: usize,
    pub blocked: usize,
}

/// Applies `plan` to `state`, recording every change in `journal` as it is made.
pub fn apply(
    plan: &Plan,
    state: &mut State,
    journal: &mut dyn Journal,
    executor: &mut dyn Executor,
    source: &Source,
    on_event: &mut dyn FnMut(ApplyEvent),
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    for action in plan.actions.iter().filter(|a| a.op != Op::NoOp) {
        if action.blocked.is_some() {
            report.blocked += 1;
            on_event(ApplyEvent::Skipped(action));
            continue;
        }
        on_event(ApplyEvent::Started(action));
        let stored_at = action.moved_from.as_deref().unwrap_or(&action.address);
        let stored = state.objects.get(stored_at).cloned();
        let executed = executor.execute(action, stored.as_ref(), state)?;
        let change = match action.op {
            Op::Create | Op::Update | Op::Adopt => {
                let mut ids = stored.map(|s| s.ids).unwrap_or_default();
                for (k, v) in action.live_ids.iter().flatten().chain(executed.ids.iter()) {
                    ids.insert(k.clone(), v.clone());
                }
                let object = StateObject {
                    kind: action.kind.clone(),
                    ids,
                    attributes: action.after.clone().unwrap_or_default(),
                    source: source.clone(),
                    applied_at: now_rfc3339(),
                };
                match &action.moved_from {
                    Some(from) => StateChange::Move {
                        from: from.clone(),
                        address: action.address.clone(),
                        object,
                    },
                    None => StateChange::Put {
                        address: action.address.clone(),
                        object,
                    },
                }
            }
            Op::Delete => StateChange::Delete {
                address: action.address.clone(),
            },
            Op::NoOp => continue,
        };
        journal.record(&change, executed.external)?;
        state.apply_change(&change);
        match action.op {
            Op::Create => report.created += 1,
            Op::Update => report.updated += 1,
            Op::Delete => report.deleted += 1,
            Op::Adopt => report.adopted += 1,
            Op::NoOp => {}
        }
        on_event(ApplyEvent::Done(action));
    }
    Ok(report)
}
