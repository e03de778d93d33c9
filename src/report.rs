//! `courier report`: central's exam-day report, one self-contained HTML page.
//!
//! The page is read on a laptop without internet: inline CSS, charts as inline SVG drawn
//! here, no script, no font, no image and no link to anything outside the file. Its table
//! is [`status::central_status`](crate::status::central_status), the very computation
//! behind `status --json`, read in the same transaction as what status lacks: results
//! held by the hour (or day) their stored copy arrived, and the size of each results
//! bundle applied. Every text from the store (labels are operator input) is escaped.
//! Cells and bars carry `data-org` / `data-field` / `data-value` attributes, so a script
//! or a test reads the numbers without parsing prose.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::site::{Role, Site};
use crate::status::{central_status, CenterRow, CentralStatus};
use crate::store::ReceivedBundle;

/// More hourly slots than this (three days) and arrivals are counted per day.
const MAX_HOURS: usize = 72;
/// Slots with no arrival are drawn as empty bars up to this many slots.
const MAX_SLOTS: usize = 400;

/// What `report` wrote, for the binary's one-line summary.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    pub centers: usize,
    pub results_received: i64,
    pub late: usize,
    /// Results bundles applied, and how many of them have no recorded size.
    pub bundles: usize,
    pub bundles_unsized: usize,
}

/// Everything the page shows, read in one transaction.
struct ReportData {
    status: CentralStatus,
    /// "hour" or "day", and the arrivals per slot in time order (empty slots included).
    slot: &'static str,
    arrivals: Vec<(String, i64)>,
    bundles: Vec<ReceivedBundle>,
}

/// Write central's exam-day report to `out` (a temporary name beside it, then renamed; an
/// existing file is replaced). `late_after_days` overrides the setting, as for `status`.
pub fn write_report(
    site: &Site,
    out: &Path,
    late_after_days: Option<u64>,
) -> Result<ReportSummary> {
    if site.role() != Role::Central {
        return Err(Error::Usage {
            what: format!(
                "{}: the exam-day report is made at central, and this home is a centre; run `courier report` with central's --home (at a centre, `courier status` shows what is pending)",
                site.home.display()
            ),
        });
    }
    let data = read_data(site, late_after_days)?;
    let mut tmp = crate::fs::temp_beside(out)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        render(&mut w, &data).at(out)?;
        w.flush().at(out)?;
    }
    tmp.as_file().sync_all().at(out)?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    Ok(ReportSummary {
        centers: data.status.centers.len(),
        results_received: data.status.centers.iter().map(|c| c.results_received).sum(),
        late: data.status.late.len(),
        bundles: data.bundles.len(),
        bundles_unsized: data
            .bundles
            .iter()
            .filter(|b| b.payload_size.is_none())
            .count(),
    })
}

fn read_data(site: &Site, late_after_days: Option<u64>) -> Result<ReportData> {
    let mut store = site.store()?;
    let tx = store.read()?;
    let now = crate::time::unix_now();
    let days = late_after_days.unwrap_or(site.config.settings.late_after_days);
    let status = central_status(&tx, days, now)?;
    let hours = tx.arrivals(13)?;
    let (slot, arrivals) = match fill_slots(&hours, "hour", 3600) {
        Some(filled) if filled.len() <= MAX_HOURS => ("hour", filled),
        _ => {
            let per_day = tx.arrivals(10)?;
            (
                "day",
                fill_slots(&per_day, "day", 86_400).unwrap_or(per_day),
            )
        }
    };
    Ok(ReportData {
        status,
        slot,
        arrivals,
        bundles: tx.received_bundles()?,
    })
}

