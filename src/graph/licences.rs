//! Reading a tenant's licences: its SKUs, its subscriptions and who holds what, in one
//! `$batch` of four requests (pages followed outside it). Users come from a full `$select`
//! list, not `users/delta` (delta does not track `licenseAssignmentStates`, GRAPH.md), and
//! never from `/users/{id}/licenseDetails` (two resource units a user). Soft-deleted users
//! keep their licences for 30 days, so they are read too.

use super::read::all_items;
use super::{BatchRequest, GraphClient, GraphClientError};
use crate::licences::{CompanySubscription, LicensedUser, SubscribedSku};

/// A tenant's licences as read.
#[derive(Clone, Debug, Default)]
pub struct LicenceRead {
    pub skus: Vec<SubscribedSku>,
    pub subscriptions: Vec<CompanySubscription>,
    /// Users (and soft-deleted users) holding at least one licence or reporting an
    /// assignment error.
    pub users: Vec<LicensedUser>,
}

const USER_FIELDS: &str = "id,displayName,accountEnabled,assignedLicenses,licenseAssignmentStates";

fn get(id: &str, url: String) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url,
        body: None,
        depends_on: Vec::new(),
    }
}

/// Reads `tenant`'s licences; any request that fails fails the read (a tenant is never
/// reported on half its licences).
pub async fn read_licences(
    client: &GraphClient,
    tenant: &str,
) -> Result<LicenceRead, GraphClientError> {
    let requests = vec![
        // subscribedsku-list.md: only $select.
        get(
            "skus",
            "/subscribedSkus?$select=skuId,skuPartNumber,appliesTo,capabilityStatus,consumedUnits,prepaidUnits".into(),
        ),
        get(
            "subscriptions",
            "/directory/subscriptions?$select=id,skuId,skuPartNumber,status,totalLicenses,isTrial,createdDateTime,nextLifecycleDateTime".into(),
        ),
        get("users", format!("/users?$select={USER_FIELDS}&$top=999")),
        get(
            "deleted",
            format!("/directory/deletedItems/microsoft.graph.user?$select={USER_FIELDS}&$top=999"),
        ),
    ];
    let mut read = LicenceRead::default();
    for answer in client.batch(tenant, requests).await? {
        answer.ok(tenant)?;
        let items = all_items(client, tenant, answer.body.clone()).await?;
        // An answer that does not read fails the tenant, as a failed request does.
        let unreadable = |e: serde_json::Error| GraphClientError::Transport {
            tenant: tenant.to_string(),
            method: answer.method.clone(),
            path: answer.url.clone(),
            message: format!("unreadable answer: {e}"),
        };
        match answer.id.as_str() {
            "skus" => {
                read.skus = items
                    .into_iter()
                    .map(serde_json::from_value)
                    .collect::<Result<_, _>>()
                    .map_err(unreadable)?
            }
            "subscriptions" => {
                read.subscriptions = items
                    .into_iter()
                    .map(serde_json::from_value)
                    .collect::<Result<_, _>>()
                    .map_err(unreadable)?
            }
            which => {
                let deleted = which == "deleted";
                read.users.extend(
                    items
                        .iter()
                        .filter_map(|u| LicensedUser::from_graph(u, deleted))
                        .filter(|u| !u.licences.is_empty()),
                );
            }
        }
    }
    read.users.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(read)
}
