//! Licences: what each customer tenant pays for (`subscribedSkus`, `directory/subscriptions`),
//! who holds it (users' `assignedLicenses` and `licenseAssignmentStates`), and what an MSP
//! looks for in them (findings). Everything here is pure: the Graph answers come in as plain
//! data, the summary and the findings go out; reading and rendering are elsewhere.
//! Seats in their grace period (`warning`: expired, not renewed) stay assigned, so
//! over-assignment counts them, but they are not paid seats to hand out; Graph has no prices;
//! product names come from Microsoft's table ([`products`]), not from Graph.

pub mod products;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// A SKU as `GET /subscribedSkus` lists it (the properties used).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscribedSku {
    pub sku_id: String,
    pub sku_part_number: Option<String>,
    /// `User` or `Company`: only `User` SKUs are assigned to people.
    pub applies_to: Option<String>,
    /// `Enabled`, `Warning` (expired, in its grace period), `Suspended`, `Deleted`, `LockedOut`.
    pub capability_status: Option<String>,
    pub consumed_units: i64,
    pub prepaid_units: PrepaidUnits,
}

/// `licenseUnitsDetail`: seats by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrepaidUnits {
    pub enabled: i64,
    pub suspended: i64,
    pub warning: i64,
    pub locked_out: i64,
}

/// A subscription as `GET /directory/subscriptions` lists it (the properties used).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanySubscription {
    pub id: String,
    pub sku_id: String,
    pub sku_part_number: Option<String>,
    /// `Enabled`, `Warning`, `Suspended`, `Deleted`, `LockedOut`.
    pub status: Option<String>,
    pub total_licenses: i64,
    pub is_trial: bool,
    pub created_date_time: Option<String>,
    /// When the subscription moves to its next state unless renewed (RFC 3339).
    pub next_lifecycle_date_time: Option<String>,
}

/// One SKU of a tenant, summed up for people and invoices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuSummary {
    pub sku_id: String,
    pub part_number: String,
    /// Microsoft's product name, else the part number.
    pub name: String,
    pub status: String,
    /// Seats paid for and usable (`prepaidUnits.enabled`).
    pub purchased: i64,
    /// Seats of an expired subscription in its grace period (`prepaidUnits.warning`).
    pub in_grace: i64,
    pub suspended: i64,
    pub consumed: i64,
    /// purchased + in grace - consumed; negative: more assigned than there are seats.
    pub available: i64,
    /// Every subscription of the SKU is a trial.
    pub trial: bool,
    /// Seats of its live trial subscriptions (counted in `purchased`, not paid for).
    pub trial_seats: i64,
    /// Counted as paid: some subscription is not a trial, and Microsoft's table or the part
    /// number does not call it free, a trial or viral.
    pub paid: bool,
    /// Assigned to users (`appliesTo` User), so unassigned seats mean something.
    pub for_users: bool,
    /// The earliest next lifecycle date of its live paid subscriptions (renewal or expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_lifecycle: Option<String>,
    /// When its first live trial ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ends: Option<String>,
}

impl SkuSummary {
    /// Paid seats nobody holds: enabled seats, less trial seats, less those consumed.
    pub fn unassigned_paid_seats(&self) -> i64 {
        if self.paid && self.for_users {
            (self.purchased - self.trial_seats - self.consumed).max(0)
        } else {
            0
        }
    }
}

