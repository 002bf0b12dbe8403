//! The scale curve: how ingest and every query's p99 change as the stored data grows, from the
//! results `scripts/bench-scale.sh` writes (one result per backend and data size).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::{BackendResult, backend_color, query_names, thousands};

/// The queries whose growth the issue bounds: FindTraces p99 at the largest size within 2× of
/// the smallest.
const BOUNDED_PREFIX: &str = "FindTraces";

/// Results grouped by backend (display order kept), each sorted by span count.
fn by_backend(results: &[BackendResult]) -> Vec<(&str, Vec<&BackendResult>)> {
    let mut grouped: Vec<(&str, Vec<&BackendResult>)> = Vec::new();
    for result in results {
        match grouped
            .iter_mut()
            .find(|(backend, _)| *backend == result.backend)
        {
            Some((_, runs)) => runs.push(result),
            None => grouped.push((&result.backend, vec![result])),
        }
    }
    for (_, runs) in &mut grouped {
        runs.sort_by_key(|run| run.spans);
    }
    grouped
}

#[allow(clippy::cast_precision_loss)]
fn millions(spans: u64) -> String {
    spans_label(spans as f64)
}

/// `3M`, `1.5M`: a span count as an axis or row label.
fn spans_label(spans: f64) -> String {
    let value = spans / 1e6;
    if value.fract() == 0.0 {
        format!("{value:.0}M")
    } else {
        format!("{value:.1}M")
    }
}

fn p99(run: &BackendResult, name: &str) -> Option<f64> {
    run.queries
        .iter()
        .find(|query| query.name == name && query.ok == query.reps && query.reps > 0)
        .map(|query| query.p99_ms)
}

/// One Markdown table per backend: a column per data size, then the largest size's figure
/// over the smallest's; a row for ingest, one for size per span, and one per query's p99
/// (FindTraces growing beyond 2× is marked ✗).
pub(crate) fn markdown(results: &[BackendResult]) -> String {
    let names = query_names(results);
    let mut text = String::new();
    for (backend, runs) in by_backend(results) {
        let compared = match (runs.first(), runs.last()) {
            (Some(first), Some(last)) if runs.len() > 1 => Some((*first, *last)),
            _ => None,
        };
        text.push_str(&format!("**{backend}**\n\n| |"));
        for run in &runs {
            text.push_str(&format!(" {} |", millions(run.spans)));
        }
        if let Some((first, last)) = compared {
            text.push_str(&format!(
                " {} ÷ {} |",
                millions(last.spans),
                millions(first.spans)
            ));
        }
        text.push_str("\n|---|");
        for _ in 0..runs.len() + usize::from(compared.is_some()) {
            text.push_str("---:|");
        }
        text.push('\n');

        let ingest = |run: &BackendResult| run.spans_per_server_cpu_second;
        let size = |run: &BackendResult| run.rss_bytes_per_span.or(run.disk_bytes_per_span);
        row(
            &mut text,
            "ingest, spans per server CPU-second",
            &runs,
            compared,
            ingest,
            thousands,
            false,
        );
        row(
            &mut text,
            "bytes per span (resident or on disk)",
            &runs,
            compared,
            size,
            |bytes| format!("{bytes:.0}"),
            false,
        );
        for name in &names {
            let bounded = name.starts_with(BOUNDED_PREFIX);
            row(
                &mut text,
                &format!("{name}, p99 ms"),
                &runs,
                compared,
                |run| p99(run, name),
                |ms| format!("{ms:.2}"),
                bounded,
            );
        }
        text.push('\n');
    }
    text
}

/// One table row: the figure at each size (`–` when missing), then the ratio of the largest
/// size's to the smallest's, flagged when `bounded` and over 2×.
fn row(
    text: &mut String,
    label: &str,
    runs: &[&BackendResult],
    compared: Option<(&BackendResult, &BackendResult)>,
    figure: impl Fn(&BackendResult) -> Option<f64>,
    show: impl Fn(f64) -> String,
    bounded: bool,
) {
    text.push_str(&format!("| {label} |"));
    for run in runs {
        match figure(run) {
            Some(value) => text.push_str(&format!(" {} |", show(value))),
            None => text.push_str(" – |"),
        }
    }
    if let Some((first, last)) = compared {
        match (figure(first), figure(last)) {
            (Some(small), Some(large)) if small > 0.0 => {
                let ratio = large / small;
                let flag = if bounded && ratio > 2.0 { " ✗" } else { "" };
                text.push_str(&format!(" {ratio:.2}×{flag} |"));
            }
            _ => text.push_str(" – |"),
        }
    }
    text.push('\n');
}

