//! Secure Score from the sandbox over real HTTP, read into the pure core
//! (`tenantform::secure_score`): daily records newest first, `$top`, the control profiles,
//! the trend and the open controls, and the security service's own 403.

use tenantform::graph::{GraphClient, RetryPolicy};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};
use tenantform::secure_score::{ControlProfile, DailyScore, merge, top_open_controls, trend};

use crate::support::block_on as run;

#[test]
fn ninety_days_of_scores_newest_first_give_a_trend_and_the_open_controls() {
    let mut fixture = Fixture::generated_with_profiles(8, 5);
    // Customer 6 falls: 40% of the maximum 89 days ago, 0.2 points a day less since.
    let falling = fixture.tenants[7].id.clone();
    fixture.tenants[2].permissions = Some(vec!["User.Read.All".into()]);
    let denied = fixture.tenants[2].id.clone();
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    run(async {
        let all = client
            .get_all(&falling, "/security/secureScores")
            .await
            .unwrap();
        assert_eq!(all.len(), 90, "about 90 days kept");
        let days: Vec<DailyScore> = all.iter().filter_map(DailyScore::from_graph).collect();
        assert_eq!(days.len(), 90);
        assert_eq!(days[0].date, today, "newest first");
        assert!(days.windows(2).all(|w| w[0].date > w[1].date));
        for (record, day) in all.iter().zip(&days) {
            let controls: f64 = day.controls.iter().map(|c| c.score).sum();
            assert!((controls - day.current).abs() < 0.01, "{record}");
        }
        let week = client
            .get_all(&falling, "/security/secureScores?$top=7")
            .await
            .unwrap();
        assert_eq!(week.len(), 7, "$top=n gives n days");
        assert_eq!(week[0], all[0]);

        let mut history = Vec::new();
        assert_eq!(merge(&mut history, days.clone()), 90);
        assert_eq!(
            merge(&mut history, days),
            0,
            "the same days are not added twice"
        );
        let t = trend(&history);
        assert!(
            (t.percentage.unwrap() - (40.0 - 0.2 * 89.0)).abs() < 0.05,
            "{t:?}"
        );
        assert!((t.change_7.unwrap() + 1.4).abs() < 0.05, "{t:?}");
        assert!((t.change_30.unwrap() + 6.0).abs() < 0.05, "{t:?}");
        assert_eq!(t.change_90, None, "nothing kept 90 days before the latest");

        let profiles: Vec<ControlProfile> = client
            .get_all(&falling, "/security/secureScoreControlProfiles")
            .await
            .unwrap()
            .into_iter()
            .map(|p| serde_json::from_value(p).unwrap())
            .collect();
        assert_eq!(profiles.len(), 10);
        let top = top_open_controls(history.last().unwrap(), &profiles, 3);
        assert_eq!(top.len(), 3);
        assert!(top.windows(2).all(|w| w[0].available >= w[1].available));
        assert!(
            top.iter().all(|c| c.remediation.starts_with("<p>")),
            "markup, as Graph's"
        );

        let refused = client
            .get_all(&falling, "/security/secureScores?$filter=currentScore gt 1")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("400"), "{refused}");
        let error = client
            .get_all(&denied, "/security/secureScores")
            .await
            .unwrap_err();
        assert_eq!(
            error.failure().cause,
            tenantform::outcome::Cause::PermissionMissing,
            "{error}"
        );
        assert!(error.to_string().contains("AccessDenied"), "{error}");
    });
}

#[test]
fn the_secure_score_command_prints_trends_controls_and_the_fleet_and_fails_a_tenant_it_cannot_read()
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
    let run = tf_on(dir.path(), dir.path(), &args("table"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("foggy-it "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    // 38% rising 0.15 points a day: about +1.05 over 7 days, +4.5 over 30, nothing 90 back.
    assert!(row.contains("+1.1") || row.contains("+1.0"), "{row}");
    // The 90-day column (the posture's columns follow it).
    assert!(
        row.contains("+4.5") && row.split_whitespace().nth(6) == Some("-"),
        "{row}"
    );
    assert!(
        run.stdout.contains("foggy-it: top open controls"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.lines().filter(|l| l.contains(" pts  ")).count(),
        3,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Fleet: "), "{}", run.stdout);

    let json = tf_on(dir.path(), dir.path(), &args("json"));
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let tenant = &value["tenants"][0];
    assert_eq!(tenant["tenant"], "foggy-it");
    assert_eq!(tenant["microsoftTenantId"], FOGGY);
    assert!(tenant["topOpenControls"][0]["remediation"].is_string());

    edit_world_tenant(dir.path(), FOGGY, |t| {
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
}

#[test]
fn the_history_is_kept_in_state_beyond_what_graph_still_returns_and_reruns_add_nothing() {
    use crate::support::{edit_world_tenant, example_fixture, foggy_it, tf_on};
    const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
    let dir = foggy_it();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let scores = |dir: &std::path::Path| -> serde_json::Value {
        let run = tf_on(
            dir,
            dir,
            &[
                "secure-score",
                "--sandbox",
                "--sandbox-world",
                fixture,
                "--output",
                "json",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        json["tenants"][0].clone()
    };
    let first = scores(dir.path());
    let days = first["daysKept"].as_u64().unwrap();
    assert!(days >= 30, "{first}");
    // Kept beside the tenant's partition, not in it: no plan sees it, no serial changes.
    let kept = dir
        .path()
        .join("state.d/observations/foggy-it/secure_score.json");
    let stored = std::fs::read_to_string(&kept).unwrap();
    assert!(stored.contains("\"days\""), "{stored}");
    let partition = dir.path().join("state.d/tenants/foggy-it.json");
    assert!(
        !partition.exists()
            || !std::fs::read_to_string(&partition)
                .unwrap()
                .contains("secure_score"),
        "nothing in the partition"
    );
    // Microsoft now returns only the last week: the history kept still reaches back.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["secureScore"]["days"] = 7.into();
    });
    let again = scores(dir.path());
    assert_eq!(again["daysKept"], days, "{again}");
    assert_eq!(again["trend"]["since"], first["trend"]["since"]);
    assert_eq!(again["trend"]["change30"], first["trend"]["change30"]);
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        stored,
        "nothing new: nothing rewritten"
    );
}

#[test]
fn a_renamed_tenant_keeps_its_secure_score_history_through_its_former_name() {
    use crate::support::{edit_world_tenant, example_fixture, foggy_it, tf_on};
    const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
    let dir = foggy_it();
    let (_elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap();
    let scores = || -> serde_json::Value {
        let run = tf_on(
            dir.path(),
            dir.path(),
            &[
                "secure-score",
                "--sandbox",
                "--sandbox-world",
                fixture,
                "--output",
                "json",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["tenants"][0].clone()
    };
    let days = scores()["daysKept"].as_u64().unwrap();
    // Microsoft now lists only the last week, and the tenant is renamed in the manifests.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["secureScore"]["days"] = 7.into();
    });
    for file in ["tenant.yaml", "support.yaml"] {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("foggy-it", "foggy-services")
            .replace(
                "formerNames: [foggy-boston]",
                "formerNames: [foggy-boston, foggy-it]",
            );
        std::fs::write(&path, text).unwrap();
    }
    let renamed = scores();
    assert_eq!(renamed["tenant"], "foggy-services");
    assert_eq!(renamed["daysKept"], days, "{renamed}");
    assert!(
        dir.path()
            .join("state.d/observations/foggy-services/secure_score.json")
            .is_file(),
        "kept under the new name from now on"
    );
}
