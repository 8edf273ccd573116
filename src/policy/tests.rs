use super::*;
use crate::licences::{
    CompanySubscription, LicensedUser, PrepaidUnits, SubscribedSku, UserRef, findings, summarize,
};

const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const BASIC: &str = "3b555118-da6a-4418-894f-7df1e2096870";

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 12, 7)
}

/// A score of `percent` on `date` (max 200 points).
fn day(date: &str, percent: f64) -> DailyScore {
    DailyScore {
        date: date.into(),
        current: percent * 2.0,
        max: 200.0,
        active_users: 0,
        licensed_users: 0,
        comparative: Vec::new(),
        controls: Vec::new(),
    }
}

/// Days from 2026-12-01 on, one a day, at the given percentages.
fn history(percentages: &[f64]) -> Vec<DailyScore> {
    let start = jiff::civil::date(2026, 12, 1);
    percentages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let date = start.checked_add(jiff::Span::new().days(i as i64)).unwrap();
            day(&date.to_string(), *p)
        })
        .collect()
}

fn policy() -> TenantPolicy {
    TenantPolicy {
        name: "promises".into(),
        ..TenantPolicy::default()
    }
}

fn sku(id: &str, part: &str, enabled: i64, consumed: i64) -> SubscribedSku {
    SubscribedSku {
        sku_id: id.into(),
        sku_part_number: Some(part.into()),
        applies_to: Some("User".into()),
        capability_status: Some("Enabled".into()),
        consumed_units: consumed,
        prepaid_units: PrepaidUnits {
            enabled,
            ..PrepaidUnits::default()
        },
    }
}

fn subscription(sku_id: &str, next: &str) -> CompanySubscription {
    CompanySubscription {
        id: format!("sub-{sku_id}"),
        sku_id: sku_id.into(),
        status: Some("Enabled".into()),
        total_licenses: 10,
        next_lifecycle_date_time: Some(next.into()),
        ..CompanySubscription::default()
    }
}

fn user(id: &str, name: &str, enabled: bool, deleted: bool, sku: &str) -> LicensedUser {
    LicensedUser::from_graph(
        &serde_json::json!({
            "id": id,
            "displayName": name,
            "accountEnabled": enabled,
            "assignedLicenses": [{"skuId": sku}],
        }),
        deleted,
    )
    .unwrap()
}

/// E3: 10 seats, 7 used, renewing 2027-01-05 (29 days after today); Business Basic: 4 seats,
/// 3 used, renewing 2027-06-30. Dora (disabled) and Del (soft-deleted) hold E3.
fn tenant(policy: &TenantPolicy) -> (Vec<SkuSummary>, Vec<Finding>) {
    let skus = summarize(
        &[
            sku(E3, "SPE_E3", 10, 7),
            sku(BASIC, "O365_BUSINESS_ESSENTIALS", 4, 3),
        ],
        &[
            subscription(E3, "2027-01-05T00:00:00Z"),
            subscription(BASIC, "2027-06-30T00:00:00Z"),
        ],
    );
    let users = [
        user("u-1", "Frances", true, false, E3),
        user("u-2", "Dora", false, false, E3),
        user("u-3", "Del", true, true, E3),
    ];
    let found = findings(&skus, &users, &policy.finding_options(today()));
    (skus, found)
}

fn details(checked: &Checked) -> Vec<(Expectation, &str)> {
    checked
        .breaches
        .iter()
        .map(|b| (b.expectation, b.detail.as_str()))
        .collect()
}

#[test]
fn a_score_under_the_minimum_is_a_breach_with_its_numbers_and_day() {
    let p = TenantPolicy {
        minimum_percent: Some(50.0),
        ..policy()
    };
    let checked = check(&p, &[], &[], &history(&[55.0, 41.2]));
    assert_eq!(
        details(&checked),
        [(
            Expectation::SecureScoreMinimum,
            "Secure Score 41.2% on 2026-12-02 is under the 50% minimum"
        )]
    );
    assert!(checked.notes.is_empty());
    // The latest day counts, not the lowest; exactly the minimum keeps the promise.
    assert_eq!(
        check(&p, &[], &[], &history(&[41.2, 50.0])),
        Checked::default()
    );
    // Just under: enough decimals that it does not read as the minimum itself.
    let close = check(&p, &[], &[], &[day("2026-12-01", 49.96)]);
    assert_eq!(
        close.breaches[0].detail,
        "Secure Score 49.96% on 2026-12-01 is under the 50% minimum"
    );
    let fractional = TenantPolicy {
        minimum_percent: Some(42.5),
        ..policy()
    };
    assert_eq!(
        check(&fractional, &[], &[], &[day("2026-12-01", 40.0)]).breaches[0].detail,
        "Secure Score 40.0% on 2026-12-01 is under the 42.5% minimum"
    );
}

