//! Trace replay report (`cargo bench --bench replay`; harness = false).
//!
//! On `calibration/traces/` (Bitbrains Rnd: CPU MHz and memory KB of 20 VMs; NAB: the 10
//! `*cpu_utilization*` series, CPU % — NAB has no memory series), decision windows of 12 samples
//! (hourly) and 1 (every 5 minutes), warm-up 288, it replays prae (each tier), the static per-tier
//! size, VPA's defaults, VPA's curve (margin 0..100% x percentile P90..P99) and the
//! perfect-foresight curve (each window allocated its own quantile, 0.5..1), and checks at the
//! violation rate prae reaches in each tier that
//! - prae's relative slack is below VPA's curve there, and
//! - for memory, prae closes at least half of the gap between VPA's curve and the bound.
//!
//! Writes `benches/results/replay.md` (tables, verdicts, timings, machine load) and
//! `benches/results/replay.svg` (the curves). Options: `--no-write` (print only).

use prae::engine::tiers::TierConfig;
use prae::model::Tier;
use prae::replay::{
    Point, Policy, Resource, Schedule, Score, Series, VpaParams, curve_at, frontier, replay_all,
};
use prae::store::TraceFormat;
use prae::store::replay::read_trace_series;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

const WARMUP: usize = 288;
const WINDOWS: [usize; 2] = [12, 1];
const VPA_MARGINS: [f64; 12] = [
    0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0,
];
const VPA_PERCENTILES: [f64; 4] = [0.90, 0.95, 0.97, 0.99];
const BOUND_QUANTILES: [f64; 9] = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0];

struct Case {
    dataset: &'static str,
    resource: Resource,
    series: Vec<Series>,
}

struct TierRow {
    tier: Tier,
    prae: Score,
    prae_secs: f64,
    stat: Score,
    vpa_at: Option<f64>,
    bound_at: f64,
    pass: bool,
    gap_closed: Option<f64>,
}