/// The tenant's SKUs, in part-number order, each with its subscriptions' trial status and
/// next lifecycle date.
pub fn summarize(skus: &[SubscribedSku], subscriptions: &[CompanySubscription]) -> Vec<SkuSummary> {
    let mut summaries: Vec<SkuSummary> = skus
        .iter()
        .map(|sku| {
            let id = sku.sku_id.to_ascii_lowercase();
            let own: Vec<&CompanySubscription> = subscriptions
                .iter()
                .filter(|s| s.sku_id.eq_ignore_ascii_case(&id))
                .collect();
            let live = own
                .iter()
                .filter(|s| !matches!(s.status.as_deref(), Some("Deleted" | "LockedOut")));
            let earliest = |trials: bool| {
                live.clone()
                    .filter(|s| s.is_trial == trials)
                    .filter_map(|s| {
                        let text = s.next_lifecycle_date_time.as_ref()?;
                        Some((instant(text)?, text.clone()))
                    })
                    .min()
                    .map(|(_, text)| text)
            };
            let trial_seats = live
                .clone()
                .filter(|s| s.is_trial && s.status.as_deref() == Some("Enabled"))
                .map(|s| s.total_licenses)
                .sum();
            let trial = !own.is_empty() && own.iter().all(|s| s.is_trial);
            let part_number = sku
                .sku_part_number
                .clone()
                .or_else(|| products::product(&id).map(|p| p.part_number.clone()))
                .unwrap_or_default();
            let name = products::display_name(&id, Some(&part_number));
            let units = &sku.prepaid_units;
            SkuSummary {
                paid: !trial && !free_by_name(&part_number, &name),
                for_users: sku
                    .applies_to
                    .as_deref()
                    .is_none_or(|a| a.eq_ignore_ascii_case("User")),
                sku_id: id,
                part_number,
                name,
                status: sku.capability_status.clone().unwrap_or_default(),
                purchased: units.enabled,
                in_grace: units.warning,
                suspended: units.suspended,
                consumed: sku.consumed_units,
                available: units.enabled + units.warning - sku.consumed_units,
                trial,
                trial_seats,
                next_lifecycle: earliest(false),
                trial_ends: earliest(true),
            }
        })
        .collect();
    summaries.sort_by(|a, b| {
        a.part_number
            .to_ascii_lowercase()
            .cmp(&b.part_number.to_ascii_lowercase())
            .then_with(|| a.sku_id.cmp(&b.sku_id))
    });
    summaries
}

/// Graph has no prices: a SKU Microsoft's table or part number calls free, a trial, viral
/// (self-service sign-up) or exploratory is not counted as paid.
fn free_by_name(part_number: &str, name: &str) -> bool {
    let part = part_number.to_ascii_uppercase();
    let name = name.to_ascii_lowercase();
    ["FREE", "TRIAL", "VIRAL", "EXPLORATORY"]
        .iter()
        .any(|w| part.contains(w))
        || ["free", "trial", "viral", "exploratory"]
            .iter()
            .any(|w| name.contains(w))
        || matches!(
            part.as_str(),
            "POWERAPPS_DEV" | "RIGHTSMANAGEMENT_ADHOC" | "WINDOWS_STORE" | "STREAM"
        )
}

/// How a user holds a licence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "group")]
pub enum Assignment {
    Direct,
    /// Inherited from the group with this id.
    Group(String),
}

/// One licence a user holds, with its assignment error if Entra reports one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldLicence {
    pub sku_id: String,
    /// In `assignedLicenses`: the user holds a seat. A licence only in an error state does not.
    pub assigned: bool,
    pub assignment: Assignment,
    /// `CountViolation`, `MutuallyExclusiveViolation`, ... (`None`: assigned fine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A user's licences, as the findings need them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicensedUser {
    pub id: String,
    pub display_name: String,
    pub enabled: bool,
    /// Soft-deleted (`directory/deletedItems`): restorable, still holding its licences.
    pub deleted: bool,
    pub licences: Vec<HeldLicence>,
}

