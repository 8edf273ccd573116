use super::*;
use crate::secure_score::DailyScore;

fn day(date: &str, pct: f64) -> DailyScore {
    DailyScore {
        date: date.into(),
        current: pct,
        max: 100.0,
        active_users: 0,
        licensed_users: 0,
        comparative: Vec::new(),
        controls: Vec::new(),
    }
}

fn scored(name: &str, days: &[(&str, f64)]) -> TenantParts {
    let history: Vec<DailyScore> = days.iter().map(|(d, p)| day(d, *p)).collect();
    TenantParts {
        name: name.into(),
        display_name: Some(format!("{name} <b>Ltd</b>")),
        microsoft_tenant_id: Some(format!("{name}-id")),
        secure_score: Some(ScoreView::of(&history, history.last(), Vec::new())),
        ..TenantParts::default()
    }
}

#[test]
fn the_overview_counts_read_status_and_the_fleet_trend_averages_each_day() {
    let mut unread = scored("c-unread", &[]);
    unread.problems = vec!["licences: permission missing".into()];
    let unmapped = TenantParts {
        name: "d-unmapped".into(),
        ..TenantParts::default()
    };
    let report = assemble(
        "2026-12-07T08:00:00Z".into(),
        "2026-12-07".into(),
        None,
        vec![
            unmapped,
            scored("b", &[("2026-11-30", 60.0), ("2026-12-07", 50.0)]),
            scored("a", &[("2026-11-30", 40.0), ("2026-12-07", 42.0)]),
            unread,
        ],
        None,
        Vec::new(),
    );
    let names: Vec<&str> = report.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c-unread", "d-unmapped"]);
    let o = &report.overview;
    assert_eq!((o.tenants, o.read, o.not_read, o.unmapped), (4, 2, 1, 1));
    assert_eq!(report.tenants[2].status, "not-read");
    assert_eq!(report.tenants[3].status, "unmapped");
    assert_eq!(
        report.fleet_score,
        [
            FleetDay {
                date: "2026-11-30".into(),
                percentage: 50.0,
                tenants: 2
            },
            FleetDay {
                date: "2026-12-07".into(),
                percentage: 46.0,
                tenants: 2
            }
        ]
    );
    assert_eq!(o.secure_score, Some(46.0));
    assert_eq!(o.secure_score_change_7, Some(-4.0));
    // b fell 10 points in 7 days: before a (42%, rising); tenants without a score are left out.
    let order: Vec<&str> = worst_scores_first(&report.tenants)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(order, ["b", "a"]);
}

#[test]
fn tenants_falling_fast_come_first_then_the_lowest() {
    let report = assemble(
        String::new(),
        String::new(),
        None,
        vec![
            scored("steady-low", &[("2026-11-30", 30.0), ("2026-12-07", 30.0)]),
            scored("slipping", &[("2026-11-30", 44.0), ("2026-12-07", 40.0)]),
            scored("falling", &[("2026-11-30", 90.0), ("2026-12-07", 80.0)]),
            scored(
                "falling-more",
                &[("2026-11-30", 95.0), ("2026-12-07", 75.0)],
            ),
        ],
        None,
        Vec::new(),
    );
    let order: Vec<&str> = worst_scores_first(&report.tenants)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(order, ["falling-more", "falling", "steady-low", "slipping"]);
}

#[test]
fn the_fleet_trend_carries_each_tenants_last_score_over_days_it_has_none() {
    let report = assemble(
        String::new(),
        String::new(),
        None,
        vec![
            // b's record for the 7th is not made yet: its 6th counts that day.
            scored("a", &[("2026-12-06", 40.0), ("2026-12-07", 60.0)]),
            scored("b", &[("2026-12-06", 20.0)]),
            scored("c", &[("2026-12-07", 30.0)]),
        ],
        None,
        Vec::new(),
    );
    let days: Vec<(&str, f64, usize)> = report
        .fleet_score
        .iter()
        .map(|d| (d.date.as_str(), d.percentage, d.tenants))
        .collect();
    assert_eq!(days, [("2026-12-06", 30.0, 2), ("2026-12-07", 36.67, 3)]);
    assert_eq!(
        report.overview.secure_score,
        Some(36.67),
        "each tenant's latest"
    );
}

#[test]
fn the_page_escapes_untrusted_text_and_allows_only_its_own_script() {
    let mut t = scored("a", &[("2026-12-07", 42.0)]);
    t.display_name = Some("<script>alert(1)</script>\u{1b}[2J\"'&".into());
    let report = assemble(
        String::new(),
        "2026-12-07".into(),
        None,
        vec![t],
        None,
        Vec::new(),
    );
    let page = html::render(&report);
    assert!(
        !page.contains("<script>alert"),
        "markup from a name is escaped"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;\u{fffd}[2J&quot;&#39;&amp;"));
    assert!(!page.contains('\u{1b}'));
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "the page's own script only"
    );
    assert!(page.contains("script-src 'sha256-"));
    assert!(page.contains("id=\"tenant-a\"") && page.contains("href=\"#tenant-a\""));
    assert!(
        !page.contains(" src=") && !page.contains("href=\"http") && !page.contains("url("),
        "nothing loads from anywhere"
    );
    assert!(page.contains("<svg class=\"chart\""));
}
