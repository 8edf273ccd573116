use serde_json::json;

use super::*;

const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const BUSINESS_STANDARD: &str = "f245ecc8-75af-4f8e-b61f-27d8114de5f3";
const FLOW_FREE: &str = "f30db892-07e9-47e9-837c-80727f46fd3d";
const TEAMS_TRIAL: &str = "74fbf1bb-47c6-4796-9623-77dc7371723b";

fn sku(
    id: &str,
    part: &str,
    status: &str,
    enabled: i64,
    warning: i64,
    consumed: i64,
) -> SubscribedSku {
    SubscribedSku {
        sku_id: id.to_uppercase(),
        sku_part_number: Some(part.into()),
        applies_to: Some("User".into()),
        capability_status: Some(status.into()),
        consumed_units: consumed,
        prepaid_units: PrepaidUnits {
            enabled,
            warning,
            ..PrepaidUnits::default()
        },
    }
}

/// E3 with three seats to spare, Business Standard expired (in grace) and over-assigned by
/// one, and Power Automate Free.
fn three_skus() -> [SubscribedSku; 3] {
    let standard = "O365_BUSINESS_PREMIUM";
    [
        sku(E3, "SPE_E3", "Enabled", 10, 0, 7),
        sku(BUSINESS_STANDARD, standard, "Warning", 0, 5, 6),
        sku(FLOW_FREE, "FLOW_FREE", "Enabled", 10000, 0, 3),
    ]
}

fn subscription(sku_id: &str, trial: bool, next: &str) -> CompanySubscription {
    CompanySubscription {
        id: format!("sub-{sku_id}-{next}"),
        sku_id: sku_id.into(),
        status: Some("Enabled".into()),
        total_licenses: 10,
        is_trial: trial,
        next_lifecycle_date_time: Some(next.into()),
        ..CompanySubscription::default()
    }
}

fn options() -> FindingOptions {
    FindingOptions {
        today: jiff::civil::date(2026, 12, 7),
        ending_within_days: 30,
        trial_within_days: 14,
    }
}

#[test]
fn a_summary_counts_seats_in_grace_as_available_and_names_products() {
    let skus = three_skus();
    let subs = [
        subscription(E3, false, "2027-03-01T00:00:00Z"),
        subscription(E3, false, "2026-12-20T00:00:00Z"),
    ];
    let summary = summarize(&skus, &subs);
    let parts: Vec<&str> = summary.iter().map(|s| s.part_number.as_str()).collect();
    assert_eq!(parts, ["FLOW_FREE", "O365_BUSINESS_PREMIUM", "SPE_E3"]);
    let e3 = &summary[2];
    assert_eq!(e3.sku_id, E3, "ids are lower-cased");
    assert_eq!(e3.name, "Microsoft 365 E3");
    assert_eq!((e3.purchased, e3.consumed, e3.available), (10, 7, 3));
    assert_eq!(
        e3.next_lifecycle.as_deref(),
        Some("2026-12-20T00:00:00Z"),
        "the earliest"
    );
    assert!(e3.paid && !e3.trial);
    let standard = &summary[1];
    assert_eq!(
        (standard.in_grace, standard.available),
        (5, -1),
        "over-assigned by one"
    );
    assert!(!summary[0].paid, "Power Automate Free is not paid");
}

