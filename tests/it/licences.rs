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
    // tenantform knows what the request needs, and says so.
    assert!(
        failure.message.contains("Organization.Read.All"),
        "{failure:?}"
    );
}

#[test]
fn the_licenses_command_prints_products_findings_and_csv_and_fails_a_tenant_it_cannot_read() {
    use crate::support::{edit_world_tenant, example_fixture, foggy_it, tf_on};
    const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
    let dir = foggy_it();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let args = |output: &'static str| {
        [
            "licenses",
            "--sandbox",
            "--sandbox-world",
            fixture,
            "--today",
            "2026-12-07",
            "--output",
            output,
        ]
    };
    let run = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let table = &run.stdout;
    assert!(
        table.starts_with(&format!("foggy-it ({FOGGY})\n")),
        "{table}"
    );
    assert!(table.contains("Microsoft 365 E3"), "{table}");
    assert!(
        table.contains("! Microsoft 365 E3 on disabled user Dora Departed ("),
        "{table}"
    );
    assert!(
        table.contains("! Microsoft 365 E3: 2 paid seats unassigned"),
        "{table}"
    );
    assert!(
        table.contains("! Microsoft 365 Business Basic: 1 assigned seats exist only in an expired subscription's grace period"),
        "{table}"
    );

    let csv = tf_on(dir.path(), dir.path(), &args("csv"));
    assert_eq!(csv.code, 0, "{}", csv.transcript());
    let mut reader = ::csv::Reader::from_reader(csv.stdout.as_bytes());
    let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let e3 = rows.iter().find(|r| &r[3] == "SPE_E3").unwrap();
    assert_eq!(
        (&e3[0], &e3[6], &e3[9], &e3[11]),
        ("foggy-it", "7", "5", "2")
    );

    // A name with markup and an escape sequence, from the customer's directory.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        let users = t["users"].as_array_mut().unwrap();
        let dora = users
            .iter_mut()
            .find(|u| u["displayName"] == "Dora Departed")
            .unwrap();
        dora["displayName"] = "Dora \u{1b}[2J<b>".into();
        t["permissions"] = serde_json::json!(["User.Read.All"]);
    });
    let denied = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(denied.code, 1, "{}", denied.transcript());
    assert!(
        denied
            .stderr
            .contains("error: 1 of 1 tenants could not be read:")
            && denied.stderr.contains("foggy-it: "),
        "{}",
        denied.transcript()
    );
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["permissions"] = serde_json::Value::Null;
    });
    let escaped = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(escaped.code, 0, "{}", escaped.transcript());
    assert!(!escaped.stdout.contains('\u{1b}'), "{}", escaped.stdout);
    assert!(
        escaped.stdout.contains("Dora ?[2J<b>"),
        "{}",
        escaped.stdout
    );
}

#[test]
fn seats_per_organization_follow_the_contacts_routes_for_invoicing() {
    use crate::support::{example_fixture, foggy_it, tf_on};
    let dir = foggy_it();
    std::fs::copy(
        crate::support::repo_root().join("examples/foggy-it/end-users.yaml"),
        dir.path().join("end-users.yaml"),
    )
    .unwrap();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let sandbox = ["--sandbox", "--sandbox-world", fixture];
    let apply = tf_on(
        dir.path(),
        dir.path(),
        &[&["apply", "--auto-approve"][..], &sandbox].concat(),
    );
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let csv = tf_on(
        dir.path(),
        dir.path(),
        &[
            &["licenses", "--by", "organization", "--output", "csv"][..],
            &sandbox,
        ]
        .concat(),
    );
    assert_eq!(csv.code, 0, "{}", csv.transcript());
    let mut reader = ::csv::Reader::from_reader(csv.stdout.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        tenantform::render::licences::ORGANIZATION_CSV_COLUMNS
    );
    let rows: Vec<(String, String, String, String)> = reader
        .records()
        .map(Result::unwrap)
        .map(|r| (r[1].into(), r[3].into(), r[5].into(), r[7].into()))
        .collect();
    let row = |o: &str, part: &str, seats: &str, routed: &str| {
        (
            o.to_string(),
            part.to_string(),
            seats.to_string(),
            routed.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row("foggy-boston", "SPE_E3", "1", "true"),
            row("foggy-burlington", "O365_BUSINESS_ESSENTIALS", "1", "true"),
            row("foggy-burlington", "SPE_E3", "1", "true"),
            row("foggy-waltham", "SPE_E3", "2", "true"),
            // Dora is disabled: her contact is archived, her seat is nobody's invoice line.
            row("", "SPE_E3", "1", "false"),
        ],
        "{}",
        csv.stdout
    );
    let table = tf_on(
        dir.path(),
        dir.path(),
        &[&["licenses", "--by", "organization"][..], &sandbox].concat(),
    );
    assert_eq!(table.code, 0, "{}", table.transcript());
    assert!(table.stdout.contains("(no contact)"), "{}", table.stdout);
}

#[test]
fn sync_keeps_which_contact_holds_which_licence_on_its_own_schedule() {
    use crate::support::{edit_world_tenant, example_fixture, foggy_it, tf_on};
    const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
    let dir = foggy_it();
    std::fs::copy(
        crate::support::repo_root().join("examples/foggy-it/end-users.yaml"),
        dir.path().join("end-users.yaml"),
    )
    .unwrap();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let sync = |every: &str| {
        let run = tf_on(
            dir.path(),
            dir.path(),
            &[
                "sync",
                "--sandbox",
                "--sandbox-world",
                fixture,
                "--licences-every",
                every,
                "--output",
                "json",
            ],
        );
        let summary: serde_json::Value =
            serde_json::from_str(run.stdout.trim()).unwrap_or(serde_json::Value::Null);
        (run, summary)
    };
    let (first, summary) = sync("24h");
    assert_eq!(first.code, 0, "{}", first.transcript());
    assert_eq!(summary["licencesRefreshed"], 1, "{summary}");
    let contacts = tf_on(dir.path(), dir.path(), &["contacts", "--output", "csv"]);
    assert_eq!(contacts.code, 0, "{}", contacts.transcript());
    let mut reader = ::csv::Reader::from_reader(contacts.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (name, licences) = (column("name"), column("licences"));
    let held: std::collections::BTreeMap<String, String> = reader
        .records()
        .map(Result::unwrap)
        .map(|r| (r[name].to_string(), r[licences].to_string()))
        .collect();
    assert_eq!(held["Frances Fog"], "Microsoft 365 E3");
    assert_eq!(held["Rob Ramos"], "Microsoft 365 Business Basic");

    // Within the day: not read again.
    let (again, summary) = sync("24h");
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(summary["licencesRefreshed"], 0, "{summary}");

    // Due again, but the licences cannot be read: the round fails by name; contacts stay.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["permissions"] = serde_json::json!(["User.Read.All", "GroupMember.Read.All"]);
    });
    let (denied, summary) = sync("0s");
    assert_eq!(denied.code, 1, "{}", denied.transcript());
    assert_eq!(summary["failed"][0]["tenant"], "foggy-it", "{summary}");
    assert!(
        summary["failed"][0]["message"]
            .as_str()
            .unwrap()
            .contains("licences: "),
        "{summary}"
    );
    assert!(
        denied.stderr.contains("error: foggy-it: "),
        "{}",
        denied.transcript()
    );
}
