//! The sign-in security posture over real HTTP against the sandbox: the MFA registration
//! report (paged, premium only, AuditLog.Read.All) and the security defaults policy, read by
//! `graph::posture::read_posture` and shown by `secure-score`.

use tenantform::graph::posture::read_posture;
use tenantform::graph::{GraphClient, RetryPolicy};
use tenantform::posture::{MfaPosture, PREMIUM_REQUIRED};
use tenantform::sandbox::fixture::{FixtureUser, GENERATED_BUSINESS_STANDARD, generated_staff_sku};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::block_on as run;

const REPORT: &str = "/reports/authenticationMethods/userRegistrationDetails";

#[test]
fn a_premium_tenant_gives_numbers_and_its_admin_without_mfa_others_are_not_available_or_fail() {
    // Customer 1: premium (E3), user 1 (a Billing Administrator) not registered for MFA, 260
    // users (250 enabled: three pages). Customer 3: Business Standard, no Entra ID P1.
    // Customer 0: the app was granted neither AuditLog.Read.All nor anything higher.
    let mut fixture = Fixture::generated_with_profiles(4, 260);
    assert_eq!(generated_staff_sku(3), GENERATED_BUSINESS_STANDARD);
    fixture.tenants[4].security_defaults = false;
    fixture.tenants[1].permissions = Some(
        [
            "User.Read.All",
            "Policy.Read.All",
            "SecurityEvents.Read.All",
        ]
        .map(String::from)
        .to_vec(),
    );
    let (denied, premium, unlicensed) = (
        fixture.tenants[1].id.clone(),
        fixture.tenants[2].id.clone(),
        fixture.tenants[4].id.clone(),
    );
    let listed: Vec<&FixtureUser> = fixture.tenants[2]
        .users
        .iter()
        .filter(|u| u.account_enabled && u.user_type != "Guest")
        .collect();
    let registered = listed.iter().filter(|u| u.profile.mfa_registered).count();
    let admin = fixture.tenants[2].users[1].display_name.clone();
    assert_eq!(listed.len(), 250);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = || GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();

    let graph = client();
    let posture = run(read_posture(&graph, &premium)).unwrap();
    assert_eq!(
        graph.request_count(),
        3,
        "one $batch, then two more pages of 100"
    );
    let MfaPosture::Available {
        users,
        registered: read,
        share,
        admins,
        admins_without_mfa,
    } = &posture.mfa
    else {
        panic!("{posture:?}")
    };
    assert_eq!((*users, *read, *admins), (250, registered, 2));
    assert!((share.unwrap() - 100.0 * registered as f64 / 250.0).abs() < 1e-9);
    assert_eq!(admins_without_mfa.len(), 1, "{admins_without_mfa:?}");
    assert_eq!(admins_without_mfa[0].display_name, admin);
    assert!(
        admins_without_mfa[0]
            .user_principal_name
            .ends_with("@customer00001.onmicrosoft.com"),
        "{admins_without_mfa:?}"
    );
    assert_eq!(
        posture.security_defaults,
        Some(true),
        "on unless turned off"
    );

    // Without Entra ID P1 or P2: "not available", never an error; security defaults still read.
    let posture = run(read_posture(&client(), &unlicensed)).unwrap();
    let MfaPosture::NotAvailable { reason } = &posture.mfa else {
        panic!("{posture:?}")
    };
    assert!(reason.contains(PREMIUM_REQUIRED), "{reason}");
    assert_eq!(posture.security_defaults, Some(false));

    // Without the permission: an error naming it (decided from the token's roles).
    let error = run(read_posture(&client(), &denied)).unwrap_err();
    let failure = error.failure();
    assert_eq!(
        failure.cause,
        tenantform::outcome::Cause::PermissionMissing,
        "{failure:?}"
    );
    assert!(failure.message.contains("AuditLog.Read.All"), "{failure:?}");
    assert_eq!(
        error.code(),
        Some("Authentication_MSGraphPermissionMissing"),
        "the reporting service's own code: {error}"
    );

    // The report as Graph documents it: `$filter` on its flags, no `$select`; the premium
    // refusal's shape.
    let graph = client();
    run(async {
        let unregistered = graph
            .get_all(
                &premium,
                &format!("{REPORT}?$filter=isMfaRegistered%20eq%20false"),
            )
            .await
            .unwrap();
        assert_eq!(unregistered.len(), 250 - registered);
        assert!(unregistered.iter().all(|e| e["isMfaRegistered"] == false));
        let selected = graph
            .get(&premium, &format!("{REPORT}?$select=id"))
            .await
            .unwrap_err();
        assert_eq!(selected.status(), Some(400), "{selected}");
        let refused = graph.get(&unlicensed, REPORT).await.unwrap_err();
        assert_eq!(refused.status(), Some(403));
        assert_eq!(refused.code(), Some(PREMIUM_REQUIRED));
        assert!(
            refused
                .to_string()
                .contains("Neither tenant is B2C or tenant doesn't have premium license"),
            "{refused}"
        );
        let policy = graph
            .get(
                &unlicensed,
                "/policies/identitySecurityDefaultsEnforcementPolicy",
            )
            .await
            .unwrap();
        assert_eq!(policy["id"], "00000000-0000-0000-0000-000000000005");
        assert_eq!(policy["isEnabled"], false);
    });
}

