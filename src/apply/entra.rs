//! Carrying out guest and directory-role actions in Entra through the Graph client.
//!
//! Safety first: before inviting, the guest is looked up by email again, so an address that
//! already has a guest is never invited twice (even when the plan is stale or an earlier apply
//! died after inviting). A role assignment conflict means "already done"; a just-invited guest
//! that is not yet visible (replication) is retried, bounded.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use serde_json::{Value, json};

use super::{ApplyError, Executed, Executor, StateOnlyExecutor};
use crate::graph::{GraphClient, GraphClientError};
use crate::outcome::{Cause, Failure};
use crate::plan::{Action, Op};
use crate::resources::attr_str;
use crate::state::{Ids, State, StateObject};

pub struct EntraExecutor<'a> {
    pub client: &'a GraphClient,
    /// How long to keep retrying a role assignment whose principal is not replicated yet.
    pub replication_wait: Duration,
    /// Set by Ctrl-C / SIGTERM: waits for replication end early.
    pub stop: &'a std::sync::atomic::AtomicBool,
    /// The partner (MSP) tenant, where GDAP relationships live.
    pub partner_tenant: Option<&'a str>,
}

/// A Graph error on `action`, with its cause, code and request id.
pub(super) fn failed(action: &Action, e: GraphClientError) -> ApplyError {
    ApplyError::Failed {
        address: action.address.clone(),
        failure: Box::new(e.failure()),
    }
}

pub(super) fn failed_because(
    action: &Action,
    cause: Cause,
    message: impl Into<String>,
) -> ApplyError {
    ApplyError::Failed {
        address: action.address.clone(),
        failure: Box::new(Failure::new(cause, message)),
    }
}

fn ids(pairs: &[(&str, &str)]) -> Ids {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn microsoft_tenant(state: &State, action: &Action) -> Result<String, ApplyError> {
    let tenant = attr_str(
        action
            .after
            .as_ref()
            .or(action.before.as_ref())
            .expect("attributes"),
        "tenant",
    );
    state
        .objects
        .get(&format!("tenant.{tenant}"))
        .and_then(|t| t.attributes.get("microsoftTenantId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            failed_because(
                action,
                Cause::StateError,
                format!("tenant `{tenant}` has no Microsoft tenant id in state"),
            )
        })
}

fn is_not_found(e: &GraphClientError) -> bool {
    e.status() == Some(404)
}

/// Server errors the client does not repeat for writes (it cannot know whether the write
/// happened). The executor can: it checks before repeating an invitation, and a repeated
/// role assignment that did happen answers "conflict", which means done.
fn is_server_error(e: &GraphClientError) -> bool {
    matches!(e.status(), Some(500 | 502))
}

const WRITE_ATTEMPTS: u32 = 5;

/// The shapes replication delay takes when a role is assigned to a principal Graph does not
/// see yet (GRAPH.md): 404 naming the principal, 404 naming a built-in role template (a
/// custom role that is not there is a real error), 400 "Not a valid reference update".
fn is_replication_delay(e: &GraphClientError, principal_id: &str, role: &str) -> bool {
    let text = e.to_string();
    match e.status() {
        Some(404) if text.contains(principal_id) => true,
        Some(404) if text.to_lowercase().contains(&role.to_lowercase()) => {
            crate::roles::RoleCatalog::builtin()
                .by_template_id(role)
                .is_some()
        }
        Some(400) => text.contains("Not a valid reference update"),
        _ => false,
    }
}

