//! `tenantform report`: the fleet report from the example fleet, end to end against the
//! sandbox, and the page as a real browser sees it (headless Chromium over DevTools).

use std::path::Path;

use crate::support::{edit_world_tenant, example_fixture, repo_root, tf_on};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;

/// The example fleet (examples/foggy-it, every manifest) applied through the sandbox, with
/// markup and script in two of the customer's names: `(dir, fixture dir, fixture path)`.
fn applied_fleet_with_hostile_names() -> (tempfile::TempDir, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples/foggy-it")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let (elsewhere, fixture) = example_fixture();
    let fixture = fixture.to_str().unwrap().to_string();
    let apply = tf_on(
        dir.path(),
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--sandbox",
            "--sandbox-world",
            &fixture,
        ],
    );
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    edit_world_tenant(dir.path(), FOGGY, |t| {
        for user in t["users"].as_array_mut().unwrap() {
            let name = user["displayName"].as_str().unwrap().to_string();
            if name == "Dora Departed" {
                user["displayName"] = "<img src=x onerror=\"window.__pwned=1\">Dora".into();
            } else if name == "Wanda Whitlock" {
                user["displayName"] = "<script>window.__pwned=2</script>Wanda\u{1b}[2J".into();
            }
        }
    });
    (dir, elsewhere, fixture)
}

fn report(dir: &Path, args: &[&str]) -> crate::support::Run {
    tf_on(
        dir,
        dir,
        &[&["report", "--sandbox", "--today", "2026-12-07"][..], args].concat(),
    )
}

#[test]
fn the_report_shows_every_section_escapes_names_and_fails_on_an_unread_tenant() {
    let (dir, _fixture_dir, _) = applied_fleet_with_hostile_names();
    let out = dir.path().join("fleet.html");
    let run = report(dir.path(), &["--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stderr.contains("Wrote "), "{}", run.transcript());
    let page = std::fs::read_to_string(&out).unwrap();
    for id in [
        "overview",
        "secure-score",
        "licences",
        "sign-in",
        "access",
        "tenants",
        "tenant-foggy-it",
        "scores",
        "skus",
        "licence-findings",
        "seats-by-organization",
        "sign-in-posture",
        "admins-without-mfa",
        "grants",
        "pending-invitations",
        "undeclared-privileged",
        "tenant-list",
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "section {id} missing"
        );
    }
    assert!(page.contains("href=\"#tenant-foggy-it\""));
    assert!(page.contains("<svg class=\"chart\""), "charts inline");
    assert!(page.contains("foggy-waltham") && page.contains("dana.whitfield@contoso-msp.example"));
    assert!(page.contains("&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;Dora"));
    assert!(page.contains("&lt;script&gt;window.__pwned=2&lt;/script&gt;Wanda\u{fffd}[2J"));
    assert!(!page.contains("<img") && page.matches("<script").count() == 1);

    // The same data as JSON, for dashboards.
    let json = report(dir.path(), &["--output", "json", "--out", "-"]);
    assert_eq!(json.code, 0, "{}", json.transcript());
    let data: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(data["kind"], "tenantform-fleet-report");
    assert_eq!(data["overview"]["read"], 1);
    assert_eq!(data["overview"]["unassignedPaidSeats"], 2);
    let tenant = &data["tenants"][0];
    assert_eq!(tenant["status"], "read");
    assert!(tenant["lastApply"].is_string());
    assert!(
        tenant["secureScore"]["history"].as_array().unwrap().len() >= 30,
        "the history kept"
    );
    assert!(
        tenant["licences"]["byOrganization"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    assert_eq!(data["access"][0]["role"], "TenantAdmin");

    // A tenant whose licences cannot be read: the report is still written, shows it as not
    // read with why, and the run fails by name.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        // Everything the app has but what subscribedSkus needs.
        t["permissions"] = serde_json::json!([
            "User.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "SecurityEvents.Read.All",
            "AuditLog.Read.All",
            "Policy.Read.All"
        ]);
    });
    let denied = report(dir.path(), &["--out", out.to_str().unwrap()]);
    assert_eq!(denied.code, 1, "{}", denied.transcript());
    assert!(
        denied.stderr.contains("error: foggy-it: ") && denied.stderr.contains("licences: "),
        "{}",
        denied.transcript()
    );
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("status not-read"), "the page says so too");
}