impl LicensedUser {
    /// From a Graph user with `assignedLicenses` and `licenseAssignmentStates`: each licence
    /// once, by its assignment state where Graph gives one (a licence both direct and by a
    /// group is listed for each way).
    pub fn from_graph(user: &serde_json::Value, deleted: bool) -> Option<LicensedUser> {
        let id = user.get("id")?.as_str()?.to_ascii_lowercase();
        let text =
            |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let assigned: Vec<String> = user
            .get("assignedLicenses")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|l| text(l, "skuId").map(|s| s.to_ascii_lowercase()))
            .collect();
        let mut licences: Vec<HeldLicence> = user
            .get("licenseAssignmentStates")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|state| {
                let sku_id = text(state, "skuId")?.to_ascii_lowercase();
                let assignment = match text(state, "assignedByGroup") {
                    Some(group) if !group.is_empty() => {
                        Assignment::Group(group.to_ascii_lowercase())
                    }
                    _ => Assignment::Direct,
                };
                let error = text(state, "error").filter(|e| !e.is_empty() && e != "None");
                Some(HeldLicence {
                    assigned: assigned.contains(&sku_id),
                    sku_id,
                    assignment,
                    error,
                })
            })
            .collect();
        for sku_id in assigned {
            if !licences.iter().any(|l| l.sku_id == sku_id) {
                licences.push(HeldLicence {
                    sku_id,
                    assigned: true,
                    assignment: Assignment::Direct,
                    error: None,
                });
            }
        }
        Some(LicensedUser {
            display_name: text(user, "displayName").unwrap_or_default(),
            enabled: user
                .get("accountEnabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            deleted,
            id,
            licences,
        })
    }
}

/// Seats of one SKU held by the contacts routed to one organization: what an MSP invoices.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSeats {
    /// The organization the holders' contacts are routed to; `None`: holders that are not
    /// contacts (not synced, or excluded by the rules), so the sum still matches the tenant.
    pub organization: Option<String>,
    pub sku_id: String,
    pub part_number: String,
    pub product: String,
    /// Users holding an assigned seat (each once, however many ways it was assigned).
    pub seats: i64,
    /// Of those, seats on paid SKUs (what is billed).
    pub paid: bool,
}

/// Seats per organization and SKU: each user that holds an assigned seat and is not deleted,
/// counted under the organization `organization_of` gives its id (None: no active contact).
/// Sorted by organization (unrouted last), then product.
pub fn seats_by_organization(
    skus: &[SkuSummary],
    users: &[LicensedUser],
    organization_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<OrganizationSeats> {
    let mut counts: std::collections::BTreeMap<(Option<String>, String), i64> = Default::default();
    for user in users.iter().filter(|u| !u.deleted) {
        let organization = organization_of(&user.id);
        let mut held: Vec<String> = user
            .licences
            .iter()
            .filter(|l| l.assigned)
            .map(|l| l.sku_id.to_ascii_lowercase())
            .collect();
        held.sort();
        held.dedup();
        for sku in held {
            *counts.entry((organization.clone(), sku)).or_default() += 1;
        }
    }
    let mut rows: Vec<OrganizationSeats> = counts
        .into_iter()
        .map(|((organization, sku_id), seats)| {
            let summary = skus.iter().find(|s| s.sku_id.eq_ignore_ascii_case(&sku_id));
            let part_number = summary.map(|s| s.part_number.clone()).unwrap_or_default();
            OrganizationSeats {
                organization,
                product: summary.map_or_else(|| sku_id.clone(), |s| s.name.clone()),
                paid: summary.is_some_and(|s| s.paid),
                part_number,
                sku_id,
                seats,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.organization.is_none(), &a.organization, &a.product).cmp(&(
            b.organization.is_none(),
            &b.organization,
            &b.product,
        ))
    });
    rows
}

/// Which licences each user holds, as a contact listing shows them: by user id, each
/// licence's product name, "(via group)" when a group assigns it, "(error: ...)" when Entra
/// could not apply it; users holding none are left out.
pub fn holdings(
    skus: &[SkuSummary],
    users: &[LicensedUser],
) -> std::collections::BTreeMap<String, Vec<String>> {
    users
        .iter()
        .filter(|u| !u.deleted && !u.licences.is_empty())
        .map(|u| {
            let mut held: Vec<String> = u
                .licences
                .iter()
                .map(|l| {
                    let product = skus
                        .iter()
                        .find(|s| s.sku_id.eq_ignore_ascii_case(&l.sku_id))
                        .map_or_else(
                            || products::display_name(&l.sku_id, None),
                            |s| s.name.clone(),
                        );
                    match (&l.assignment, &l.error) {
                        (_, Some(error)) => format!("{product} (error: {error})"),
                        (Assignment::Group(_), None) => format!("{product} (via group)"),
                        (Assignment::Direct, None) => product,
                    }
                })
                .collect();
            held.sort();
            held.dedup();
            (u.id.clone(), held)
        })
        .collect()
}

/// A tenant's holdings as kept in state (the `licence_holdings` observation): when they were
/// read and each user's licences.
pub fn holdings_value(
    read_at: &str,
    holdings: &std::collections::BTreeMap<String, Vec<String>>,
) -> serde_json::Value {
    serde_json::json!({ "readAt": read_at, "users": holdings })
}

/// When the holdings kept were read, if they say.
pub fn holdings_read_at(value: &serde_json::Value) -> Option<jiff::Timestamp> {
    value.get("readAt")?.as_str()?.parse().ok()
}

/// One user's licences from kept holdings.
pub fn held_by<'a>(value: &'a serde_json::Value, user_id: &str) -> Vec<&'a str> {
    value
        .get("users")
        .and_then(|u| u.get(user_id))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect()
}