struct Outcome {
    case: String,
    window: usize,
    decisions: usize,
    rows: Vec<TierRow>,
    vpa_default: Score,
    vpa_points: Vec<Point>,
    bound_points: Vec<Point>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn load(dir: &str, format: TraceFormat, resource: Resource, keep: fn(&str) -> bool) -> Vec<Series> {
    let d = root().join("calibration/traces").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| keep(&p.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| read_trace_series(format, p, resource).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn point(s: &Score) -> Point {
    Point {
        violation: s.violation_rate(),
        slack: s.relative_slack(),
    }
}

fn run_case(c: &Case, window: usize, cfg: &TierConfig) -> Outcome {
    let sched = Schedule::new(window, WARMUP).expect("valid schedule");
    let score = |p: &Policy| replay_all(&c.series, p, sched).expect("replay").0;
    let mut vpa_points = Vec::new();
    for &percentile in &VPA_PERCENTILES {
        for &margin in &VPA_MARGINS {
            let p = VpaParams {
                percentile,
                margin,
                ..VpaParams::defaults()
            };
            vpa_points.push(point(&score(&Policy::Vpa(p))));
        }
    }
    let vpa_default = score(&Policy::Vpa(VpaParams::defaults()));
    let bound_points: Vec<Point> = BOUND_QUANTILES
        .iter()
        .map(|&q| point(&score(&Policy::Bound { quantile: q })))
        .collect();
    let (vf, bf) = (frontier(&vpa_points), frontier(&bound_points));
    let decisions: usize = c
        .series
        .iter()
        .map(|s| s.values.len().saturating_sub(WARMUP).div_ceil(window))
        .sum();
    let rows = Tier::ALL
        .iter()
        .map(|&tier| {
            let spec = cfg.spec(tier);
            let t0 = Instant::now();
            let prae = score(&Policy::Prae {
                spec,
                settings: cfg.evidence,
            });
            let prae_secs = t0.elapsed().as_secs_f64();
            let stat = score(&Policy::Static { spec });
            let v = prae.violation_rate();
            let vpa_at = curve_at(&vf, v);
            let bound_at = curve_at(&bf, v).unwrap_or(0.0);
            let s = prae.relative_slack();
            let gap_closed = vpa_at
                .filter(|va| *va > bound_at)
                .map(|va| (va - s) / (va - bound_at));
            let below = vpa_at.is_none_or(|va| s < va);
            let pass = match c.resource {
                Resource::Cpu => below,
                Resource::Memory => below && gap_closed.is_none_or(|g| g >= 0.5),
            };
            TierRow {
                tier,
                prae,
                prae_secs,
                stat,
                vpa_at,
                bound_at,
                pass,
                gap_closed,
            }
        })
        .collect();
    Outcome {
        case: format!("{} {}", c.dataset, c.resource),
        window,
        decisions,
        rows,
        vpa_default,
        vpa_points,
        bound_points,
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn table(o: &Outcome) -> String {
    let mut s = String::new();
    let vd = &o.vpa_default;
    let _ = writeln!(
        s,
        "\n### {}, window {} ({} decisions per tier)\n",
        o.case, o.window, o.decisions
    );
    let _ = writeln!(
        s,
        "VPA defaults (P90 + 15%): slack {}, violations {}.\n",
        pct(vd.relative_slack()),
        pct(vd.violation_rate())
    );
    let _ = writeln!(
        s,
        "| tier | prae slack | prae violations | static slack | static violations | VPA curve at prae's violations | bound there | gap closed | verdict | prae time |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &o.rows {
        let verdict = if r.pass { "pass" } else { "MISS" };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            r.tier,
            pct(r.prae.relative_slack()),
            pct(r.prae.violation_rate()),
            pct(r.stat.relative_slack()),
            pct(r.stat.violation_rate()),
            r.vpa_at
                .map(pct)
                .unwrap_or_else(|| "out of VPA's reach".into()),
            pct(r.bound_at),
            r.gap_closed
                .map(|g| format!("{:.0}%", 100.0 * g))
                .unwrap_or_else(|| "-".into()),
            verdict,
            r.prae_secs
        );
    }
    s
}

fn plot(outcomes: &[Outcome], path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let cols = 2;
    let rows = outcomes.len().div_ceil(cols);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 420 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let areas = root.split_evenly((rows, cols));
        for (o, area) in outcomes.iter().zip(areas) {
            let xmax = o
                .rows
                .iter()
                .map(|r| r.prae.violation_rate())
                .chain(o.vpa_points.iter().map(|p| p.violation))
                .fold(0.02f64, f64::max)
                .min(0.35)
                * 1.1;
            let mut chart = ChartBuilder::on(&area)
                .caption(
                    format!("{}, window {}", o.case, o.window),
                    ("sans-serif", 18),
                )
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..xmax * 100.0, 0f64..100f64)
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("violation rate (% of steps)")
                .y_desc("relative slack (%)")
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| err(&e))?;
            let line = |pts: &[Point]| -> Vec<(f64, f64)> {
                frontier(pts)
                    .iter()
                    .filter(|p| p.violation <= xmax)
                    .map(|p| (p.violation * 100.0, p.slack * 100.0))
                    .collect()
            };
            chart
                .draw_series(LineSeries::new(line(&o.vpa_points), RED.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label("VPA curve (margin 0-100%, P90-P99)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
            chart
                .draw_series(
                    o.vpa_points
                        .iter()
                        .filter(|p| p.violation <= xmax)
                        .map(|p| {
                            Circle::new((p.violation * 100.0, p.slack * 100.0), 2, RED.mix(0.4))
                        }),
                )
                .map_err(|e| err(&e))?;
            chart
                .draw_series(LineSeries::new(
                    line(&o.bound_points),
                    BLACK.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label("perfect foresight")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
            let vd = point(&o.vpa_default);
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (vd.violation * 100.0, vd.slack * 100.0),
                    7,
                    RED.filled(),
                )))
                .map_err(|e| err(&e))?
                .label("VPA defaults")
                .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, RED.filled()));
            chart
                .draw_series(o.rows.iter().map(|r| {
                    Circle::new(
                        (
                            r.prae.violation_rate() * 100.0,
                            r.prae.relative_slack() * 100.0,
                        ),
                        6,
                        BLUE.filled(),
                    )
                }))
                .map_err(|e| err(&e))?
                .label("prae (low, medium, high)")
                .legend(|(x, y)| Circle::new((x + 8, y), 5, BLUE.filled()));
            chart
                .draw_series(
                    o.rows
                        .iter()
                        .map(|r| point(&r.stat))
                        .filter(|p| p.violation <= xmax)
                        .map(|p| {
                            Rectangle::new(
                                [
                                    (p.violation * 100.0 - 0.15 * xmax, p.slack * 100.0 - 1.0),
                                    (p.violation * 100.0 + 0.15 * xmax, p.slack * 100.0 + 1.0),
                                ],
                                GREEN.filled(),
                            )
                        }),
                )
                .map_err(|e| err(&e))?
                .label("static (low, medium, high)")
                .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], GREEN.filled()));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::write(path, svg).map_err(|e| err(&e))
}

