//! HTML building blocks: escaping, the page frame, and server-rendered SVG charts.

use std::fmt::Write;

use axum::response::Html;

use super::Caller;

/// A problem shown on a page, escaped, announced to screen readers.
pub fn alert(problem: &dyn std::fmt::Display) -> String {
    format!(
        "<p class=\"error\" role=\"alert\">{}</p>",
        escape(&problem.to_string())
    )
}

/// One table row of plain cells, each as it displays (escape text before passing it).
pub fn row(cells: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::from("<tr>");
    for cell in cells {
        let _ = write!(out, "<td>{cell}</td>");
    }
    out.push_str("</tr>");
    out
}

/// Escapes text for HTML content and quoted attributes, dropping control characters.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A form field holding a whole number from 1 to `max`; `None` when left empty.
pub fn whole_field(
    field: &'static str,
    text: &str,
    max: u64,
) -> Result<Option<u64>, super::form::FormError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(v) if (1..=max).contains(&v) => Ok(Some(v)),
        _ => Err(super::form::FormError::WholeNumber {
            field,
            text: text.to_string(),
            max,
        }),
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(caller: &Caller) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&caller.csrf)
    )
}

const NAV: [(&str, &str); 7] = [
    ("cluster", "Cluster"),
    ("jobs", "Jobs"),
    ("tenants", "Tenants"),
    ("nodes", "Nodes"),
    ("audit", "Audit"),
    ("planner", "Planner"),
    ("simulations", "Simulations"),
];

/// A whole page: title, navigation (when signed in) and `body` (already escaped HTML).
pub fn page(title: &str, caller: Option<&Caller>, active: &str, body: &str) -> Html<String> {
    let mut nav = String::new();
    if let Some(caller) = caller {
        nav.push_str("<nav aria-label=\"Main\"><ul>");
        for (key, label) in NAV {
            if key == "audit" && !caller.me.is_admin() {
                continue;
            }
            let current = if key == active {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                nav,
                "<li><a href=\"/console/{key}\"{current}>{label}</a></li>"
            );
        }
        let tenant = caller.me.tenant.as_deref().unwrap_or("all tenants");
        let _ = write!(
            nav,
            "</ul><form method=\"post\" action=\"/console/logout\" class=\"who\">{}\
             <span>{} · {} · {}</span> <button type=\"submit\" class=\"link\">Sign out</button>\
             </form></nav>",
            csrf_field(caller),
            escape(&caller.me.user),
            caller.me.role.as_str(),
            escape(tenant),
        );
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · suanli</title>\
         <link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         <script src=\"/console/static/console.js\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/console/cluster\">suanli</a>{nav}</header>\
         <main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    ))
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// One line of a chart: a name and (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A line chart as inline SVG; `x_label` and `y_label` name the axes (with units).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const L: f64 = 56.0;
    const B: f64 = 40.0;
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return format!("<p class=\"hint\">{}: no data yet.</p>", escape(title));
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let y1 = nice_ceiling(y1);
    let sx = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - 10.0);
    let sy = |y: f64| H - B - y / y1 * (H - B - 10.0);
    let mut svg = format!(
        "<figure><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" class=\"chart\">\
         <title>{t}</title>\
         <line x1=\"{L}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" class=\"axis\"/>\
         <line x1=\"{L}\" y1=\"10\" x2=\"{L}\" y2=\"{yb}\" class=\"axis\"/>",
        t = escape(title),
        yb = H - B,
        xr = W - 10.0,
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            L - 4.0,
            sy(y) + 4.0,
            short(y)
        );
    }
    for (x, anchor) in [(x0, "start"), (x1, "end")] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"{anchor}\">{}</text>",
            sx(x),
            H - B + 16.0,
            short(x)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" class=\"label\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{}\" class=\"label\" text-anchor=\"middle\" \
          transform=\"rotate(-90 12 {})\">{}</text>",
        (L + W) / 2.0,
        H - 6.0,
        escape(x_label),
        (H - B) / 2.0,
        (H - B) / 2.0,
        escape(y_label)
    );
    let mut legend = String::new();
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"s{}\" fill=\"none\" points=\"{}\"/>",
            i % 6,
            points.join(" ")
        );
        let _ = write!(
            legend,
            "<span class=\"key s{}\">{}</span>",
            i % 6,
            escape(s.name)
        );
    }
    let _ = write!(
        svg,
        "</svg><figcaption>{} {legend}</figcaption></figure>",
        escape(title)
    );
    svg
}