#[test]
fn findings_name_waste_errors_over_assignment_and_what_ends_soon() {
    let mut skus = three_skus().to_vec();
    skus.push(sku(TEAMS_TRIAL, "MS_TEAMS_IW", "Enabled", 100, 0, 1));
    let skus = summarize(
        &skus,
        &[
            subscription(E3, false, "2026-12-20T00:00:00Z"),
            subscription(TEAMS_TRIAL, true, "2026-12-10T00:00:00Z"),
        ],
    );
    let user = |id: &str, enabled: bool, deleted: bool, licences: Vec<HeldLicence>| LicensedUser {
        id: id.into(),
        display_name: format!("User {id}"),
        enabled,
        deleted,
        licences,
    };
    // A licence whose assignment failed holds no seat.
    let held = |sku: &str, error: Option<&str>| HeldLicence {
        sku_id: sku.into(),
        assigned: error.is_none(),
        assignment: Assignment::Direct,
        error: error.map(str::to_string),
    };
    let by_group = HeldLicence {
        assignment: Assignment::Group("g".into()),
        ..held(E3, None)
    };
    let users = [
        // E3 directly and through a group: one seat, one finding.
        user(
            "a",
            false,
            false,
            vec![held(E3, None), by_group, held(FLOW_FREE, None)],
        ),
        user("b", true, true, vec![held(E3, None)]),
        // Disabled, but the licence that failed holds no seat: not paid-for waste.
        user(
            "c",
            false,
            false,
            vec![held(BUSINESS_STANDARD, Some("CountViolation"))],
        ),
        user("d", true, false, vec![held(E3, None)]),
    ];
    let found = findings(&skus, &users, &options());
    let kinds: Vec<&str> = found.iter().map(Finding::kind).collect();
    assert_eq!(
        kinds,
        [
            "assigned-seats-in-grace",
            "licence-assignment-error",
            "over-assigned",
            "paid-licence-on-deleted-user",
            "paid-licence-on-disabled-user",
            "subscription-ending",
            "trial-ending",
            "unassigned-paid-seats",
        ]
    );
    let who = |id: &str| UserRef {
        name: format!("User {id}"),
        id: id.into(),
    };
    let (e3, standard) = ("Microsoft 365 E3", "Microsoft 365 Business Standard");
    assert!(found.contains(&Finding::PaidLicenceOnDisabledUser {
        user: who("a"),
        sku: e3.into()
    }));
    assert!(found.contains(&Finding::AssignmentError {
        user: who("c"),
        sku: standard.into(),
        error: "CountViolation".into()
    }));
    // Business Standard: 0 enabled, 5 in grace, 6 assigned.
    assert!(found.contains(&Finding::OverAssigned {
        sku: standard.into(),
        by: 1
    }));
    assert!(found.contains(&Finding::AssignedSeatsInGrace {
        sku: standard.into(),
        seats: 5
    }));
    assert!(found.contains(&Finding::SubscriptionEnding {
        sku: e3.into(),
        on: "2026-12-20".into(),
        days: 13
    }));
    assert!(found.contains(&Finding::TrialEnding {
        sku: "Microsoft Teams Trial".into(),
        on: "2026-12-10".into(),
        days: 3
    }));
    assert!(found.contains(&Finding::UnassignedPaidSeats {
        sku: e3.into(),
        seats: 3
    }));
    // The free SKU on the disabled user, and the trial's unassigned seats, are not waste.
    assert_eq!(found.len(), 8);
}

#[test]
fn nothing_ending_beyond_the_window_or_already_past_is_a_finding() {
    let skus = summarize(
        &[sku(E3, "SPE_E3", "Enabled", 5, 0, 5)],
        &[subscription(E3, false, "2027-02-01T00:00:00Z")],
    );
    assert!(findings(&skus, &[], &options()).is_empty());
    let past = summarize(
        &[sku(E3, "SPE_E3", "Enabled", 5, 0, 5)],
        &[subscription(E3, false, "2026-11-01T00:00:00Z")],
    );
    assert!(findings(&past, &[], &options()).is_empty());
}

#[test]
fn a_user_is_read_with_each_licence_once_and_how_it_is_held() {
    let user = LicensedUser::from_graph(
        &json!({
            "id": "AB-1",
            "displayName": "Ada",
            "accountEnabled": false,
            "assignedLicenses": [{"skuId": E3, "disabledPlans": []}, {"skuId": FLOW_FREE}],
            "licenseAssignmentStates": [
                {"skuId": E3, "assignedByGroup": "G-1", "state": "Active", "error": "None"},
                {"skuId": BUSINESS_STANDARD, "assignedByGroup": null, "state": "Error", "error": "CountViolation"}
            ]
        }),
        false,
    )
    .unwrap();
    assert_eq!(user.id, "ab-1");
    assert!(!user.enabled);
    assert_eq!(
        user.licences,
        [
            HeldLicence {
                sku_id: E3.into(),
                assigned: true,
                assignment: Assignment::Group("g-1".into()),
                error: None
            },
            HeldLicence {
                sku_id: BUSINESS_STANDARD.into(),
                assigned: false,
                assignment: Assignment::Direct,
                error: Some("CountViolation".into())
            },
            HeldLicence {
                sku_id: FLOW_FREE.into(),
                assigned: true,
                assignment: Assignment::Direct,
                error: None
            },
        ]
    );
}