#[test]
fn no_score_records_is_a_note_for_each_score_expectation_not_a_breach_nor_a_pass() {
    let p = TenantPolicy {
        minimum_percent: Some(50.0),
        max_drop_7_days: Some(5.0),
        ..policy()
    };
    let checked = check(&p, &[], &[], &[]);
    assert!(checked.breaches.is_empty());
    let notes: Vec<(Expectation, &str)> = checked
        .notes
        .iter()
        .map(|n| (n.expectation, n.detail.as_str()))
        .collect();
    assert_eq!(
        notes,
        [
            (
                Expectation::SecureScoreMinimum,
                "the 50% minimum is not checked: the tenant has no Secure Score records yet"
            ),
            (
                Expectation::SecureScoreDrop,
                "the 7-day drop (max 5) is not checked: the tenant has no Secure Score records yet"
            ),
        ]
    );
}

#[test]
fn a_drop_over_seven_days_beyond_the_maximum_is_a_breach_naming_both_days() {
    let p = TenantPolicy {
        max_drop_7_days: Some(5.0),
        ..policy()
    };
    // 2026-12-01 .. 2026-12-08: 47.7 down to 41.2 is 6.5 points.
    let falling = history(&[47.7, 47.0, 46.0, 45.0, 44.0, 43.0, 42.0, 41.2]);
    assert_eq!(
        details(&check(&p, &[], &[], &falling)),
        [(
            Expectation::SecureScoreDrop,
            "Secure Score dropped 6.5 points in 7 days (max 5): 47.7% on 2026-12-01, 41.2% on 2026-12-08"
        )]
    );
    // Exactly the maximum, a rise, and a fall that came back within the week keep it.
    assert!(
        check(
            &p,
            &[],
            &[],
            &history(&[45.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 40.0])
        )
        .breaches
        .is_empty()
    );
    assert!(
        check(
            &p,
            &[],
            &[],
            &history(&[40.0, 41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 60.0])
        )
        .breaches
        .is_empty()
    );
    assert!(
        check(
            &p,
            &[],
            &[],
            &history(&[45.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 44.0])
        )
        .breaches
        .is_empty()
    );
    // Only the last 7 days count: an older fall is history.
    let old_fall = history(&[70.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0]);
    assert!(check(&p, &[], &[], &old_fall).breaches.is_empty());
}

#[test]
fn a_gap_in_the_history_compares_with_the_nearest_older_day_and_says_how_many_days() {
    let p = TenantPolicy {
        max_drop_7_days: Some(5.0),
        ..policy()
    };
    // No record from 2026-12-03 to 2026-12-09: the day before the week is 2026-12-02.
    let gappy = [
        day("2026-12-01", 60.0),
        day("2026-12-02", 58.0),
        day("2026-12-10", 50.0),
    ];
    assert_eq!(
        check(&p, &[], &[], &gappy).breaches[0].detail,
        "Secure Score dropped 8.0 points in 8 days (max 5): 58.0% on 2026-12-02, 50.0% on 2026-12-10"
    );
}

#[test]
fn a_history_shorter_than_a_week_is_a_note_not_a_pass() {
    let p = TenantPolicy {
        minimum_percent: Some(30.0),
        max_drop_7_days: Some(5.0),
        ..policy()
    };
    // Seven records (2026-12-01 .. 07): the first is 6 days before the last.
    let checked = check(
        &p,
        &[],
        &[],
        &history(&[60.0, 50.0, 40.0, 40.0, 40.0, 40.0, 40.0]),
    );
    assert!(checked.breaches.is_empty(), "{checked:?}");
    assert_eq!(
        checked.notes,
        [Note {
            expectation: Expectation::SecureScoreDrop,
            detail: "the 7-day drop (max 5) is not checked yet: the Secure Score history starts on 2026-12-01, less than 7 days before its latest record (2026-12-07)".into()
        }]
    );
    // One day more and it is checked: 60 to 40.
    let week = history(&[60.0, 50.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0]);
    assert_eq!(check(&p, &[], &[], &week).breaches.len(), 1);
}