impl EntraExecutor<'_> {
    /// Applied so recently (this run, usually) that Entra may not show it everywhere yet.
    fn recently_applied(&self, object: &StateObject) -> bool {
        object
            .applied_at
            .parse::<jiff::Timestamp>()
            .is_ok_and(|at| {
                jiff::Timestamp::now().duration_since(at)
                    < jiff::SignedDuration::try_from(self.replication_wait).unwrap_or_default()
            })
    }

    /// Waits `delay` (doubling it, up to 5 s) for replication, unless a stop was asked for.
    async fn replication_pause(
        &self,
        action: &Action,
        delay: &mut Duration,
    ) -> Result<(), ApplyError> {
        if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(failed_because(
                action,
                Cause::Interrupted,
                "stopped while waiting for the guest to replicate",
            ));
        }
        tokio::time::sleep(*delay).await;
        *delay = (*delay * 2).min(Duration::from_secs(5));
        Ok(())
    }

    /// Reads the new guest until Graph shows it (bounded), before giving it a role: the
    /// assignment is then much less likely to meet replication delay at all.
    async fn wait_until_readable(
        &self,
        action: &Action,
        tid: &str,
        principal_id: &str,
    ) -> Result<(), ApplyError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .client
                .get(tid, &format!("/users/{principal_id}?$select=id"))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e)
                    if is_not_found(&e) && started.elapsed() + delay <= self.replication_wait =>
                {
                    self.replication_pause(action, &mut delay).await?;
                }
                // Not readable in time, or another error: the assignment's own retries decide.
                Err(_) => return Ok(()),
            }
        }
    }

    fn object_id(action: &Action, stored: Option<&StateObject>, key: &str) -> Option<String> {
        action
            .live_ids
            .as_ref()
            .and_then(|i| i.get(key).cloned())
            .or_else(|| stored.and_then(|s| s.ids.get(key).cloned()))
    }

    async fn guest(
        &self,
        action: &Action,
        stored: Option<&StateObject>,
        state: &State,
    ) -> Result<Executed, ApplyError> {
        let tid = microsoft_tenant(state, action)?;
        let g = self.client;
        match action.op {
            Op::Create => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match self.invite(&tid, action).await {
                        Err(GuestWriteError::Graph(e))
                            if is_server_error(&e) && attempt < WRITE_ATTEMPTS =>
                        {
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt)))
                                .await;
                        }
                        Err(GuestWriteError::Graph(e)) => return Err(failed(action, e)),
                        Err(GuestWriteError::Other(e)) => return Err(e),
                        Ok(executed) => return Ok(executed),
                    }
                }
            }
            Op::Update => {
                let id = Self::object_id(action, stored, "objectId").ok_or_else(|| {
                    failed_because(action, Cause::StateError, "no object id recorded")
                })?;
                let after = action.after.as_ref().expect("update has attributes");
                if action.changes.iter().any(|c| c.path == "displayName") {
                    let name = attr_str(after, "displayName");
                    g.send(
                        &tid,
                        "PATCH",
                        &format!("/users/{id}"),
                        Some(&json!({"displayName": name})),
                    )
                    .await
                    .map_err(|e| failed(action, e))?;
                }
                if action.changes.iter().any(|c| c.path == "invitation") {
                    let body = json!({
                        "invitedUserEmailAddress": attr_str(after, "email"),
                        "inviteRedirectUrl": attr_str(after, "redirectUrl"),
                        "sendInvitationMessage": after.get("sendInvitationEmail").and_then(Value::as_bool).unwrap_or(true),
                        "resetRedemption": true,
                        "invitedUser": {"id": id},
                    });
                    g.send(&tid, "POST", "/invitations", Some(&body))
                        .await
                        .map_err(|e| failed(action, e))?;
                }
                Ok(Executed {
                    ids: Ids::new(),
                    external: true,
                })
            }
            Op::Delete => {
                if let Some(id) = Self::object_id(action, stored, "objectId")
                    .filter(|_| action.live_ids.is_some())
                {
                    match g.send(&tid, "DELETE", &format!("/users/{id}"), None).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(failed(action, e)),
                    }
                }
                Ok(Executed {
                    ids: Ids::new(),
                    external: true,
                })
            }
            // Only MSP-side records are archived; a guest never is.
            Op::Adopt | Op::Archive | Op::NoOp => Ok(Executed::default()),
        }
    }

    /// The object id of the guest with this address (mail, then otherMails), if any.
    async fn guest_id_by_email(
        &self,
        tid: &str,
        email: &str,
    ) -> Result<Option<String>, GraphClientError> {
        let email = email.replace('\'', "''");
        let filter = format!("mail eq '{email}' or otherMails/any(m:m eq '{email}')");
        let path = format!(
            "/users?$filter={}&$select=id",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let found = self.client.get(tid, &path).await?;
        Ok(found["value"][0]["id"].as_str().map(str::to_string))
    }

    /// Looks the address up, then invites only if no guest has it yet.
    async fn invite(&self, tid: &str, action: &Action) -> Result<Executed, GuestWriteError> {
        let g = self.client;
        let after = action.after.as_ref().expect("create has attributes");
        let email = attr_str(after, "email");
        let existing = self
            .guest_id_by_email(tid, email)
            .await
            .map_err(GuestWriteError::Graph)?;
        if let Some(id) = existing.as_deref() {
            // Someone (or an interrupted apply) invited this address already: own it.
            return Ok(Executed {
                ids: ids(&[("objectId", id)]),
                external: false,
            });
        }
        let mut body = json!({
            "invitedUserEmailAddress": email,
            "invitedUserDisplayName": attr_str(after, "displayName"),
            "inviteRedirectUrl": attr_str(after, "redirectUrl"),
            "sendInvitationMessage": after.get("sendInvitationEmail").and_then(Value::as_bool).unwrap_or(true),
        });
        let message = after.get("invitationMessage").and_then(Value::as_str);
        let language = after.get("messageLanguage").and_then(Value::as_str);
        if message.is_some() || language.is_some() {
            body["invitedUserMessageInfo"] =
                json!({"customizedMessageBody": message, "messageLanguage": language});
        }
        let invited = g
            .send(tid, "POST", "/invitations", Some(&body))
            .await
            .map_err(GuestWriteError::Graph)?;
        let id = invited.body["invitedUser"]["id"].as_str().ok_or_else(|| {
            GuestWriteError::Other(failed_because(
                action,
                Cause::GraphError,
                "the invitation answer has no invitedUser.id",
            ))
        })?;
        Ok(Executed {
            ids: ids(&[("objectId", id)]),
            external: true,
        })
    }

    async fn directory_role(
        &self,
        action: &Action,
        stored: Option<&StateObject>,
        state: &State,
    ) -> Result<Executed, ApplyError> {
        let tid = microsoft_tenant(state, action)?;
        let g = self.client;
        match action.op {
            Op::Create => {
                let after = action.after.as_ref().expect("create has attributes");
                let principal = attr_str(after, "principal");
                let principal_id = match principal.split_once(':') {
                    Some(("guest", name)) => match state
                        .objects
                        .get(&format!("guest.{}.{name}", attr_str(after, "tenant")))
                        .and_then(|o| o.ids.get("objectId").cloned())
                    {
                        Some(id) => id,
                        // Not recorded (e.g. adopted in another run): find the guest by email.
                        None => self
                            .guest_id_by_email(&tid, attr_str(after, "principalEmail"))
                            .await
                            .map_err(|e| failed(action, e))?
                            .ok_or_else(|| {
                                failed_because(action, Cause::DependencyFailed, format!("guest `{name}` does not exist in this tenant (was it invited?)"))
                            })?,
                    },
                    Some((_, id)) => id.to_string(),
                    None => return Err(failed_because(action, Cause::StateError, format!("unknown principal `{principal}`"))),
                };
                let role = attr_str(after, "roleDefinitionId").to_string();
                if let Some((_, name)) = principal.split_once(':').filter(|(k, _)| *k == "guest") {
                    let guest = state
                        .objects
                        .get(&format!("guest.{}.{name}", attr_str(after, "tenant")));
                    if guest.is_some_and(|g| self.recently_applied(g)) {
                        self.wait_until_readable(action, &tid, &principal_id)
                            .await?;
                    }
                }
                let body = json!({"principalId": principal_id, "roleDefinitionId": role, "directoryScopeId": attr_str(after, "directoryScopeId")});
                let started = Instant::now();
                let mut delay = Duration::from_millis(200);
                let mut server_errors = 0;
                loop {
                    match g
                        .send(
                            &tid,
                            "POST",
                            "/roleManagement/directory/roleAssignments",
                            Some(&body),
                        )
                        .await
                    {
                        Ok(created) => {
                            let id = created.body["id"].as_str().unwrap_or_default();
                            return Ok(Executed {
                                ids: ids(&[("assignmentId", id), ("principalId", &principal_id)]),
                                external: true,
                            });
                        }
                        Err(e) if is_server_error(&e) && server_errors + 1 < WRITE_ATTEMPTS => {
                            server_errors += 1;
                            tokio::time::sleep(Duration::from_millis(200 * server_errors as u64))
                                .await;
                        }
                        // The guest was just created and is not replicated yet: Graph says so
                        // in several shapes. A missing custom role definition fails at once.
                        Err(e)
                            if is_replication_delay(&e, &principal_id, &role)
                                && started.elapsed() + delay <= self.replication_wait =>
                        {
                            self.replication_pause(action, &mut delay).await?;
                        }
                        // Already assigned: find it and own it.
                        Err(e)
                            if e.status() == Some(400)
                                && e.to_string().contains("conflicting object") =>
                        {
                            let filter = format!(
                                "principalId eq '{principal_id}' and roleDefinitionId eq '{role}'"
                            );
                            let path = format!(
                                "/roleManagement/directory/roleAssignments?$filter={}",
                                url::form_urlencoded::byte_serialize(filter.as_bytes())
                                    .collect::<String>()
                            );
                            let found = g.get(&tid, &path).await.map_err(|e| failed(action, e))?;
                            let scope = attr_str(after, "directoryScopeId");
                            let id = found["value"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|a| a["directoryScopeId"].as_str().unwrap_or("/") == scope)
                                .and_then(|a| a["id"].as_str())
                                .map(str::to_string)
                                .ok_or_else(|| {
                                    failed_because(
                                        action,
                                        Cause::GraphError,
                                        "Graph answered that the assignment exists, but it is not listed yet (replication): run again",
                                    )
                                })?;
                            return Ok(Executed {
                                ids: ids(&[("assignmentId", &id), ("principalId", &principal_id)]),
                                external: false,
                            });
                        }
                        Err(e) => return Err(failed(action, e)),
                    }
                }
            }
            Op::Delete => {
                if let Some(id) = Self::object_id(action, stored, "assignmentId")
                    .filter(|_| action.live_ids.is_some())
                {
                    match g
                        .send(
                            &tid,
                            "DELETE",
                            &format!("/roleManagement/directory/roleAssignments/{id}"),
                            None,
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(failed(action, e)),
                    }
                }
                Ok(Executed {
                    ids: Ids::new(),
                    external: true,
                })
            }
            Op::Update | Op::Adopt | Op::Archive | Op::NoOp => Ok(Executed::default()),
        }
    }
}

