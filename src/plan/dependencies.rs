//! Dependencies between planned objects: a role never runs ahead of the guest it is for. Each
//! kind says what it depends on (`ResourceKind::depends_on`).

use std::collections::BTreeMap;

use super::{Action, Op, Reason};
use crate::resources::kind;
use crate::state::State;

/// Blocks roles whose guest will not be there: a guest blocked in this plan, or (when its
/// tenant was not read) one that state does not record as invited. A role never runs
/// ahead of the guest it is for.
pub(super) fn block_unmet_dependencies(actions: &mut [Action], state: &State) {
    let planned: BTreeMap<String, (Option<String>, Op)> = actions
        .iter()
        .map(|a| (a.address.clone(), (a.blocked.clone(), a.op)))
        .collect();
    for a in actions.iter_mut() {
        if !matches!(a.op, Op::Create | Op::Update | Op::Adopt) || a.blocked.is_some() {
            continue;
        }
        let Some(after) = a.after.as_ref() else {
            continue;
        };
        let Some(guest) = kind(&a.kind).and_then(|k| (k.depends_on)(after, &a.tenant)) else {
            continue;
        };
        let why = match planned.get(&guest) {
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