pub(crate) fn render(results: &[BackendResult], out: &Path) -> Result<()> {
    let grouped = by_backend(results);
    let spans: Vec<f64> = results.iter().map(|run| run.spans as f64).collect();
    let min_spans = spans.iter().copied().fold(f64::MAX, f64::min).max(1.0);
    let max_spans = spans.iter().copied().fold(1.0, f64::max);
    let worst_find = |run: &BackendResult| {
        run.queries
            .iter()
            .filter(|query| query.name.starts_with(BOUNDED_PREFIX) && query.ok == query.reps)
            .map(|query| query.p99_ms)
            .fold(None, |worst: Option<f64>, ms| {
                Some(worst.map_or(ms, |w| w.max(ms)))
            })
    };
    let root = SVGBackend::new(out, (1000, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(360);
    let x_range = (min_spans / 1.3..max_spans * 1.3).log_scale();

    let max_rate = results
        .iter()
        .filter_map(|run| run.spans_per_server_cpu_second)
        .fold(1.0, f64::max);
    let mut ingest = ChartBuilder::on(&top)
        .caption(
            "Ingest, spans per server CPU-second, by stored spans",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), 0.0..max_rate * 1.15)?;
    ingest
        .configure_mesh()
        .x_label_formatter(&|x| spans_label(*x))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;

    let max_ms = results
        .iter()
        .filter_map(worst_find)
        .fold(1.0_f64, f64::max);
    let min_ms = results
        .iter()
        .filter_map(worst_find)
        .fold(f64::MAX, f64::min)
        .min(1.0);
    let mut find = ChartBuilder::on(&bottom)
        .caption(
            "Worst FindTraces p99 in ms (log scale), by stored spans",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, (min_ms / 2.0..max_ms * 2.0).log_scale())?;
    find.configure_mesh()
        .x_label_formatter(&|x| spans_label(*x))
        .draw()?;

    for (index, (backend, runs)) in grouped.iter().enumerate() {
        let color = backend_color(
            crate::BACKEND_ORDER
                .iter()
                .position(|name| name == backend)
                .unwrap_or(index),
        );
        let rates: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|run| Some((run.spans as f64, run.spans_per_server_cpu_second?)))
            .collect();
        ingest
            .draw_series(std::iter::once(PathElement::new(
                rates.clone(),
                color.stroke_width(2),
            )))?
            .label(backend.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color));
        ingest.draw_series(
            rates
                .into_iter()
                .map(|point| Circle::new(point, 4, color.filled())),
        )?;
        let worst: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|run| Some((run.spans as f64, worst_find(run)?)))
            .collect();
        find.draw_series(std::iter::once(PathElement::new(
            worst.clone(),
            color.stroke_width(2),
        )))?
        .label(backend.to_string())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color));
        find.draw_series(
            worst
                .into_iter()
                .map(|point| Circle::new(point, 4, color.filled())),
        )?;
    }
    ingest
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    find.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// What the README's scale table shows, grouped as [`markdown`] does, for a unit test.
#[cfg(test)]
pub(crate) fn sizes(results: &[BackendResult]) -> std::collections::BTreeMap<String, Vec<u64>> {
    by_backend(results)
        .into_iter()
        .map(|(backend, runs)| {
            (
                backend.to_owned(),
                runs.iter().map(|run| run.spans).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryTiming;

    fn run(backend: &str, spans: u64, find_p99: f64) -> BackendResult {
        BackendResult {
            backend: backend.to_owned(),
            spans,
            spans_per_server_cpu_second: Some(100_000.0),
            spans_per_database_cpu_second: None,
            spans_per_second: None,
            rss_bytes_per_span: None,
            disk_bytes_per_span: Some(200.0),
            queries: vec![
                QueryTiming {
                    name: "FindTraces service".to_owned(),
                    p50_ms: find_p99 / 2.0,
                    p99_ms: find_p99,
                    ok: 10,
                    reps: 10,
                },
                QueryTiming {
                    name: "GetDependencies".to_owned(),
                    p50_ms: 1.0,
                    p99_ms: 2.0,
                    ok: 9,
                    reps: 10,
                },
            ],
        }
    }

    #[test]
    fn sizes_are_grouped_by_backend_in_order() {
        let results = [
            run("lsm", 10_000_000, 30.0),
            run("lsm", 1_000_000, 10.0),
            run("memory", 3_000_000, 4.0),
        ];
        let sizes = sizes(&results);
        assert_eq!(sizes["lsm"], [1_000_000, 10_000_000]);
        assert_eq!(sizes["memory"], [3_000_000]);
    }

    #[test]
    fn growth_beyond_twice_is_flagged_and_failed_queries_are_blank() {
        let table = markdown(&[run("lsm", 1_000_000, 10.0), run("lsm", 10_000_000, 30.0)]);
        assert!(table.contains("| | 1M | 10M | 10M ÷ 1M |"), "{table}");
        assert!(
            table.contains("| FindTraces service, p99 ms | 10.00 | 30.00 | 3.00× ✗ |"),
            "{table}"
        );
        assert!(
            table.contains("| GetDependencies, p99 ms | – | – | – |"),
            "{table}"
        );
        assert!(
            table.contains("| ingest, spans per server CPU-second | 100k | 100k | 1.00× |"),
            "{table}"
        );
        let flat = markdown(&[run("pg", 1_000_000, 10.0), run("pg", 3_000_000, 15.0)]);
        assert!(flat.contains("1.50× |"), "{flat}");
        assert!(!flat.contains('✗'), "{flat}");
    }
}
