//! `kind: TenantPolicy`: what the MSP promises for a tenant (or every tenant a selector picks)
//! about its Secure Score and licences. `drift` checks it live and reports each broken
//! promise as a finding (`policy.<tenant>.<expectation>`).

use std::ops::RangeInclusive;

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::targets::TenantTargets;
use crate::manifest::yaml::{Node, Value};
use crate::manifest::{ManifestKind, decode_name, optional};
use crate::source::Located;

/// Promises about the targeted tenants, checked by `drift`. Every expectation is optional;
/// at least one must be given.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantPolicyDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// The tenants it holds for (names, or `{selector: ...}` of mapped tenants). A tenant is
    /// held to one policy.
    pub tenants: TenantTargets,
    /// Secure Score expectations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_score: Option<SecureScoreDoc>,
    /// Licence expectations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licences: Option<LicencesDoc>,
}

/// `secureScore:` of a TenantPolicy.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecureScoreDoc {
    /// The latest Secure Score is at least this percentage of the maximum (0-100).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub minimum_percent: Option<Located<f64>>,
    /// The score falls by at most this many percentage points over 7 days (0-100).
    #[serde(rename = "maxDrop7Days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_drop_7_days: Option<Located<f64>>,
}

/// `licences:` of a TenantPolicy.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicencesDoc {
    /// `true`: no paid licence on a disabled or soft-deleted user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_paid_licence_on_disabled_users: Option<Located<bool>>,
    /// At most this many paid seats nobody holds, summed over the tenant's paid SKUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000000))]
    pub max_unassigned_paid_seats: Option<Located<i64>>,
    /// A paid subscription that renews or ends within this many days (0-365) is reported
    /// until a DriftException accepts it (someone has seen to the renewal).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 365))]
    pub subscription_ending_within_days: Option<Located<i64>>,
}

const SECURE_SCORE_FIELDS: &[&str] = &["minimumPercent", "maxDrop7Days"];
const LICENCES_FIELDS: &[&str] = &[
    "noPaidLicenceOnDisabledUsers",
    "maxUnassignedPaidSeats",
    "subscriptionEndingWithinDays",
];

impl ManifestKind for TenantPolicyDoc {
    const KIND: &'static str = "TenantPolicy";
    const FIELDS: &'static [&'static str] = &["name", "tenants", "secureScore", "licences"];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let before = cx.diags.len();
        let name = decode_name(cx, fields, Self::KIND);
        let tenants = fields
            .required(cx, "tenants")
            .and_then(|n| TenantTargets::decode(cx, n));
        let secure_score = optional(fields, "secureScore", |n| {
            let fields = cx.fields(n, "`secureScore`", SECURE_SCORE_FIELDS)?;
            Some(SecureScoreDoc {
                minimum_percent: optional(&fields, "minimumPercent", |n| {
                    number(cx, n, "`minimumPercent`", 0.0..=100.0, "a percentage")
                }),
                max_drop_7_days: optional(&fields, "maxDrop7Days", |n| {
                    number(cx, n, "`maxDrop7Days`", 0.0..=100.0, "percentage points")
                }),
            })
        });
        let licences = optional(fields, "licences", |n| {
            let fields = cx.fields(n, "`licences`", LICENCES_FIELDS)?;
            Some(LicencesDoc {
                no_paid_licence_on_disabled_users: optional(
                    &fields,
                    "noPaidLicenceOnDisabledUsers",
                    |n| cx.bool(n, "`noPaidLicenceOnDisabledUsers`"),
                ),
                max_unassigned_paid_seats: optional(&fields, "maxUnassignedPaidSeats", |n| {
                    whole(cx, n, "`maxUnassignedPaidSeats`", 0..=1_000_000, "seats")
                }),
                subscription_ending_within_days: optional(
                    &fields,
                    "subscriptionEndingWithinDays",
                    |n| whole(cx, n, "`subscriptionEndingWithinDays`", 0..=365, "days"),
                ),
            })
        });
        let doc = TenantPolicyDoc {
            name: name?,
            tenants: tenants?,
            secure_score,
            licences,
        };
        // A policy that promises nothing checks nothing: almost surely a slip.
        if doc.is_empty() && cx.diags.len() == before {
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    doc.name.loc,
                    format!("TenantPolicy `{}` declares no expectation", doc.name.value),
                )
                .with_label("promises nothing")
                .with_help(
                    "add `secureScore:` (minimumPercent, maxDrop7Days) or `licences:` \
                     (noPaidLicenceOnDisabledUsers, maxUnassignedPaidSeats, subscriptionEndingWithinDays)",
                ),
            );
        }
        Some(doc)
    }
}