#[test]
fn a_suspended_sku_still_assigned_is_named_once_not_as_over_assigned() {
    let mut suspended = sku(E3, "SPE_E3", "Suspended", 0, 0, 3);
    suspended.prepaid_units.suspended = 5;
    let skus = summarize(&[suspended], &[]);
    assert_eq!(skus[0].available, -3);
    assert_eq!(
        findings(&skus, &[], &options()),
        [Finding::SkuNotEnabled {
            sku: "Microsoft 365 E3".into(),
            status: "Suspended".into(),
            consumed: 3
        }]
    );
}

#[test]
fn seats_are_counted_per_organization_once_per_user_with_non_contacts_apart() {
    let skus = summarize(
        &three_skus(),
        &[subscription(E3, false, "2027-06-01T00:00:00Z")],
    );
    let held = |sku: &str, assigned: bool, assignment: Assignment| HeldLicence {
        sku_id: sku.into(),
        assigned,
        assignment,
        error: None,
    };
    let user = |id: &str, deleted: bool, licences: Vec<HeldLicence>| LicensedUser {
        id: id.into(),
        display_name: id.into(),
        enabled: true,
        deleted,
        licences,
    };
    let users = [
        // E3 both directly and by a group: one seat.
        user(
            "boston-1",
            false,
            vec![
                held(E3, true, Assignment::Direct),
                held(E3, true, Assignment::Group("g".into())),
            ],
        ),
        user("boston-2", false, vec![held(E3, true, Assignment::Direct)]),
        // Only in an error state: holds no seat.
        user(
            "boston-3",
            false,
            vec![held(BUSINESS_STANDARD, false, Assignment::Direct)],
        ),
        user(
            "paris-1",
            false,
            vec![held(FLOW_FREE, true, Assignment::Direct)],
        ),
        user("stranger", false, vec![held(E3, true, Assignment::Direct)]),
        // Soft-deleted: its contact is archived, its seat is a finding, not an invoice line.
        user("boston-4", true, vec![held(E3, true, Assignment::Direct)]),
    ];
    let organization_of = |id: &str| -> Option<String> {
        match id.split('-').next() {
            Some("boston") => Some("foggy-boston".into()),
            Some("paris") => Some("foggy-paris".into()),
            _ => None,
        }
    };
    let rows = seats_by_organization(&skus, &users, &organization_of);
    let got: Vec<(Option<&str>, &str, i64, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.organization.as_deref(),
                r.part_number.as_str(),
                r.seats,
                r.paid,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("foggy-boston"), "SPE_E3", 2, true),
            (Some("foggy-paris"), "FLOW_FREE", 1, false),
            (None, "SPE_E3", 1, true),
        ]
    );
    assert_eq!(rows[0].product, "Microsoft 365 E3");
}

#[test]
fn holdings_name_each_users_products_and_how_they_are_held() {
    let skus = summarize(&three_skus(), &[]);
    let users = [
        LicensedUser {
            id: "u1".into(),
            display_name: "Ann".into(),
            enabled: true,
            deleted: false,
            licences: vec![
                HeldLicence {
                    sku_id: E3.into(),
                    assigned: true,
                    assignment: Assignment::Group("g".into()),
                    error: None,
                },
                HeldLicence {
                    sku_id: BUSINESS_STANDARD.into(),
                    assigned: false,
                    assignment: Assignment::Direct,
                    error: Some("CountViolation".into()),
                },
            ],
        },
        LicensedUser {
            id: "gone".into(),
            display_name: "Gone".into(),
            enabled: true,
            deleted: true,
            licences: vec![HeldLicence {
                sku_id: E3.into(),
                assigned: true,
                assignment: Assignment::Direct,
                error: None,
            }],
        },
    ];
    let held = holdings(&skus, &users);
    assert_eq!(held.len(), 1, "deleted users are no contacts");
    assert_eq!(
        held["u1"],
        [
            "Microsoft 365 Business Standard (error: CountViolation)",
            "Microsoft 365 E3 (via group)"
        ]
    );
    let attributes = holdings_value("2026-12-07T08:00:00Z", &held);
    assert_eq!(
        held_by(&attributes, "u1"),
        [
            "Microsoft 365 Business Standard (error: CountViolation)",
            "Microsoft 365 E3 (via group)"
        ]
    );
    assert!(held_by(&attributes, "nobody").is_empty());
    assert_eq!(
        holdings_read_at(&attributes).unwrap().to_string(),
        "2026-12-07T08:00:00Z"
    );
}