/// A user as a finding names them: their display name (set in the customer's tenant, so not
/// unique and not trusted: renderers escape it) and their object id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    pub name: String,
    pub id: String,
}

/// Something about a tenant's licences an MSP acts on (money wasted, users without service,
/// a renewal to arrange).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "finding")]
pub enum Finding {
    /// A paid licence on a disabled account: paid for, used by nobody.
    PaidLicenceOnDisabledUser { user: UserRef, sku: String },
    /// A paid licence on a soft-deleted user (it keeps its licences for 30 days).
    PaidLicenceOnDeletedUser { user: UserRef, sku: String },
    /// Paid seats nobody holds (enabled seats only: seats in grace are not renewed).
    UnassignedPaidSeats { sku: String, seats: i64 },
    /// More assigned than there are seats, even counting seats in grace.
    OverAssigned { sku: String, by: i64 },
    /// Assigned seats that exist only in an expired subscription's grace period: they go
    /// when it ends unless it is renewed.
    AssignedSeatsInGrace { sku: String, seats: i64 },
    /// Entra could not apply a licence to a user.
    AssignmentError {
        user: UserRef,
        sku: String,
        error: String,
    },
    /// A paid subscription's next lifecycle step (renewal or expiry) is near.
    SubscriptionEnding { sku: String, on: String, days: i64 },
    /// A trial ends soon.
    TrialEnding { sku: String, on: String, days: i64 },
    /// Seats suspended or locked out while assigned.
    SkuNotEnabled {
        sku: String,
        status: String,
        consumed: i64,
    },
}

impl Finding {
    /// The finding's kind, as drift and reports group them (`paid-licence-on-disabled-user`).
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::PaidLicenceOnDisabledUser { .. } => "paid-licence-on-disabled-user",
            Finding::PaidLicenceOnDeletedUser { .. } => "paid-licence-on-deleted-user",
            Finding::UnassignedPaidSeats { .. } => "unassigned-paid-seats",
            Finding::OverAssigned { .. } => "over-assigned",
            Finding::AssignedSeatsInGrace { .. } => "assigned-seats-in-grace",
            Finding::AssignmentError { .. } => "licence-assignment-error",
            Finding::SubscriptionEnding { .. } => "subscription-ending",
            Finding::TrialEnding { .. } => "trial-ending",
            Finding::SkuNotEnabled { .. } => "sku-not-enabled",
        }
    }

    /// The SKU it is about, and the user if any: with the kind, its sort key.
    fn key(&self) -> (&str, Option<&UserRef>) {
        match self {
            Finding::PaidLicenceOnDisabledUser { user, sku }
            | Finding::PaidLicenceOnDeletedUser { user, sku }
            | Finding::AssignmentError { user, sku, .. } => (sku, Some(user)),
            Finding::UnassignedPaidSeats { sku, .. }
            | Finding::OverAssigned { sku, .. }
            | Finding::AssignedSeatsInGrace { sku, .. }
            | Finding::SubscriptionEnding { sku, .. }
            | Finding::TrialEnding { sku, .. }
            | Finding::SkuNotEnabled { sku, .. } => (sku, None),
        }
    }
}

