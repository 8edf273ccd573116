//! `GET /security/secureScores` and `GET /security/secureScoreControlProfiles`, generated from
//! a tenant's small score spec (`FixtureSecureScore`) so that a fleet's 90 days of records are
//! computed when asked for, never stored in the saved world.
//!
//! Sources (microsoft-graph-docs-contrib): `resources/securescore.md` (one record a day, 90 days
//! kept, newest first, `$top=n` for n days; the properties), `resources/controlscore.md`,
//! `resources/averagecomparativescore.md`, `resources/securescorecontrolprofile.md`; GRAPH.md
//! "Secure Score" (150 requests a minute per app per tenant) and "Application permissions"
//! (SecurityEvents.Read.All; security endpoints answer 403 with their own codes).
//! *Unconfirmed*: the record id's form (`{tenant}_{createdDateTime}` as the beta page says).

use serde_json::{Value, json};

use super::directory::Directory;
use super::fixture::FixtureSecureScore;

/// The controls the sandbox scores: (name, category, title, tier, max score). Names and
/// titles after Microsoft's; the points are the sandbox's.
const CONTROLS: &[(&str, &str, &str, &str, f64)] = &[
    (
        "AdminMFAV2",
        "Identity",
        "Ensure multifactor authentication is enabled for all users in administrative roles",
        "Core",
        10.0,
    ),
    (
        "MFARegistrationV2",
        "Identity",
        "Ensure all users can complete multifactor authentication",
        "Core",
        9.0,
    ),
    (
        "BlockLegacyAuthentication",
        "Identity",
        "Enable policy to block legacy authentication",
        "Core",
        8.0,
    ),
    (
        "SelfServicePasswordReset",
        "Identity",
        "Enable self-service password reset",
        "Core",
        1.0,
    ),
    (
        "PWAgePolicyNew",
        "Identity",
        "Set the password expiration policy to never expire",
        "Core",
        8.0,
    ),
    (
        "OneAdmin",
        "Identity",
        "Designate more than one global admin",
        "Core",
        1.0,
    ),
    (
        "mcasAuditLogsEnabled",
        "Apps",
        "Ensure audit data recording is enabled",
        "Core",
        5.0,
    ),
    (
        "mdo_safelinksforemail",
        "Apps",
        "Ensure Safe Links for email is enabled",
        "Defense in depth",
        9.0,
    ),
    (
        "mdo_atpprotection",
        "Apps",
        "Turn on Microsoft Defender for Office 365 in SharePoint, OneDrive and Teams",
        "Defense in depth",
        8.0,
    ),
    (
        "IntuneCompliancePolicy",
        "Device",
        "Create a device compliance policy",
        "Core",
        9.0,
    ),
];

fn max_score() -> f64 {
    CONTROLS.iter().map(|c| c.4).sum()
}

/// The tenant's records, newest first: one a day up to today, `days` of them; the score
/// climbs from `startPercent` by `dailyChange` points a day (a fall when negative), spread over
/// the controls in their order.
pub fn scores(dir: &Directory, spec: &FixtureSecureScore, today: jiff::civil::Date) -> Vec<Value> {
    let max = max_score();
    (0..spec.days)
        .map(|back| {
            let day = today
                .checked_sub(jiff::Span::new().days(back as i64))
                .expect("a day in range");
            let step = (spec.days - 1 - back) as f64;
            let percent = (spec.start_percent + spec.daily_change * step).clamp(0.0, 100.0);
            let current = (max * percent / 100.0 * 100.0).round() / 100.0;
            // Controls filled in order: the first ones achieved, one partly, the rest open.
            let mut left = current;
            let controls: Vec<Value> = CONTROLS
                .iter()
                .map(|(name, category, _, _, points)| {
                    let score = left.min(*points);
                    left -= score;
                    json!({
                        "controlName": name,
                        "controlCategory": category,
                        "score": score,
                        "description": "",
                    })
                })
                .collect();
            let created = format!("{day}T02:00:00Z");
            json!({
                "id": format!("{}_{created}", dir.id),
                "azureTenantId": dir.id,
                "createdDateTime": created,
                "currentScore": current,
                "maxScore": max,
                "activeUserCount": dir.users.values().filter(|u| u.account_enabled).count(),
                "licensedUserCount": dir.users.values().filter(|u| !u.profile.assigned_licenses.is_empty()).count(),
                "enabledServices": ["HasExchange", "HasSharePoint"],
                "averageComparativeScores": [
                    {"basis": "AllTenants", "averageScore": (max * 0.42 * 100.0).round() / 100.0},
                    {"basis": "TotalSeats", "averageScore": (max * 0.47 * 100.0).round() / 100.0},
                ],
                "controlScores": controls,
            })
        })
        .collect()
}

/// The control profiles, as `secureScoreControlProfiles` lists them.
pub fn control_profiles(dir: &Directory) -> Vec<Value> {
    CONTROLS
        .iter()
        .enumerate()
        .map(|(rank, (name, category, title, tier, points))| {
            json!({
                "id": name,
                "azureTenantId": dir.id,
                "title": title,
                "controlCategory": category,
                "tier": tier,
                "maxScore": points,
                "rank": rank + 1,
                "remediation": format!("<p>{title}.</p>"),
                "userImpact": "Moderate",
                "implementationCost": "Low",
                "deprecated": false,
                "service": "AzureAD",
                "threats": [],
            })
        })
        .collect()
}
