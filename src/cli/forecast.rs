//! `prae forecast`: fit an automatic ARIMA to a series in a file and forecast it.
//!
//! The forecaster ([`crate::forecast`]) is pure; reading and checking the file happens here.
//!
//! # Input
//! Either one number per line (no header), or CSV with a header line:
//! - The file is CSV when its first line is not a single number (or missing value). Fields are
//!   separated by commas; a field may be wrapped in double quotes (`""` inside is a quote).
//! - `--column NAME` picks a column by its header name. Without it, the column is the only
//!   numeric one (every cell a number or missing); with several numeric columns, the last of
//!   them; with none, the last column (whose first bad cell is then reported).
//! - An empty cell (or empty line) or `NA` is a missing value; trailing empty lines are ignored.
//! - `NaN`, infinities and text that is not a number are refused, naming the line.

use crate::forecast::{AutoArima, FittedArima, Forecast, Forecaster, ModelSummary};
use crate::{Error, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

/// Output format of `prae forecast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForecastFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Series file: one number per line, or CSV with a header (`-` for standard input).
    #[arg(long, short = 'i')]
    pub input: String,
    /// CSV column to forecast (default: the only numeric column, else the last numeric one).
    #[arg(long)]
    pub column: Option<String>,
    /// Steps to forecast (at least 1).
    #[arg(long = "horizon", short = 'H')]
    pub horizon: usize,
    /// Prediction interval levels in percent, comma-separated, each strictly in (0, 100).
    #[arg(long, default_value = "80,95", allow_hyphen_values = true)]
    pub level: String,
    /// Seasonal period in samples (1 = none; above 24 the cycle is modelled by Fourier terms).
    #[arg(long)]
    pub season: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ForecastFormat::Table)]
    pub format: ForecastFormat,
    /// Also write an SVG plot of history, forecast and intervals to this file.
    #[arg(long)]
    pub plot: Option<String>,
}

/// A series read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The CSV column used (`None` for a plain list).
    pub column: Option<String>,
    /// Values in file order; `None` is missing.
    pub values: Vec<Option<f64>>,
}

/// What `--format json` prints.
#[derive(Debug, Serialize)]
struct Output<'a> {
    input: &'a str,
    column: Option<&'a str>,
    n: usize,
    missing: usize,
    horizon: usize,
    levels: &'a [f64],
    model: ModelSummary,
    mean: &'a [f64],
    se: &'a [f64],
    intervals: &'a [crate::forecast::Interval],
}

/// Runs `prae forecast`.
pub fn run(a: &ForecastArgs) -> Result<()> {
    // Flags first, so a bad flag never depends on the file.
    if a.horizon == 0 {
        return Err(Error::Invalid("--horizon must be at least 1".into()));
    }
    let levels = parse_levels(&a.level)?;
    if a.season == Some(0) {
        return Err(Error::Invalid(
            "--season must be at least 1 (1 = no seasonal period)".into(),
        ));
    }
    let text = super::read_input(&a.input)?;
    let series = parse_series(&text, a.column.as_deref()).map_err(|e| prefix(&a.input, e))?;
    let mut model = AutoArima::new();
    if let Some(m) = a.season.filter(|&m| m > 1) {
        if 2 * m > series.values.len() {
            return Err(Error::Invalid(format!(
                "--season {m} needs at least two cycles ({} values), {} has {}",
                2 * m,
                a.input,
                series.values.len()
            )));
        }
        model = model.period(m);
    }
    let fit = model
        .fit(&series.values)
        .map_err(|e| Error::Invalid(format!("{}: cannot fit a model: {e}", a.input)))?;
    let fc = fit.forecast(a.horizon, &levels)?;
    if let Some(path) = &a.plot {
        plot(path, &series.values, &fit, &fc)?;
    }
    match a.format {
        ForecastFormat::Json => {
            let out = Output {
                input: &a.input,
                column: series.column.as_deref(),
                n: series.values.len(),
                missing: series.values.iter().filter(|v| v.is_none()).count(),
                horizon: a.horizon,
                levels: &levels,
                model: fit.summary(),
                mean: &fc.mean,
                se: &fc.se,
                intervals: &fc.intervals,
            };
            let s = serde_json::to_string_pretty(&out)
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
            println!("{s}");
        }
        ForecastFormat::Table => print!("{}", table(&fit, &fc, series.values.len())),
    }
    Ok(())
}

fn prefix(path: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{path}: {m}")),
        other => other,
    }
}