#[test]
fn the_secure_score_command_shows_the_posture_says_not_available_and_fails_without_the_permission()
{
    use crate::support::{edit_world_tenant, example_fixture, foggy_it, tf_on};
    const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
    let dir = foggy_it();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let args = |output: &'static str| {
        [
            "secure-score",
            "--sandbox",
            "--sandbox-world",
            fixture,
            "--output",
            output,
        ]
    };
    // Foggy IT (Microsoft 365 E3): four of its six enabled members registered; Wanda, its
    // Billing Administrator, not.
    let table = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(table.code, 0, "{}", table.transcript());
    let header = table.stdout.lines().next().unwrap();
    assert!(
        header.contains("MFA REGISTERED")
            && header.contains("ADMINS W/O MFA")
            && header.contains("SECURITY DEFAULTS"),
        "{}",
        table.stdout
    );
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("foggy-it "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        row.contains("67% (4/6)") && row.contains("1 of 1") && row.trim_end().ends_with("on"),
        "{row}"
    );
    assert!(
        table.stdout.contains(
            "foggy-it: admins without MFA\n  Wanda Whitlock (wanda@foggyit.onmicrosoft.com)\n"
        ),
        "{}",
        table.stdout
    );

    let json = tf_on(dir.path(), dir.path(), &args("json"));
    assert_eq!(json.code, 0, "{}", json.transcript());
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let posture = &value["tenants"][0]["posture"];
    assert_eq!(posture["mfa"]["status"], "available", "{posture}");
    assert_eq!(posture["mfa"]["users"], 6);
    assert_eq!(posture["mfa"]["registered"], 4);
    assert_eq!(
        posture["mfa"]["adminsWithoutMfa"][0]["displayName"],
        "Wanda Whitlock"
    );
    assert_eq!(posture["securityDefaults"], true);

    let csv = tf_on(dir.path(), dir.path(), &args("csv"));
    assert_eq!(csv.code, 0, "{}", csv.transcript());
    let mut reader = ::csv::Reader::from_reader(csv.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let record = reader.records().next().unwrap().unwrap();
    let column = |name: &str| &record[headers.iter().position(|h| h == name).unwrap()];
    assert_eq!(column("mfaStatus"), "available");
    assert_eq!((column("mfaUsers"), column("mfaRegistered")), ("6", "4"));
    assert_eq!(
        column("adminsWithoutMfa"),
        "Wanda Whitlock <wanda@foggyit.onmicrosoft.com>"
    );
    assert_eq!(column("securityDefaults"), "true");

    // The E3 subscription gone, security defaults turned off: MFA "not available", exit 0.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["subscriptions"] = serde_json::json!([]);
        t["securityDefaults"] = false.into();
    });
    let unlicensed = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(unlicensed.code, 0, "{}", unlicensed.transcript());
    let row = unlicensed
        .stdout
        .lines()
        .find(|l| l.starts_with("foggy-it "))
        .unwrap_or_else(|| panic!("{}", unlicensed.stdout));
    assert!(
        row.contains("not available") && row.trim_end().ends_with("off"),
        "{row}"
    );
    assert!(
        unlicensed
            .stdout
            .contains("MFA registration not available (no Microsoft Entra ID P1 or P2): foggy-it"),
        "{}",
        unlicensed.stdout
    );

    // AuditLog.Read.All not granted: the run fails, naming it.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["permissions"] = serde_json::json!(["SecurityEvents.Read.All", "Policy.Read.All"]);
    });
    let denied = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(denied.code, 1, "{}", denied.transcript());
    assert!(
        denied
            .stderr
            .contains("error: 1 of 1 tenants could not be read:")
            && denied.stderr.contains("foggy-it: ")
            && denied.stderr.contains("AuditLog.Read.All"),
        "{}",
        denied.transcript()
    );
}
