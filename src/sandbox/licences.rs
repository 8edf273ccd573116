//! `GET /subscribedSkus` and `GET /directory/subscriptions`, from the tenant's fixture
//! subscriptions and its users' `assignedLicenses`.
//!
//! Sources (microsoft-graph-docs-contrib): `api-reference/v1.0/resources/subscribedsku.md`
//! (properties; `capabilityStatus` Enabled when at least one prepaid unit is enabled; only
//! `User` SKUs are assignable), `api/subscribedsku-list.md` (only `$select`, no `$filter`; the
//! example's `id` is `{tenant id}_{sku id}` and lists `subscriptionIds`),
//! `resources/companysubscription.md` and `api/directory-list-subscriptions.md` (properties,
//! statuses). *Unconfirmed*: whether a soft-deleted user's licences count as consumed (here
//! they do not: its licences are listed on the deleted user, not in `consumedUnits`).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::directory::Directory;
use super::fixture::FixtureSubscription;

/// Each subscription as `directory/subscriptions` lists it.
pub fn subscriptions(dir: &Directory) -> Vec<Value> {
    dir.subscriptions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "id": subscription_id(dir, i, s),
                "commerceSubscriptionId": derived_id(&format!("{}/commerce", subscription_id(dir, i, s))),
                "createdDateTime": s.created_date_time,
                "isTrial": s.is_trial,
                "nextLifecycleDateTime": s.next_lifecycle_date_time,
                "ownerId": Value::Null,
                "ownerTenantId": Value::Null,
                "ownerType": Value::Null,
                "serviceStatus": [],
                "skuId": s.sku_id.to_lowercase(),
                "skuPartNumber": part_number(s),
                "status": s.status,
                "totalLicenses": s.total_licenses,
            })
        })
        .collect()
}

/// The tenant's SKUs: its subscriptions summed by SKU (seats by their subscription's status),
/// the seats consumed counted from its users.
pub fn subscribed_skus(dir: &Directory) -> Vec<Value> {
    let mut skus: Vec<(String, Vec<(usize, &FixtureSubscription)>)> = Vec::new();
    for (i, s) in dir.subscriptions.iter().enumerate() {
        let id = s.sku_id.to_lowercase();
        match skus.iter_mut().find(|(sku, _)| *sku == id) {
            Some((_, subs)) => subs.push((i, s)),
            None => skus.push((id, vec![(i, s)])),
        }
    }
    skus.iter()
        .map(|(sku, subs)| {
            let units = |status: &str| -> i64 {
                subs.iter()
                    .filter(|(_, s)| s.status.eq_ignore_ascii_case(status))
                    .map(|(_, s)| s.total_licenses)
                    .sum()
            };
            let (enabled, warning, suspended, locked_out) = (
                units("Enabled"),
                units("Warning"),
                units("Suspended"),
                units("LockedOut"),
            );
            let capability = if enabled > 0 {
                "Enabled"
            } else if warning > 0 {
                "Warning"
            } else if suspended > 0 {
                "Suspended"
            } else if locked_out > 0 {
                "LockedOut"
            } else {
                "Deleted"
            };
            let consumed = dir
                .users
                .values()
                .filter(|u| {
                    u.profile
                        .assigned_licenses
                        .iter()
                        .any(|l| l.sku_id.eq_ignore_ascii_case(sku))
                })
                .count();
            let (_, first) = subs[0];
            json!({
                "accountId": dir.id,
                "accountName": dir.display_name,
                "appliesTo": first.applies_to,
                "capabilityStatus": capability,
                "consumedUnits": consumed,
                "id": format!("{}_{sku}", dir.id),
                "prepaidUnits": {
                    "enabled": enabled,
                    "lockedOut": locked_out,
                    "suspended": suspended,
                    "warning": warning,
                },
                "servicePlans": [],
                "skuId": sku,
                "skuPartNumber": part_number(first),
                "subscriptionIds": subs
                    .iter()
                    .map(|(i, s)| subscription_id(dir, *i, s))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn part_number(s: &FixtureSubscription) -> String {
    s.sku_part_number.clone().unwrap_or_else(|| {
        crate::licences::products::product(&s.sku_id)
            .map_or_else(|| "UNKNOWN_SKU".into(), |p| p.part_number.clone())
    })
}

/// The fixture's id, else one derived from the tenant, the SKU and the position: the same
/// every time the world loads.
fn subscription_id(dir: &Directory, index: usize, s: &FixtureSubscription) -> String {
    if let Some(id) = &s.id {
        return id.to_lowercase();
    }
    derived_id(&format!("{}/{}/{index}", dir.id, s.sku_id.to_lowercase()))
}

/// A GUID-shaped id derived from `seed`.
fn derived_id(seed: &str) -> String {
    let digest = Sha256::digest(seed);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