/// Slots from the first to the last with the empty ones in between (0), or `None` when a
/// slot cannot be read as a time or there would be more than [`MAX_SLOTS`].
fn fill_slots(counts: &[(String, i64)], unit: &str, step: i64) -> Option<Vec<(String, i64)>> {
    let suffix = if unit == "hour" {
        ":00:00Z"
    } else {
        "T00:00:00Z"
    };
    let time = |slot: &str| crate::time::parse_time(&format!("{slot}{suffix}"));
    let (Some(first), Some(last)) = (counts.first(), counts.last()) else {
        return Some(Vec::new());
    };
    let (start, end) = (time(&first.0)?, time(&last.0)?);
    if (end - start) / step >= MAX_SLOTS as i64 {
        return None;
    }
    let len = first.0.len();
    let mut out = Vec::new();
    let mut given = counts.iter().peekable();
    let mut t = start;
    while t <= end {
        let slot = crate::time::rfc3339(t)[..len].to_string();
        let n = match given.peek() {
            Some((s, n)) if *s == slot => {
                given.next();
                *n
            }
            _ => 0,
        };
        out.push((slot, n));
        t += step;
    }
    given.next().is_none().then_some(out)
}

/// `text` safe inside HTML text and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:72em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}\
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
td.n{text-align:right}td:first-child,td.nw{white-space:nowrap}tr.late{background:#fde8e8}.warn{color:#a40000;font-weight:bold}\
.note{color:#555;font-size:.85em}svg text{font-size:12px;font-family:system-ui,sans-serif}";

fn render(w: &mut impl Write, d: &ReportData) -> io::Result<()> {
    let s = &d.status;
    writeln!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    )?;
    writeln!(
        w,
        "<title>courier exam-day report, {}</title>",
        html_escape(&s.generated_at)
    )?;
    writeln!(w, "<style>{STYLE}</style></head><body>")?;
    writeln!(w, "<h1>Exam-day report</h1>")?;
    let total: i64 = s.centers.iter().map(|c| c.results_received).sum();
    writeln!(
        w,
        "<p id=\"summary\" data-generated-at=\"{at}\" data-centers=\"{n}\" data-results-received=\"{total}\" data-late=\"{late}\">Made at {at} (central's clock): {n} centre(s), {total} result(s) received, {late} late (no results bundle for more than {days} day(s)).</p>",
        at = html_escape(&s.generated_at),
        n = s.centers.len(),
        late = s.late.len(),
        days = s.late_after_days,
    )?;
    centers_table(w, &s.centers)?;
    let per_center: Vec<(String, i64)> = s
        .centers
        .iter()
        .map(|c| (c.org_id.clone(), c.results_received))
        .collect();
    writeln!(w, "<h2>Results received per centre</h2>")?;
    bar_chart(w, "per-center", &per_center, "result(s)")?;
    writeln!(
        w,
        "<h2>Arrivals over time (results received per {})</h2>",
        d.slot
    )?;
    writeln!(w, "<p class=\"note\">When central stored each result it holds (a result sent again counts at its latest arrival). Times are UTC.</p>")?;
    bar_chart(w, "arrivals", &d.arrivals, "result(s)")?;
    sizes(w, &d.bundles)?;
    writeln!(w, "</body></html>")
}

/// The table, one row per centre: the fields of `status --json` an operator reads first.
fn centers_table(w: &mut impl Write, rows: &[CenterRow]) -> io::Result<()> {
    writeln!(w, "<h2>Centres</h2>\n<table id=\"centers\"><thead><tr><th>Org id</th><th>Label</th><th>Status</th><th>Results received</th><th>Kept aside</th><th>Acknowledgements pending</th><th>Data bundles unconfirmed</th><th>Last contact</th><th>Days since</th><th>Warning</th></tr></thead><tbody>")?;
    for r in rows {
        let org = html_escape(&r.org_id);
        let class = if r.late { " class=\"late\"" } else { "" };
        writeln!(w, "<tr data-org=\"{org}\" data-late=\"{}\"{class}>", r.late)?;
        writeln!(w, "<td data-field=\"org_id\">{org}</td>")?;
        writeln!(w, "<td data-field=\"label\">{}</td>", html_escape(&r.label))?;
        writeln!(w, "<td data-field=\"status\">{}</td>", r.status)?;
        for (field, n) in [
            ("results_received", r.results_received),
            ("results_kept_aside", r.results_kept_aside),
            ("acks_unconfirmed", r.acks_unconfirmed),
            ("data_unconfirmed", r.data_unconfirmed),
        ] {
            writeln!(w, "<td class=\"n\" data-field=\"{field}\">{n}</td>")?;
        }
        let contact = r.last_contact.as_deref().unwrap_or("never");
        writeln!(
            w,
            "<td class=\"nw\" data-field=\"last_contact\">{}</td>",
            html_escape(contact)
        )?;
        let days = r
            .days_since_contact
            .map(|d| d.to_string())
            .unwrap_or_default();
        writeln!(
            w,
            "<td class=\"n\" data-field=\"days_since_contact\">{days}</td>"
        )?;
        let warning = html_escape(r.warning.as_deref().unwrap_or(""));
        writeln!(
            w,
            "<td class=\"warn\" data-field=\"warning\">{warning}</td></tr>"
        )?;
    }
    writeln!(w, "</tbody></table>")
}

/// Bundle sizes: a histogram of the results bundles applied, by powers of two.
fn sizes(w: &mut impl Write, bundles: &[ReceivedBundle]) -> io::Result<()> {
    writeln!(w, "<h2>Sizes of the results bundles received</h2>")?;
    let sized: Vec<i64> = bundles.iter().filter_map(|b| b.payload_size).collect();
    let unsized_count = bundles.len() - sized.len();
    writeln!(
        w,
        "<p class=\"note\" id=\"sizes-note\" data-bundles=\"{}\" data-unsized=\"{unsized_count}\">{} results bundle(s) applied; payload size, counted per range; {unsized_count} applied before sizes were recorded are not shown.</p>",
        bundles.len(),
        bundles.len()
    )?;
    let mut bins: Vec<(String, i64)> = Vec::new();
    let mut upper: i64 = 16 * 1024;
    let mut lower: i64 = -1;
    let largest = sized.iter().copied().max().unwrap_or(-1);
    while lower < largest {
        let n = sized.iter().filter(|&&s| s > lower && s <= upper).count() as i64;
        bins.push((format!("≤ {}", human_bytes(upper)), n));
        lower = upper;
        upper = upper.saturating_mul(2);
    }
    bar_chart(w, "sizes", &bins, "bundle(s)")
}

fn human_bytes(n: i64) -> String {
    const KIB: i64 = 1024;
    if n >= KIB * KIB {
        format!("{} MiB", n / (KIB * KIB))
    } else {
        format!("{} KiB", n / KIB)
    }
}

/// A horizontal bar chart as inline SVG: one labelled bar per (label, value), the value
/// written at the bar's end. Labels are escaped.
fn bar_chart(w: &mut impl Write, id: &str, bars: &[(String, i64)], unit: &str) -> io::Result<()> {
    const LABEL: i64 = 170;
    const WIDTH: i64 = 460;
    const ROW: i64 = 20;
    if bars.is_empty() {
        return writeln!(
            w,
            "<p class=\"note\" id=\"{id}-empty\">Nothing to show yet.</p>"
        );
    }
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let height = ROW * bars.len() as i64 + 4;
    writeln!(
        w,
        "<svg id=\"{id}\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{unit} per bar\">",
        LABEL + WIDTH + 90
    )?;
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = i as i64 * ROW + 2;
        let len = (value * WIDTH / max).max(if *value > 0 { 1 } else { 0 });
        let label = html_escape(label);
        writeln!(
            w,
            "<g data-bar=\"{label}\" data-value=\"{value}\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{len}\" height=\"{}\" fill=\"#3b6ea8\"/><text x=\"{}\" y=\"{}\">{value}</text></g>",
            LABEL - 6,
            y + 13,
            ROW - 4,
            LABEL + len + 4,
            y + 13
        )?;
    }
    writeln!(w, "</svg>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_slots_are_filled_between_arrivals() {
        let hours = vec![
            ("2026-03-02T09".to_string(), 3),
            ("2026-03-02T12".to_string(), 1),
        ];
        let filled = fill_slots(&hours, "hour", 3600).unwrap();
        let counts: Vec<i64> = filled.iter().map(|s| s.1).collect();
        assert_eq!(counts, [3, 0, 0, 1]);
        assert_eq!(filled[1].0, "2026-03-02T10");
    }

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