#[test]
fn paid_licences_on_disabled_and_deleted_users_are_one_breach_naming_each() {
    let p = TenantPolicy {
        no_paid_licence_on_disabled_users: true,
        ..policy()
    };
    let (skus, found) = tenant(&p);
    assert_eq!(
        details(&check(&p, &skus, &found, &[])),
        [(
            Expectation::PaidLicenceOnDisabledUsers,
            "2 paid licences on disabled or deleted users: Microsoft 365 E3 on deleted user Del (u-3); Microsoft 365 E3 on disabled user Dora (u-2)"
        )]
    );
    // Nobody wasting a seat: kept. A free licence on a disabled user is no waste.
    let kept = check(&p, &skus, &[], &[]);
    assert_eq!(kept, Checked::default());
    let one = [Finding::PaidLicenceOnDisabledUser {
        user: UserRef {
            name: "Dora".into(),
            id: "u-2".into(),
        },
        sku: "Microsoft 365 E3".into(),
    }];
    assert_eq!(
        check(&p, &skus, &one, &[]).breaches[0].detail,
        "1 paid licence on disabled or deleted users: Microsoft 365 E3 on disabled user Dora (u-2)"
    );
}

#[test]
fn unassigned_paid_seats_are_summed_over_skus_against_the_maximum() {
    let (skus, found) = tenant(&policy());
    // E3: 10 - 7 = 3 spare; Business Basic: 4 - 3 = 1 spare.
    let at_most = |max| TenantPolicy {
        max_unassigned_paid_seats: Some(max),
        ..policy()
    };
    assert_eq!(
        details(&check(&at_most(2), &skus, &found, &[])),
        [(
            Expectation::UnassignedPaidSeats,
            "4 paid seats unassigned (max 2): Microsoft 365 Business Basic 1, Microsoft 365 E3 3"
        )]
    );
    assert!(check(&at_most(4), &skus, &found, &[]).breaches.is_empty());
    assert_eq!(
        check(&at_most(0), &skus[..1], &found, &[]).breaches[0].detail,
        "1 paid seat unassigned (max 0): Microsoft 365 Business Basic 1"
    );
}

#[test]
fn a_paid_subscription_ending_within_the_days_watched_is_a_breach() {
    let within = |days| TenantPolicy {
        subscription_ending_within_days: Some(days),
        ..policy()
    };
    // E3 renews on 2027-01-05, 29 days after today.
    let (skus, found) = tenant(&within(30));
    assert_eq!(
        details(&check(&within(30), &skus, &found, &[])),
        [(
            Expectation::SubscriptionEnding,
            "1 paid subscription renews or ends within 30 days: Microsoft 365 E3 on 2027-01-05 (in 29 days)"
        )]
    );
    assert_eq!(
        check(&within(29), &skus, &found, &[]).breaches.len(),
        1,
        "the last day counts"
    );
    let (skus, found) = tenant(&within(28));
    assert!(check(&within(28), &skus, &found, &[]).breaches.is_empty());
    // Findings made for a longer window are narrowed to the policy's.
    let (skus, wide) = tenant(&within(365));
    assert_eq!(
        check(&within(365), &skus, &wide, &[]).breaches[0].detail,
        "2 paid subscriptions renew or end within 365 days: Microsoft 365 Business Basic on 2027-06-30 (in 205 days); Microsoft 365 E3 on 2027-01-05 (in 29 days)"
    );
    assert!(check(&within(28), &skus, &wide, &[]).breaches.is_empty());
}

#[test]
fn every_expectation_at_once_and_what_each_needs_read() {
    let p = TenantPolicy {
        minimum_percent: Some(50.0),
        max_drop_7_days: Some(5.0),
        no_paid_licence_on_disabled_users: true,
        max_unassigned_paid_seats: Some(0),
        subscription_ending_within_days: Some(30),
        ..policy()
    };
    assert!(p.needs_licences() && p.needs_secure_score());
    assert_eq!(p.expectations(), Expectation::ALL);
    let (skus, found) = tenant(&p);
    let falling = history(&[60.0, 59.0, 58.0, 57.0, 56.0, 55.0, 54.0, 45.0]);
    let checked = check(&p, &skus, &found, &falling);
    let order: Vec<Expectation> = checked.breaches.iter().map(|b| b.expectation).collect();
    assert_eq!(order, Expectation::ALL);
    assert_eq!(
        Expectation::SecureScoreDrop.address("foggy-it"),
        "policy.foggy-it.secure-score-drop"
    );
    let licences_only = TenantPolicy {
        no_paid_licence_on_disabled_users: true,
        ..policy()
    };
    assert!(licences_only.needs_licences() && !licences_only.needs_secure_score());
    // Undeclared expectations are not looked at: no score needed, no note about it.
    assert_eq!(check(&licences_only, &[], &[], &[]), Checked::default());
    assert!(!policy().needs_licences() && !policy().needs_secure_score());
}