fn main() {
    let write = !std::env::args().any(|a| a == "--no-write");
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let t0 = Instant::now();
    let cfg = TierConfig::default();
    let cases = [
        Case {
            dataset: "Bitbrains",
            resource: Resource::Cpu,
            series: load(
                "bitbrains-rnd",
                TraceFormat::Bitbrains,
                Resource::Cpu,
                |n| n.ends_with(".csv.gz"),
            ),
        },
        Case {
            dataset: "Bitbrains",
            resource: Resource::Memory,
            series: load(
                "bitbrains-rnd",
                TraceFormat::Bitbrains,
                Resource::Memory,
                |n| n.ends_with(".csv.gz"),
            ),
        },
        Case {
            dataset: "NAB",
            resource: Resource::Cpu,
            series: load("nab-aws", TraceFormat::Nab, Resource::Cpu, |n| {
                n.contains("cpu_utilization")
            }),
        },
    ];
    let mut outcomes = Vec::new();
    for c in &cases {
        for w in WINDOWS {
            let o = run_case(c, w, &cfg);
            eprint!("{}", table(&o));
            outcomes.push(o);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Trace replay: prae against static sizing, Kubernetes VPA and perfect foresight\n"
    );
    let _ = writeln!(
        md,
        "Written by `cargo bench --bench replay` (benches/replay.rs); do not edit by hand.\n"
    );
    let _ = writeln!(
        md,
        "Traces: `calibration/traces/bitbrains-rnd` (20 VMs, CPU usage MHz and memory usage KB, \
         one month of 5-minute samples) and `calibration/traces/nab-aws` (the 10 \
         `*cpu_utilization*` series, CPU %; NAB holds no memory series, so there is no NAB memory \
         row). Warm-up {WARMUP} samples (one day), then one decision every `window` samples from \
         the samples before it, held for the window. Scores pool every step after the warm-up of \
         every series: relative slack = sum of max(allocation - usage, 0) / sum of allocation; \
         violations = share of steps with usage above the allocation.\n"
    );
    let _ = writeln!(
        md,
        "- **prae**: `engine::evidence` with the default tiers (low P90 + 0%, medium P95 + 5%, \
           high P99 + 10%; lookback {} samples).\n\
         - **static**: the tier's quantile of the warm-up day plus its headroom, never changed.\n\
         - **VPA**: the recommender's defaults (P90 of a 24 h half-life decaying histogram + 15%, \
           memory from daily peaks over 8 days, minimum 25 millicores / 250 MiB), see \
           `src/replay/vpa.rs`. Its curve: margins {VPA_MARGINS:?} x percentiles \
           {VPA_PERCENTILES:?}, lower envelope, linear between points.\n\
         - **bound**: each window allocated its own quantile ({BOUND_QUANTILES:?}) of its actual \
           usage; at window 1 it is the usage itself (no slack, no violations).\n\
         - **verdict**: at prae's violation rate, prae's slack must be below VPA's curve; for \
           memory it must also close at least half of the gap between VPA's curve and the bound \
           (`gap closed` = (VPA - prae) / (VPA - bound)). \"out of VPA's reach\": no VPA \
           setting in the grid gets down to prae's violation rate.\n",
        cfg.evidence.lookback
    );
    let _ = writeln!(md, "![curves](replay.svg)\n");
    let _ = writeln!(md, "## Results");
    for o in &outcomes {
        md.push_str(&table(o));
    }
    let passed = outcomes
        .iter()
        .flat_map(|o| &o.rows)
        .filter(|r| r.pass)
        .count();
    let total: usize = outcomes.iter().map(|o| o.rows.len()).sum();
    let _ = writeln!(md, "\n**{passed} of {total} tier checks pass.**\n");
    let _ = writeln!(md, "## How it was run\n");
    let _ = writeln!(md, "```\ncargo bench --bench replay\n```\n");
    let _ = writeln!(
        md,
        "Whole run {secs:.0} s (all allocators, both windows, 2 rayon threads over series). \
         `prae time` is the replay of all series of the row's case by prae alone. Load average \
         (/proc/loadavg) before: `{}`, after: `{}`; the machine was shared, so times are \
         indicative only.",
        load_before.trim(),
        load_after.trim()
    );
    println!("{md}");
    if write {
        let dir = root().join("benches/results");
        std::fs::write(dir.join("replay.md"), &md).expect("write replay.md");
        if let Err(e) = plot(&outcomes, &dir.join("replay.svg")) {
            eprintln!("plot: {e}");
        }
    }
}