impl Executor for EntraExecutor<'_> {
    fn execute<'a>(
        &'a self,
        action: &'a Action,
        stored: Option<&'a StateObject>,
        state: &'a State,
    ) -> BoxFuture<'a, Result<Executed, ApplyError>> {
        use crate::resources::KindId;
        // Exhaustive on purpose: a new kind is a compile error here until it says how it is
        // applied, so nothing that lives in Entra can "apply" in state only.
        match crate::resources::kind(&action.kind).map(|k| k.id) {
            Some(KindId::Guest) => Box::pin(self.guest(action, stored, state)),
            Some(KindId::DirectoryRole) => Box::pin(self.directory_role(action, stored, state)),
            Some(KindId::GdapRelationship) => Box::pin(self.gdap_relationship(action, stored)),
            // Kinds that live only in state: the record is the change.
            // Contacts are MSP-side records synced *from* Entra: nothing is written there.
            Some(
                KindId::Tenant
                | KindId::Organization
                | KindId::MspRole
                | KindId::Contact
                | KindId::UserSync,
            ) => StateOnlyExecutor.execute(action, stored, state),
            None => Box::pin(std::future::ready(Err(failed_because(
                action,
                Cause::StateError,
                format!("unknown kind `{}`: nothing was applied", action.kind),
            )))),
        }
    }
}

/// The kinds this executor writes to Entra (a test keeps it equal to the registry's live kinds).
pub const ENTRA_KINDS: &[&str] = &["guest", "directory_role", "gdap_relationship"];

enum GuestWriteError {
    Graph(GraphClientError),
    Other(ApplyError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_that_lives_in_entra_has_an_executor() {
        let live: Vec<&str> = crate::resources::KINDS
            .iter()
            .filter(|k| k.live.is_some())
            .map(|k| k.name)
            .collect();
        assert_eq!(live, super::ENTRA_KINDS);
    }
}