/// Parses `80,95` into levels, each strictly between 0 and 100.
pub fn parse_levels(s: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        let v: f64 = p.parse().map_err(|_| {
            Error::Invalid(format!(
                "--level: '{p}' is not a number (e.g. --level 80,95)"
            ))
        })?;
        if !(v.is_finite() && v > 0.0 && v < 100.0) {
            return Err(Error::Invalid(format!(
                "--level: {p} is not a percentage strictly between 0 and 100"
            )));
        }
        out.push(v);
    }
    Ok(out)
}

/// Splits one CSV line into fields (commas; double quotes around a field, `""` inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

/// A cell: `Ok(None)` for missing, `Ok(Some(v))` for a finite number.
fn parse_cell(cell: &str) -> std::result::Result<Option<f64>, String> {
    let c = cell.trim();
    if c.is_empty() || c == "NA" {
        return Ok(None);
    }
    match c.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Err(format!(
            "'{c}' is not a finite number (leave the cell empty or write NA for a missing value)"
        )),
        Err(_) => Err(format!("'{c}' is not a number")),
    }
}

/// Reads a series from file text (see the module docs for the rules).
pub fn parse_series(text: &str, column: Option<&str>) -> Result<Series> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .collect();
    while lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.pop();
    }
    let Some(&(_, first)) = lines.first() else {
        return Err(Error::Invalid("empty file (no values)".into()));
    };
    let first_fields = split_csv(first);
    let plain = first_fields.len() == 1 && parse_cell(&first_fields[0]).is_ok();
    if plain {
        if let Some(c) = column {
            return Err(Error::Invalid(format!(
                "unknown column '{c}': the file has no header (one number per line)"
            )));
        }
        let mut values = Vec::with_capacity(lines.len());
        for (no, line) in &lines {
            let v = parse_cell(line).map_err(|m| Error::Invalid(format!("line {no}: {m}")))?;
            values.push(v);
        }
        return Ok(Series {
            column: None,
            values,
        });
    }
    if first_fields.iter().all(|f| parse_cell(f).is_ok()) {
        return Err(Error::Invalid(
            "line 1: several numbers but no header; CSV needs a header line naming the columns"
                .into(),
        ));
    }
    let header = first_fields;
    let rows: Vec<(usize, Vec<String>)> = lines[1..]
        .iter()
        .map(|(no, l)| (*no, split_csv(l)))
        .collect();
    if rows.is_empty() {
        return Err(Error::Invalid("no values after the header line".into()));
    }
    let idx = match column {
        Some(c) => header.iter().position(|h| h == c).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown column '{c}' (columns: {})",
                header.join(", ")
            ))
        })?,
        None => {
            let numeric: Vec<usize> = (0..header.len())
                .filter(|&j| {
                    rows.iter().all(|(_, r)| {
                        r.len() <= 1 && r.first().is_none_or(|c| c.is_empty())
                            || r.get(j).is_some_and(|c| parse_cell(c).is_ok())
                    })
                })
                .collect();
            numeric.last().copied().unwrap_or(header.len() - 1)
        }
    };
    let mut values = Vec::with_capacity(rows.len());
    for (no, r) in &rows {
        if r.len() == 1 && r[0].is_empty() {
            values.push(None); // an empty line
            continue;
        }
        let cell = r.get(idx).ok_or_else(|| {
            Error::Invalid(format!(
                "line {no}: {} field(s), column '{}' is field {}",
                r.len(),
                header[idx],
                idx + 1
            ))
        })?;
        let v = parse_cell(cell)
            .map_err(|m| Error::Invalid(format!("line {no}, column '{}': {m}", header[idx])))?;
        values.push(v);
    }
    Ok(Series {
        column: Some(header[idx].clone()),
        values,
    })
}

fn num(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e7) {
        format!("{v:.4}")
    } else {
        format!("{v:.4e}")
    }
}

