//! `bench-chart`: turns the `bench/results/<backend>.json` files written by `scripts/bench.sh`
//! into one SVG chart comparing the backends (ingest throughput on top, query p99 below), or
//! into the Markdown tables of the README's Benchmarks section.
//!
//! ```text
//! bench-chart --out bench/results/chart.svg bench/results/*.json
//! bench-chart --table bench/results/*.json
//! bench-chart --scale --out bench/results/scale/scale.svg bench/results/scale/*/*.json
//! ```
//!
//! With `--scale` the files are one backend at several data sizes (`scripts/bench-scale.sh`):
//! the table has a row per size and the chart draws ingest and FindTraces p99 against the size.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use plotters::prelude::*;
use serde_json::Value;

mod scale;

/// Display order of the backends; unknown names follow in file order.
const BACKEND_ORDER: [&str; 4] = ["discard", "memory", "lsm", "postgres"];

/// One backend's result file, reduced to what the chart and table show.
#[derive(Debug)]
struct BackendResult {
    backend: String,
    spans: u64,
    spans_per_server_cpu_second: Option<f64>,
    /// PostgreSQL's own CPU during the load, counted apart from the server's.
    spans_per_database_cpu_second: Option<f64>,
    spans_per_second: Option<f64>,
    rss_bytes_per_span: Option<f64>,
    disk_bytes_per_span: Option<f64>,
    queries: Vec<QueryTiming>,
}

#[derive(Debug)]
struct QueryTiming {
    name: String,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
    reps: u64,
}

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut table = false;
    let mut scale = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(args.next().context("--out needs a file")?.into()),
            "--table" => table = true,
            "--scale" => scale = true,
            "-h" | "--help" => {
                println!("usage: bench-chart [--scale] [--out chart.svg] [--table] RESULT.json...");
                return Ok(());
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        bail!(
            "no result files given (usage: bench-chart [--out chart.svg] [--table] RESULT.json...)"
        );
    }
    let mut results = Vec::new();
    for file in &files {
        results.push(read_result(file)?);
    }
    results.sort_by_key(|result| {
        BACKEND_ORDER
            .iter()
            .position(|name| *name == result.backend)
            .unwrap_or(BACKEND_ORDER.len())
    });
    if scale {
        if let Some(out) = out {
            scale::render(&results, &out)?;
        }
        print!("{}", scale::markdown(&results));
        return Ok(());
    }
    if let Some(out) = out {
        render(&results, &out)?;
    }
    if table {
        print!("{}", markdown_tables(&results));
    }
    Ok(())
}