/// How far ahead the findings look.
#[derive(Clone, Debug)]
pub struct FindingOptions {
    /// Today (UTC), so findings are reproducible.
    pub today: jiff::civil::Date,
    /// Subscriptions ending within this many days are listed.
    pub ending_within_days: i64,
    /// Trials ending within this many days are listed.
    pub trial_within_days: i64,
}

/// The findings of one tenant, in a stable order (by kind, then SKU, then user). SKUs are
/// named as people know them (product names); users by display name and id.
pub fn findings(
    skus: &[SkuSummary],
    users: &[LicensedUser],
    options: &FindingOptions,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let sku_name = |id: &str| {
        skus.iter()
            .find(|s| s.sku_id == id)
            .map_or_else(|| products::display_name(id, None), |s| s.name.clone())
    };
    let paid = |id: &str| skus.iter().find(|s| s.sku_id == id).is_some_and(|s| s.paid);
    for user in users {
        let who = UserRef {
            name: user.display_name.clone(),
            id: user.id.clone(),
        };
        // A licence held both directly and through a group is one seat: one finding.
        let mut seen = std::collections::BTreeSet::new();
        for licence in &user.licences {
            if licence.assigned && paid(&licence.sku_id) && seen.insert(&licence.sku_id) {
                let sku = sku_name(&licence.sku_id);
                if user.deleted {
                    out.push(Finding::PaidLicenceOnDeletedUser {
                        user: who.clone(),
                        sku,
                    });
                } else if !user.enabled {
                    out.push(Finding::PaidLicenceOnDisabledUser {
                        user: who.clone(),
                        sku,
                    });
                }
            }
            if let Some(error) = &licence.error {
                out.push(Finding::AssignmentError {
                    user: who.clone(),
                    sku: sku_name(&licence.sku_id),
                    error: error.clone(),
                });
            }
        }
    }
    for sku in skus {
        let usable = matches!(sku.status.as_str(), "Enabled" | "Warning");
        if usable && sku.available < 0 {
            out.push(Finding::OverAssigned {
                sku: sku.name.clone(),
                by: -sku.available,
            });
        }
        let in_grace = (sku.consumed - sku.purchased).clamp(0, sku.in_grace);
        if usable && in_grace > 0 {
            out.push(Finding::AssignedSeatsInGrace {
                sku: sku.name.clone(),
                seats: in_grace,
            });
        }
        if sku.unassigned_paid_seats() > 0 {
            out.push(Finding::UnassignedPaidSeats {
                sku: sku.name.clone(),
                seats: sku.unassigned_paid_seats(),
            });
        }
        // In grace (`Warning`), its assigned seats are the finding above.
        if matches!(sku.status.as_str(), "Suspended" | "LockedOut") && sku.consumed > 0 {
            out.push(Finding::SkuNotEnabled {
                sku: sku.name.clone(),
                status: sku.status.clone(),
                consumed: sku.consumed,
            });
        }
        let ending = [
            (
                sku.paid,
                &sku.next_lifecycle,
                options.ending_within_days,
                false,
            ),
            (true, &sku.trial_ends, options.trial_within_days, true),
        ];
        for (applies, next, within, trial) in ending {
            let Some(date) = next
                .as_deref()
                .and_then(instant)
                .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
            else {
                continue;
            };
            let Ok(span) = options.today.until(date) else {
                continue;
            };
            let days = i64::from(span.get_days());
            if applies && (0..=within).contains(&days) {
                let (sku, on) = (sku.name.clone(), date.to_string());
                out.push(if trial {
                    Finding::TrialEnding { sku, on, days }
                } else {
                    Finding::SubscriptionEnding { sku, on, days }
                });
            }
        }
    }
    out.sort_by(|a, b| a.kind().cmp(b.kind()).then_with(|| a.key().cmp(&b.key())));
    out
}

fn instant(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}