/// The smallest of 1, 2, 4, 5 or 10 times a power of ten at or above `v` (1 for nothing), so
/// that quarter ticks are round numbers.
pub fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 4.0, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|c| *c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * base)
}

/// A number in few characters: 1234 -> 1.2k.
pub fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A horizontal meter: `used` of `limit` as an SVG bar, with the figures as text.
pub fn meter(label: &str, used: f64, limit: f64) -> String {
    let fraction = if limit > 0.0 {
        (used / limit).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let class = if used > limit { "over" } else { "fill" };
    format!(
        "<svg viewBox=\"0 0 100 8\" class=\"meter\" role=\"img\" aria-label=\"{l}: {u} of {m}\">\
         <rect width=\"100\" height=\"8\" class=\"track\"/>\
         <rect width=\"{w:.1}\" height=\"8\" class=\"{class}\"/></svg>",
        l = escape(label),
        u = short(used),
        m = short(limit),
        w = fraction * 100.0
    )
}

/// A row of `stacked_bars` in GB from parts given in bytes.
pub fn gigabytes(label: &str, parts: &[(&'static str, f64)]) -> (String, Vec<(&'static str, f64)>) {
    let parts = parts.iter().map(|&(name, bytes)| (name, bytes / 1e9));
    (label.to_string(), parts.collect())
}

/// Horizontal stacked bars, one per row, sharing a scale; each part is (name, value in `unit`).
pub fn stacked_bars(title: &str, unit: &str, rows: &[(String, Vec<(&str, f64)>)]) -> String {
    const W: f64 = 640.0;
    const L: f64 = 150.0;
    const ROW: f64 = 26.0;
    let max = rows
        .iter()
        .map(|(_, parts)| parts.iter().map(|(_, v)| v.max(0.0)).sum::<f64>())
        .fold(0.0f64, f64::max);
    if rows.is_empty() || max <= 0.0 {
        return String::new();
    }
    let height = ROW * rows.len() as f64 + 24.0;
    let mut svg = format!(
        "<figure><svg viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"{t}\" class=\"chart\">\
         <title>{t}</title>",
        t = escape(title)
    );
    for (i, (label, parts)) in rows.iter().enumerate() {
        let y = i as f64 * ROW + 4.0;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            L - 6.0,
            y + 14.0,
            escape(label)
        );
        let mut x = L;
        for (j, (name, value)) in parts.iter().enumerate() {
            let w = value.max(0.0) / max * (W - L - 70.0);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" class=\"s{}\">\
                 <title>{}: {} {}</title></rect>",
                j % 6,
                escape(name),
                short(*value),
                escape(unit)
            );
            x += w;
        }
        let total: f64 = parts.iter().map(|(_, v)| v.max(0.0)).sum();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{} {}</text>",
            x + 4.0,
            y + 14.0,
            short(total),
            escape(unit)
        );
    }
    let _ = write!(svg, "</svg><figcaption>{}", escape(title));
    if let Some((_, parts)) = rows.first() {
        for (j, (name, _)) in parts.iter().enumerate() {
            let _ = write!(
                svg,
                "<span class=\"key s{}\">{}</span>",
                j % 6,
                escape(name)
            );
        }
    }
    svg.push_str("</figcaption></figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_controls() {
        assert_eq!(
            escape("<script>\"x\"&'y'\u{1b}[31m</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;[31m&lt;/script&gt;"
        );
    }

    #[test]
    fn time_matches_known_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC, a leap day (date -d @1709210096 -u).
        assert_eq!(time(1_709_210_096), "2024-02-29 12:34:56");
    }

    #[test]
    fn chart_scales_end_on_round_numbers() {
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(9.0), 10.0);
        assert_eq!(nice_ceiling(3.2), 4.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }

    #[test]
    fn url_encode_escapes_reserved_bytes() {
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