fn read_result(path: &Path) -> Result<BackendResult> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let json: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
    let backend = json["backend"]
        .as_str()
        .with_context(|| format!("{path:?} has no backend name"))?
        .to_owned();
    let per_span = |value: &Value| value.as_f64().filter(|bytes| *bytes > 0.0);
    let queries = json["queries"]
        .as_array()
        .map(|queries| {
            queries
                .iter()
                .map(|query| QueryTiming {
                    name: query["name"].as_str().unwrap_or("?").to_owned(),
                    p50_ms: query["p50_ms"].as_f64().unwrap_or(0.0),
                    p99_ms: query["p99_ms"].as_f64().unwrap_or(0.0),
                    ok: query["ok"].as_u64().unwrap_or(0),
                    reps: query["reps"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(BackendResult {
        spans: json["spans"].as_u64().unwrap_or(0),
        spans_per_server_cpu_second: json["ingest"]["median_spans_per_server_cpu_second"].as_f64(),
        spans_per_database_cpu_second: json["ingest"]["median_spans_per_database_cpu_second"]
            .as_f64(),
        spans_per_second: json["ingest"]["median_spans_per_second"].as_f64(),
        rss_bytes_per_span: if backend == "memory" {
            per_span(&json["memory"]["bytes_per_stored_span"])
        } else {
            None
        },
        disk_bytes_per_span: per_span(&json["disk"]["bytes_per_span"]),
        backend,
        queries,
    })
}

fn backend_color(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 5] = [
        RGBColor(140, 140, 140),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
    ];
    COLORS[index % COLORS.len()]
}

/// Query names in first-seen order over every backend.
fn query_names(results: &[BackendResult]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for result in results {
        for query in &result.queries {
            if !names.contains(&query.name) {
                names.push(query.name.clone());
            }
        }
    }
    names
}

#[allow(clippy::cast_precision_loss)]
fn render(results: &[BackendResult], out: &Path) -> Result<()> {
    let names = query_names(results);
    let with_queries: Vec<(usize, &BackendResult)> = results
        .iter()
        .enumerate()
        .filter(|(_, result)| !result.queries.is_empty())
        .collect();
    let query_height = 120 + 34 * u32::try_from(names.len().max(1)).unwrap_or(u32::MAX / 64);
    let root = SVGBackend::new(out, (1000, 360 + query_height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(360);

    // Ingest: spans per server CPU-second and per wall second, one group per backend.
    let max_rate = results
        .iter()
        .flat_map(|result| [result.spans_per_server_cpu_second, result.spans_per_second])
        .flatten()
        .fold(1.0_f64, f64::max);
    let backend_count = results.len().max(1) as f64;
    let mut ingest = ChartBuilder::on(&top)
        .caption(
            "Ingest (median of runs): spans per server CPU-second and per wall second",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..backend_count - 0.5, 0.0..max_rate * 1.15)?;
    ingest
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len().max(1))
        .x_label_formatter(&|x| {
            category(*x)
                .and_then(|index| results.get(index))
                .map(|result| result.backend.clone())
                .unwrap_or_default()
        })
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;
    for (index, result) in results.iter().enumerate() {
        let center = index as f64;
        let color = backend_color(index);
        let bars = [
            (
                center - 0.35,
                result.spans_per_server_cpu_second,
                color.filled(),
            ),
            (center, result.spans_per_second, color.mix(0.45).filled()),
        ];
        for (left, value, style) in bars {
            let Some(value) = value else { continue };
            ingest.draw_series(std::iter::once(Rectangle::new(
                [(left, 0.0), (left + 0.33, value)],
                style,
            )))?;
            ingest.draw_series(std::iter::once(Text::new(
                format!("{:.0}k", value / 1000.0),
                (left + 0.02, value + max_rate * 0.03),
                ("sans-serif", 13),
            )))?;
        }
    }
    ingest.draw_series(std::iter::once(Text::new(
        "solid: per server CPU-second, light: per wall second (PostgreSQL's own CPU is not counted)",
        (-0.45, max_rate * 1.1),
        ("sans-serif", 12),
    )))?;

    // Queries: p99 per query on a log scale, one bar per backend in each group.
    let min_ms = with_queries
        .iter()
        .flat_map(|(_, result)| result.queries.iter().map(|query| query.p99_ms))
        .filter(|ms| *ms > 0.0)
        .fold(f64::MAX, f64::min)
        .min(1.0);
    let max_ms = with_queries
        .iter()
        .flat_map(|(_, result)| result.queries.iter().map(|query| query.p99_ms))
        .fold(1.0_f64, f64::max);
    let group_count = names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "Query p99 in ms (log scale), over the stored spans",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(230)
        .build_cartesian_2d(
            (min_ms / 2.0..max_ms * 3.0).log_scale(),
            -0.5..group_count - 0.5,
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(names.len().max(1))
        .y_label_formatter(&|y| {
            category(*y)
                .and_then(|row| names.len().checked_sub(row + 1))
                .and_then(|index| names.get(index))
                .cloned()
                .unwrap_or_default()
        })
        .x_label_formatter(&|x| format!("{x}"))
        .draw()?;
    let bar_height = 0.8 / with_queries.len().max(1) as f64;
    for (slot, (color_index, result)) in with_queries.iter().enumerate() {
        let color = backend_color(*color_index);
        let bars = result.queries.iter().filter_map(|query| {
            // The first query is drawn at the top.
            let group = names.iter().position(|name| *name == query.name)?;
            let row = (names.len() - 1 - group) as f64;
            let top = row + 0.4 - (slot + 1) as f64 * bar_height;
            Some(Rectangle::new(
                [
                    (min_ms / 2.0, top),
                    (query.p99_ms.max(min_ms / 2.0), top + bar_height * 0.9),
                ],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(result.backend.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The category index of an axis key point: categories sit at whole coordinates.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn category(coordinate: f64) -> Option<usize> {
    let rounded = coordinate.round();
    ((coordinate - rounded).abs() < 0.01 && rounded >= 0.0).then_some(rounded as usize)
}

fn thousands(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else {
        format!("{value:.0}")
    }
}

fn markdown_tables(results: &[BackendResult]) -> String {
    let mut text = String::new();
    text.push_str(
        "| backend | spans | spans / server CPU-s | spans / database CPU-s | spans / s | RSS bytes / span | disk bytes / span |\n",
    );
    text.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let optional = |value: Option<f64>| value.map(thousands).unwrap_or_else(|| "–".to_owned());
    for result in results {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            result.backend,
            result.spans,
            optional(result.spans_per_server_cpu_second),
            optional(result.spans_per_database_cpu_second),
            optional(result.spans_per_second),
            optional(result.rss_bytes_per_span),
            optional(result.disk_bytes_per_span),
        ));
    }
    let with_queries: Vec<&BackendResult> = results
        .iter()
        .filter(|result| !result.queries.is_empty())
        .collect();
    if with_queries.is_empty() {
        return text;
    }
    text.push_str("\nQuery latency in ms, p50 / p99:\n\n| query |");
    for result in &with_queries {
        text.push_str(&format!(" {} |", result.backend));
    }
    text.push_str("\n|---|");
    for _ in &with_queries {
        text.push_str("---:|");
    }
    text.push('\n');
    for name in query_names(results) {
        text.push_str(&format!("| {name} |"));
        for result in &with_queries {
            match result.queries.iter().find(|query| query.name == name) {
                Some(query) if query.ok == query.reps => {
                    text.push_str(&format!(" {:.2} / {:.2} |", query.p50_ms, query.p99_ms));
                }
                Some(query) => {
                    text.push_str(&format!(
                        " {} of {} failed |",
                        query.reps - query.ok,
                        query.reps
                    ));
                }
                None => text.push_str(" – |"),
            }
        }
        text.push('\n');
    }
    text
}