/// The model line(s) and one row per step: mean and the bounds of each interval.
pub fn table(fit: &FittedArima, fc: &Forecast, n: usize) -> String {
    let mut out = format!(
        "{}  sigma2 {}  loglik {:.2}  AICc {:.2}\n",
        fit.label(),
        num(fit.sigma2()),
        fit.loglik(),
        fit.aicc()
    );
    if !fit.coefficients().is_empty() {
        let c: Vec<String> = fit
            .coefficients()
            .iter()
            .map(|(k, v)| format!("{k} {}", num(*v)))
            .collect();
        out += &format!("coefficients: {}\n", c.join(", "));
    }
    let mut head = vec!["step".to_string(), "t".to_string(), "mean".to_string()];
    for i in &fc.intervals {
        head.push(format!("lo{}", i.level));
        head.push(format!("hi{}", i.level));
    }
    let mut rows = vec![head];
    for (s, m) in fc.mean.iter().enumerate() {
        let mut r = vec![(s + 1).to_string(), (n + s + 1).to_string(), num(*m)];
        for i in &fc.intervals {
            r.push(num(i.lower[s]));
            r.push(num(i.upper[s]));
        }
        rows.push(r);
    }
    let w: Vec<usize> = (0..rows[0].len())
        .map(|j| rows.iter().map(|r| r[j].len()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&w).map(|(c, w)| format!("{c:>w$}")).collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// Writes an SVG: history (gaps left open), forecast mean and shaded intervals (widest palest).
pub fn plot(path: &str, history: &[Option<f64>], fit: &FittedArima, fc: &Forecast) -> Result<()> {
    use plotters::prelude::*;
    let n = history.len();
    let h = fc.mean.len();
    let err = |e: &dyn std::fmt::Display| Error::Invalid(format!("{path}: cannot plot: {e}"));
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in history.iter().flatten().chain(&fc.mean).chain(
        fc.intervals
            .iter()
            .flat_map(|i| i.lower.iter().chain(&i.upper)),
    ) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    let (lo, hi) = (lo - pad, hi + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(fit.label(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(1f64..(n + h) as f64, lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("t")
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        let t0 = n as f64 + 1.0;
        let mut ivs: Vec<_> = fc.intervals.iter().collect();
        ivs.sort_by(|a, b| b.level.total_cmp(&a.level));
        for (k, iv) in ivs.iter().enumerate() {
            let alpha = 0.15 + 0.15 * k as f64;
            let mut poly: Vec<(f64, f64)> = (0..h).map(|s| (t0 + s as f64, iv.upper[s])).collect();
            poly.extend((0..h).rev().map(|s| (t0 + s as f64, iv.lower[s])));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    BLUE.mix(alpha).filled(),
                )))
                .map_err(|e| err(&e))?
                .label(format!("{}% interval", iv.level))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], BLUE.mix(alpha).filled())
                });
        }
        // history as runs of consecutive known values
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in history.iter().enumerate() {
            match v {
                Some(v) => runs.last_mut().unwrap().push(((i + 1) as f64, *v)),
                None if !runs.last().unwrap().is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        for (k, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
            let s = chart
                .draw_series(LineSeries::new(run, BLACK.stroke_width(1)))
                .map_err(|e| err(&e))?;
            if k == 0 {
                s.label("history")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
            }
        }
        let mut mean: Vec<(f64, f64)> = Vec::with_capacity(h + 1);
        if let Some(last) = history.last().copied().flatten() {
            mean.push((n as f64, last));
        }
        mean.extend(fc.mean.iter().enumerate().map(|(s, m)| (t0 + s as f64, *m)));
        chart
            .draw_series(LineSeries::new(mean, BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("forecast")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::write(path, svg).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_list_with_gaps() {
        let s = parse_series("1\n2\n\nNA\n3\n\n", None).unwrap();
        assert_eq!(s.column, None);
        assert_eq!(s.values, vec![Some(1.0), Some(2.0), None, None, Some(3.0)]);
    }

    #[test]
    fn csv_default_and_named_columns() {
        let t = "time,\"cpu\",host\n1,0.5,a\n2,,b\n3,NA,c\n4,0.7,d\n";
        let s = parse_series(t, None).unwrap();
        assert_eq!(s.column.as_deref(), Some("cpu"));
        assert_eq!(s.values, vec![Some(0.5), None, None, Some(0.7)]);
        let s = parse_series(t, Some("time")).unwrap();
        assert_eq!(s.values[3], Some(4.0));
        let e = parse_series(t, Some("mem")).unwrap_err().to_string();
        assert!(e.contains("unknown column 'mem'"), "{e}");
    }

    #[test]
    fn bad_cells_name_the_line() {
        let e = parse_series("1\n2\nNaN\n", None).unwrap_err().to_string();
        assert!(e.starts_with("line 3:"), "{e}");
        // Column b holds a non-finite value, so it must be named to be read (column a is the only
        // all-numeric one and would be picked by default).
        let e = parse_series("a,b\n1,2\n3,inf\n", Some("b"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 3, column 'b'"), "{e}");
        let e = parse_series("1\nx\n", None).unwrap_err().to_string();
        assert!(e.contains("line 2: 'x' is not a number"), "{e}");
        assert!(parse_series("\n\n", None).is_err());
        assert!(parse_levels("80,100").is_err());
        assert!(parse_levels("0").is_err());
        assert_eq!(parse_levels("80, 95").unwrap(), vec![80.0, 95.0]);
    }
}