impl TenantPolicyDoc {
    /// No expectation is written (an expectation set to `false` is written).
    pub fn is_empty(&self) -> bool {
        let score = self
            .secure_score
            .as_ref()
            .is_none_or(|s| s.minimum_percent.is_none() && s.max_drop_7_days.is_none());
        let licences = self.licences.as_ref().is_none_or(|l| {
            l.no_paid_licence_on_disabled_users.is_none()
                && l.max_unassigned_paid_seats.is_none()
                && l.subscription_ending_within_days.is_none()
        });
        score && licences
    }

    /// The expectations as the model keeps them.
    pub fn to_policy(&self) -> crate::policy::TenantPolicy {
        let score = self.secure_score.clone().unwrap_or_default();
        let licences = self.licences.clone().unwrap_or_default();
        crate::policy::TenantPolicy {
            name: self.name.value.clone(),
            minimum_percent: score.minimum_percent.map(|v| v.value),
            max_drop_7_days: score.max_drop_7_days.map(|v| v.value),
            no_paid_licence_on_disabled_users: licences
                .no_paid_licence_on_disabled_users
                .is_some_and(|v| v.value),
            max_unassigned_paid_seats: licences.max_unassigned_paid_seats.map(|v| v.value),
            subscription_ending_within_days: licences
                .subscription_ending_within_days
                .map(|v| v.value),
        }
    }
}

fn out_of_range(cx: &mut Cx, node: &Node, what: &str, shown: String, range: String, unit: &str) {
    cx.report(
        Diagnostic::error(
            Code::InvalidValue,
            cx.loc(node),
            format!("{what} must be from {range}, found {shown}"),
        )
        .with_label(format!("out of range ({unit})")),
    );
}

/// A number in `range` (whole or not).
fn number(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    range: RangeInclusive<f64>,
    unit: &str,
) -> Option<Located<f64>> {
    let value = match node.value {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => {
            cx.wrong_type(node, what, "a number");
            return None;
        }
    };
    if !range.contains(&value) {
        let shown = cx.file.slice(cx.loc(node)).trim().to_string();
        let bounds = format!("{} to {}", range.start(), range.end());
        out_of_range(cx, node, what, shown, bounds, unit);
        return None;
    }
    Some(Located::new(value, cx.loc(node)))
}

/// A whole number in `range`.
fn whole(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    range: RangeInclusive<i64>,
    unit: &str,
) -> Option<Located<i64>> {
    let value = match node.value {
        Value::Int(value) => value,
        Value::Float(_) => {
            let shown = cx.file.slice(cx.loc(node)).trim().to_string();
            cx.report(
                Diagnostic::error(
                    Code::WrongType,
                    cx.loc(node),
                    format!("{what} must be a whole number, found {shown}"),
                )
                .with_label(format!("not a whole number of {unit}")),
            );
            return None;
        }
        _ => {
            cx.wrong_type(node, what, "a whole number");
            return None;
        }
    };
    if !range.contains(&value) {
        let bounds = format!("{} to {}", range.start(), range.end());
        out_of_range(cx, node, what, value.to_string(), bounds, unit);
        return None;
    }
    Some(Located::new(value, cx.loc(node)))
}