#[test]
fn the_report_runs_in_headless_chromium_with_no_errors_no_requests_and_sorting_tables() {
    let Some(chromium) = crate::browser::chromium() else {
        return;
    };
    let (dir, _fixture_dir, _) = applied_fleet_with_hostile_names();
    let out = dir.path().join("fleet.html");
    let run = report(dir.path(), &["--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let url = format!("file://{}", out.display());
    crate::support::block_on(async {
        let mut browser = crate::browser::Browser::launch(&chromium).await;
        browser.open(&url).await;
        assert_eq!(
            browser.seen.errors,
            Vec::<String>::new(),
            "no console errors"
        );
        assert_eq!(
            browser.seen.requests,
            std::slice::from_ref(&url),
            "the page itself and nothing else"
        );
        assert_eq!(browser.eval("typeof window.__pwned").await, "undefined");
        assert_eq!(
            browser
                .eval("document.documentElement.classList.contains('js')")
                .await,
            true,
            "the page's own script ran (allowed by its hash)"
        );
        let charts = browser
            .eval("document.querySelectorAll('svg.chart polyline').length")
            .await;
        assert!(
            charts.as_u64().unwrap() >= 2,
            "fleet and tenant charts drawn"
        );
        let rows = browser
            .eval("document.querySelectorAll('#skus tbody tr').length")
            .await;
        assert_eq!(rows, 2);
        // A click on "Purchased" sorts by it, a second click reverses.
        let column = |table: &str, n: usize| {
            format!(
                "Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.cells[{n}].getAttribute('data-sort'))"
            )
        };
        browser
            .eval("document.querySelectorAll('#skus th')[3].click()")
            .await;
        assert_eq!(
            browser.eval(&column("skus", 3)).await,
            serde_json::json!(["0", "7"])
        );
        browser
            .eval("document.querySelectorAll('#skus th')[3].click()")
            .await;
        assert_eq!(
            browser.eval(&column("skus", 3)).await,
            serde_json::json!(["7", "0"])
        );
        assert_eq!(
            browser
                .eval("document.querySelectorAll('#skus th')[3].getAttribute('aria-sort')")
                .await,
            "descending"
        );
        // Filtering hides rows that do not match.
        browser
            .eval("(() => { const i = document.querySelector('input[data-filter=\"seats-by-organization\"]'); i.value = 'waltham'; i.dispatchEvent(new Event('input')); })()")
            .await;
        let visible = browser
            .eval("Array.from(document.querySelectorAll('#seats-by-organization tbody tr')).filter(r => !r.hidden).length")
            .await;
        assert_eq!(visible, 1);
        // The hostile names are text on the page, not markup.
        let text = browser.eval("document.body.innerText").await;
        assert!(
            text.as_str()
                .unwrap()
                .contains("<script>window.__pwned=2</script>Wanda")
        );
        assert_eq!(browser.seen.errors, Vec::<String>::new(), "still no errors");
        let shot = browser.screenshot().await;
        let artefact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-report.png");
        std::fs::write(&artefact, &shot).unwrap();
        eprintln!("screenshot of the fleet report: {}", artefact.display());
        assert!(shot.starts_with(b"\x89PNG") && shot.len() > 10_000);
    });
}

#[test]
fn auth_check_names_what_the_reports_and_a_policy_need() {
    let (dir, _fixture_dir, fixture) = applied_fleet_with_hostile_names();
    let check = |extra: &[&str]| {
        tf_on(
            dir.path(),
            dir.path(),
            &[
                &["auth", "check", "--sandbox", "--sandbox-world", &fixture][..],
                extra,
            ]
            .concat(),
        )
    };
    let all = check(&["--reports", "--output", "json"]);
    assert_eq!(all.code, 0, "{}", all.transcript());
    let rows: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    let purposes: Vec<&str> = rows[0]["permissionsNeeded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["for"].as_str().unwrap())
        .collect();
    assert!(
        purposes.contains(&"policy") && purposes.contains(&"reports"),
        "{purposes:?}"
    );
    // Without the registration report's permission: only --reports needs it.
    edit_world_tenant(dir.path(), FOGGY, |t| {
        t["permissions"] = serde_json::json!([
            "User.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "Organization.Read.All",
            "Directory.Read.All",
            "SecurityEvents.Read.All",
            "Policy.Read.All"
        ]);
    });
    let plain = check(&[]);
    assert_eq!(plain.code, 0, "{}", plain.transcript());
    let reports = check(&["--reports"]);
    assert_eq!(reports.code, 1, "{}", reports.transcript());
    assert!(
        reports
            .stdout
            .contains("permission missing: AuditLog.Read.All"),
        "{}",
        reports.transcript()
    );
}
