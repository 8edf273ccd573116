//! Licences: what each customer tenant pays for (`subscribedSkus`, `directory/subscriptions`),
//! who holds it (users' `assignedLicenses` and `licenseAssignmentStates`), and what an MSP
//! looks for in them (findings). Everything here is pure: the Graph answers come in as plain
//! data, the summary and the findings go out; reading and rendering are elsewhere.
//! GRAPH.md, "Licences": available seats are enabled + warning - consumed (seats in their
//! grace period stay assigned), Graph has no prices, and product names come from Microsoft's
//! table ([`products`]), not from Graph.

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
    /// Counted as paid: not a trial, and not named free, a trial or viral by Microsoft.
    pub paid: bool,
    /// Assigned to users (`appliesTo` User), so unassigned seats mean something.
    pub for_users: bool,
    /// The earliest next lifecycle date of its live subscriptions (renewal or expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_lifecycle: Option<String>,
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
            let next_lifecycle = live
                .filter_map(|s| {
                    let text = s.next_lifecycle_date_time.as_ref()?;
                    Some((instant(text)?, text.clone()))
                })
                .min()
                .map(|(_, text)| text);
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
                next_lifecycle,
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
                    sku_id,
                    assignment,
                    error,
                })
            })
            .collect();
        for assigned in user
            .get("assignedLicenses")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(sku_id) = text(assigned, "skuId").map(|s| s.to_ascii_lowercase())
                && !licences.iter().any(|l| l.sku_id == sku_id)
            {
                licences.push(HeldLicence {
                    sku_id,
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

/// Something about a tenant's licences an MSP acts on (money wasted, users without service,
/// a renewal to arrange).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "finding")]
pub enum Finding {
    /// A paid licence on a disabled account: paid for, used by nobody.
    PaidLicenceOnDisabledUser { user: String, sku: String },
    /// A paid licence on a soft-deleted user (it keeps its licences for 30 days).
    PaidLicenceOnDeletedUser { user: String, sku: String },
    /// Paid seats nobody holds.
    UnassignedPaidSeats { sku: String, seats: i64 },
    /// More assigned than there are seats (including seats in grace).
    OverAssigned { sku: String, by: i64 },
    /// Entra could not apply a licence to a user.
    AssignmentError {
        user: String,
        sku: String,
        error: String,
    },
    /// A paid subscription's next lifecycle step (renewal or expiry) is near.
    SubscriptionEnding { sku: String, on: String, days: i64 },
    /// A trial ends soon.
    TrialEnding { sku: String, on: String, days: i64 },
    /// Seats expired (in grace), suspended or locked out while assigned.
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
            Finding::AssignmentError { .. } => "licence-assignment-error",
            Finding::SubscriptionEnding { .. } => "subscription-ending",
            Finding::TrialEnding { .. } => "trial-ending",
            Finding::SkuNotEnabled { .. } => "sku-not-enabled",
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

/// The findings of one tenant, in a stable order (by kind, then SKU and user). SKUs and
/// users are named as people know them (product names, display names).
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
        let who = if user.display_name.is_empty() {
            user.id.clone()
        } else {
            user.display_name.clone()
        };
        for licence in &user.licences {
            if paid(&licence.sku_id) {
                if user.deleted {
                    out.push(Finding::PaidLicenceOnDeletedUser {
                        user: who.clone(),
                        sku: sku_name(&licence.sku_id),
                    });
                } else if !user.enabled {
                    out.push(Finding::PaidLicenceOnDisabledUser {
                        user: who.clone(),
                        sku: sku_name(&licence.sku_id),
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
        if sku.available < 0 {
            out.push(Finding::OverAssigned {
                sku: sku.name.clone(),
                by: -sku.available,
            });
        } else if sku.paid && sku.for_users && sku.available > 0 && sku.purchased > 0 {
            out.push(Finding::UnassignedPaidSeats {
                sku: sku.name.clone(),
                seats: sku.available,
            });
        }
        if matches!(sku.status.as_str(), "Warning" | "Suspended" | "LockedOut") && sku.consumed > 0
        {
            out.push(Finding::SkuNotEnabled {
                sku: sku.name.clone(),
                status: sku.status.clone(),
                consumed: sku.consumed,
            });
        }
        if let Some(next) = &sku.next_lifecycle
            && let Some(date) = instant(next).map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        {
            let Ok(span) = options.today.until(date) else {
                continue;
            };
            let days = i64::from(span.get_days());
            let (within, trial) = if sku.trial {
                (options.trial_within_days, true)
            } else {
                (options.ending_within_days, false)
            };
            if (0..=within).contains(&days) && (trial || sku.paid) {
                let on = date.to_string();
                out.push(if trial {
                    Finding::TrialEnding {
                        sku: sku.name.clone(),
                        on,
                        days,
                    }
                } else {
                    Finding::SubscriptionEnding {
                        sku: sku.name.clone(),
                        on,
                        days,
                    }
                });
            }
        }
    }
    out.sort_by(|a, b| {
        a.kind()
            .cmp(b.kind())
            .then_with(|| format!("{a:?}").cmp(&format!("{b:?}")))
    });
    out
}

fn instant(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}
