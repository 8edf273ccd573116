//! Charts as inline SVG, drawn by hand: a percentage over days is a polyline on a 0-100
//! grid, which needs no plotting crate, and every label goes through the same escaping as the
//! rest of the page.

use std::fmt::Write;

use super::html::escape;

/// One line of a chart: its label, its CSS class, its (day, percent) points.
pub type Series<'a> = (&'a str, &'a str, &'a [(String, f64)]);

/// A line chart of percentages by day (`YYYY-MM-DD`, oldest first), 0-100% on the y axis;
/// `series` are (label, css class, points). `title` names the chart for screen readers.
pub fn line_chart(title: &str, series: &[Series<'_>], width: u32, height: u32) -> String {
    let (left, right, top, bottom) = (38.0, 10.0, 10.0, 22.0);
    let plot_w = f64::from(width) - left - right;
    let plot_h = f64::from(height) - top - bottom;
    let days: Vec<i64> = series
        .iter()
        .flat_map(|(_, _, points)| points.iter())
        .filter_map(|(d, _)| day_number(d))
        .collect();
    let (first, last) = match (days.iter().min(), days.iter().max()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (0, 0),
    };
    let span = (last - first).max(1) as f64;
    let x = |day: i64| left + plot_w * (day - first) as f64 / span;
    let y = |pct: f64| top + plot_h * (1.0 - pct.clamp(0.0, 100.0) / 100.0);
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\"><title>{}</title>",
        escape(title)
    );
    for pct in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{pct}%</text>",
            left + plot_w,
            y(pct),
            y(pct),
            left - 4.0,
            y(pct) + 4.0
        );
    }
    if days.is_empty() {
        let _ = write!(
            svg,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no records</text>",
            left + plot_w / 2.0,
            top + plot_h / 2.0
        );
    } else {
        for (label, class, points) in series.iter() {
            let mut path = String::new();
            for (d, pct) in points.iter() {
                if let Some(day) = day_number(d) {
                    let _ = write!(path, "{:.1},{:.1} ", x(day), y(*pct));
                }
            }
            let _ = write!(
                svg,
                "<polyline class=\"line {}\" fill=\"none\" points=\"{}\"><title>{}</title></polyline>",
                escape(class),
                path.trim_end(),
                escape(label)
            );
            if let Some((d, pct, day)) = points
                .last()
                .and_then(|(d, pct)| Some((d, pct, day_number(d)?)))
            {
                let _ = write!(
                    svg,
                    "<circle class=\"dot {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>{}: {pct:.1}% on {}</title></circle>",
                    escape(class),
                    x(day),
                    y(*pct),
                    escape(label),
                    escape(d)
                );
            }
        }
        let label_y = f64::from(height) - 6.0;
        let first_label = series
            .iter()
            .flat_map(|(_, _, p)| p.iter())
            .map(|(d, _)| d)
            .min();
        let last_label = series
            .iter()
            .flat_map(|(_, _, p)| p.iter())
            .map(|(d, _)| d)
            .max();
        if let (Some(a), Some(b)) = (first_label, last_label) {
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{left}\" y=\"{label_y}\">{}</text><text class=\"axis\" x=\"{:.1}\" y=\"{label_y}\" text-anchor=\"end\">{}</text>",
                escape(a),
                left + plot_w,
                escape(b)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A small trend line for a table cell (no axes): the last 90 days kept.
pub fn sparkline(points: &[(String, f64)]) -> String {
    let (width, height) = (100.0, 24.0);
    let recent = &points[points.len().saturating_sub(90)..];
    let days: Vec<i64> = recent.iter().filter_map(|(d, _)| day_number(d)).collect();
    let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
        return String::new();
    };
    let span = (last - first).max(1) as f64;
    let mut path = String::new();
    for (d, pct) in recent {
        if let Some(day) = day_number(d) {
            let _ = write!(
                path,
                "{:.1},{:.1} ",
                width * (day - first) as f64 / span,
                2.0 + (height - 4.0) * (1.0 - pct.clamp(0.0, 100.0) / 100.0)
            );
        }
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" aria-hidden=\"true\"><polyline fill=\"none\" points=\"{}\"/></svg>",
        path.trim_end()
    )
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn day_number(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    Some(i64::from(epoch.until(d).ok()?.get_days()))
}
