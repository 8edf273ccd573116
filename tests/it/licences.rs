//! Licences read from the sandbox over real HTTP (`graph::licences::read_licences`), then
//! summed up and turned into findings by the pure core (`tenantform::licences`).

use tenantform::graph::licences::read_licences;
use tenantform::graph::{GraphClient, RetryPolicy};
use tenantform::licences::{Finding, FindingOptions, UserRef, findings, summarize};
use tenantform::sandbox::fixture::{FixtureDeletedUser, GENERATED_E3};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::block_on as run;

#[test]
fn a_tenants_licences_are_read_in_one_batch_and_its_findings_name_people_and_products() {
    let mut fixture = Fixture::generated_with_profiles(13, 60);
    // Customer 12: E3 seats enabled and five in their grace period (ending 2027-01-05).
    let tenant = &mut fixture.tenants[13];
    assert!(tenant.users[0].holds(GENERATED_E3) && tenant.users[1].holds(GENERATED_E3));
    let holders = tenant
        .users
        .iter()
        .filter(|u| u.holds(GENERATED_E3))
        .count() as i64;
    tenant.users[0].account_enabled = false;
    let who = |u: &tenantform::sandbox::fixture::FixtureUser| UserRef {
        name: u.display_name.clone(),
        id: u.id.clone().unwrap(),
    };
    let disabled = who(&tenant.users[0]);
    let gone = tenant.users.remove(1);
    let deleted = who(&gone);
    tenant.deleted_users.push(FixtureDeletedUser {
        user: gone,
        deleted_date_time: None,
    });
    let failed = who(&tenant.users[2]); // user 3: a CountViolation
    let tid = tenant.id.clone();
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();
    let read = run(read_licences(&client, &tid)).unwrap();
    assert_eq!(client.request_count(), 1, "one $batch (pages fit)");

    let skus = summarize(&read.skus, &read.subscriptions);
    assert_eq!(skus.len(), 1);
    let e3 = &skus[0];
    assert_eq!(e3.name, "Microsoft 365 E3");
    assert_eq!((e3.purchased, e3.in_grace), (holders + 12 % 7 - 2, 5));
    assert_eq!(
        e3.consumed,
        holders - 1,
        "the deleted user's seat is not consumed"
    );
    assert_eq!(e3.available, 9);
    assert_eq!(e3.next_lifecycle.as_deref(), Some("2027-01-05T00:00:00Z"));
    // Those holding a licence, and the one whose assignment failed; the deleted one too.
    assert_eq!(read.users.len() as i64, holders + 1);
    assert!(read.users.iter().any(|u| u.deleted && u.id == deleted.id));

    assert_eq!(
        skus[0].unassigned_paid_seats(),
        4,
        "seats in grace are not handed out"
    );
    let options = FindingOptions {
        today: jiff::civil::date(2026, 12, 7),
        ending_within_days: 30,
        trial_within_days: 14,
    };
    let found = findings(&skus, &read.users, &options);
    let e3 = "Microsoft 365 E3".to_string();
    assert_eq!(
        found,
        [
            Finding::AssignmentError {
                user: failed,
                sku: e3.clone(),
                error: "CountViolation".into()
            },
            Finding::PaidLicenceOnDeletedUser {
                user: deleted,
                sku: e3.clone()
            },
            Finding::PaidLicenceOnDisabledUser {
                user: disabled,
                sku: e3.clone()
            },
            Finding::SubscriptionEnding {
                sku: e3.clone(),
                on: "2027-01-05".into(),
                days: 29
            },
            Finding::UnassignedPaidSeats { sku: e3, seats: 4 },
        ]
    );
}

#[test]
fn a_tenant_without_the_permission_fails_the_read_naming_it() {
    let mut fixture = Fixture::generated_with_profiles(1, 5);
    fixture.tenants[1].permissions = Some(vec!["User.Read.All".into()]);
    let tid = fixture.tenants[1].id.clone();
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();
    let error = run(read_licences(&client, &tid)).unwrap_err();
    let failure = error.failure();
    assert_eq!(
        failure.cause,
        tenantform::outcome::Cause::PermissionMissing,
        "{failure:?}"
    );
    assert!(error.to_string().contains("subscribedSkus"), "{error}");
}
