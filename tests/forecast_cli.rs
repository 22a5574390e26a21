//! `prae forecast`: the binary end to end, one test per bad input.

#[path = "common/bin.rs"]
mod bin;

use bin::{fails, prae, write};
use std::path::{Path, PathBuf};

fn wwwusage() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/forecast/wwwusage.txt")
}

fn numbers(n: usize) -> String {
    (0..n)
        .map(|i| format!("{}\n", 10.0 + ((i * 7) % 5) as f64))
        .collect()
}

#[test]
fn wwwusage_json() {
    let w = wwwusage();
    let o = prae(&[
        "forecast",
        "--input",
        w.to_str().unwrap(),
        "--horizon",
        "10",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["model"];
    assert_eq!(m["order"], serde_json::json!([1, 1, 1]));
    assert_eq!(m["seasonal_order"], serde_json::json!([0, 0, 0, 1]));
    assert_eq!(m["constant"], false);
    assert_eq!(m["drift"], false);
    let ar1 = m["coefficients"]["ar1"].as_f64().unwrap();
    assert!((ar1 - 0.6504).abs() < 0.005, "ar1 {ar1}");
    let ma1 = m["coefficients"]["ma1"].as_f64().unwrap();
    assert!((ma1 - 0.5256).abs() < 0.005, "ma1 {ma1}");
    assert!((m["sigma2"].as_f64().unwrap() - 9.995).abs() < 0.05);
    assert!((m["loglik"].as_f64().unwrap() + 254.15).abs() < 0.01);
    assert!((m["aicc"].as_f64().unwrap() - 514.55).abs() < 0.01);
    let mean = v["mean"].as_array().unwrap();
    assert_eq!(mean.len(), 10);
    let iv = v["intervals"].as_array().unwrap();
    assert_eq!(iv.len(), 2);
    assert_eq!(iv[0]["level"], 80.0);
    assert_eq!(iv[1]["level"], 95.0);
    for (k, m) in mean.iter().enumerate() {
        let m = m.as_f64().unwrap();
        let (l80, u80) = (
            iv[0]["lower"][k].as_f64().unwrap(),
            iv[0]["upper"][k].as_f64().unwrap(),
        );
        let (l95, u95) = (
            iv[1]["lower"][k].as_f64().unwrap(),
            iv[1]["upper"][k].as_f64().unwrap(),
        );
        assert!(l95 < l80 && l80 < m && m < u80 && u80 < u95);
    }
}

#[test]
fn table_csv_column_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let w = std::fs::read_to_string(wwwusage()).unwrap();
    let mut csv = String::from("minute,users,host\n");
    for (i, v) in w.lines().enumerate() {
        // a gap at line 12 (empty cell) and at line 30 (NA)
        let v = match i {
            10 => "",
            28 => "NA",
            _ => v,
        };
        csv += &format!("{},{v},web\n", i + 1);
    }
    let f = write(&dir, "w.csv", &csv);
    let svg = dir.path().join("w.svg");
    let o = prae(&[
        "forecast",
        "--input",
        &f,
        "--horizon",
        "5",
        "--level",
        "90",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ARIMA("), "{out}");
    let head = lines.iter().position(|l| l.contains("lo90")).expect(&out);
    assert_eq!(lines.len() - head - 1, 5, "{out}");
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.contains("<polygon") && s.contains("<polyline"));
    assert!(s.contains("forecast") && s.contains("90% interval"));
    // the only numeric column was chosen: the same as naming it
    let named = prae(&[
        "forecast",
        "--input",
        &f,
        "--column",
        "users",
        "--horizon",
        "5",
        "--level",
        "90",
    ]);
    assert_eq!(String::from_utf8(named.stdout).unwrap(), out);
}

#[test]
fn seasonal_airpassengers() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/forecast/airpassengers.txt");
    let o = prae(&[
        "forecast",
        "-i",
        p.to_str().unwrap(),
        "--horizon",
        "24",
        "--season",
        "12",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model"]["seasonal_order"][3], 12);
    assert_eq!(v["mean"].as_array().unwrap().len(), 24);
}

#[test]
fn missing_file() {
    let e = fails(&[
        "forecast",
        "--input",
        "/nonexistent/x.txt",
        "--horizon",
        "3",
    ]);
    assert!(e.contains("/nonexistent/x.txt"), "{e}");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "e.txt", "\n\n");
    let e = fails(&["forecast", "--input", &f, "--horizon", "3"]);
    assert!(e.contains("empty"), "{e}");
    let f = write(&dir, "h.csv", "time,value\n");
    let e = fails(&["forecast", "--input", &f, "--horizon", "3"]);
    assert!(e.contains("no values"), "{e}");
}

#[test]
fn too_short() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "s.txt", "1\n2\n3\n");
    let e = fails(&["forecast", "--input", &f, "--horizon", "3"]);
    assert!(e.contains("cannot fit"), "{e}");
}

#[test]
fn non_numeric_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "t.txt", &(numbers(20) + "abc\n" + &numbers(5)));
    let e = fails(&["forecast", "--input", &f, "--horizon", "3"]);
    assert!(
        e.contains("line 21") && e.contains("'abc' is not a number"),
        "{e}"
    );
}

#[test]
fn nan_and_inf_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "n.txt", &(numbers(7) + "NaN\n" + &numbers(20)));
    let e = fails(&["forecast", "--input", &f, "--horizon", "3"]);
    assert!(
        e.contains("line 8") && e.contains("not a finite number"),
        "{e}"
    );
    let csv = "t,v\n1,2\n2,3\n3,-inf\n4,5\n";
    let f = write(&dir, "i.csv", csv);
    let e = fails(&["forecast", "--input", &f, "--column", "v", "--horizon", "3"]);
    assert!(e.contains("line 4, column 'v'"), "{e}");
}

#[test]
fn unknown_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "c.csv", "t,cpu\n1,2\n2,3\n");
    let e = fails(&[
        "forecast",
        "--input",
        &f,
        "--column",
        "mem",
        "--horizon",
        "3",
    ]);
    assert!(
        e.contains("unknown column 'mem'") && e.contains("t, cpu"),
        "{e}"
    );
}

#[test]
fn horizon_zero() {
    let w = wwwusage();
    let e = fails(&["forecast", "--input", w.to_str().unwrap(), "--horizon", "0"]);
    assert!(e.contains("--horizon"), "{e}");
}

#[test]
fn level_outside_0_100() {
    let w = wwwusage();
    for bad in ["100", "0", "80,150", "-5", "x"] {
        let e = fails(&[
            "forecast",
            "--input",
            w.to_str().unwrap(),
            "--horizon",
            "3",
            "--level",
            bad,
        ]);
        assert!(e.contains("--level"), "{bad}: {e}");
    }
}

#[test]
fn bad_season() {
    let w = wwwusage();
    let w = w.to_str().unwrap();
    let e = fails(&["forecast", "--input", w, "--horizon", "3", "--season", "0"]);
    assert!(e.contains("--season"), "{e}");
    // 100 values are fewer than two cycles of 60
    let e = fails(&["forecast", "--input", w, "--horizon", "3", "--season", "60"]);
    assert!(e.contains("two cycles"), "{e}");
}
