use super::*;

fn features_of(data: &[Measurement], package: &str) -> PackageFeatures {
    data.iter()
        .find(|m| m.package == package)
        .map(|m| m.features.clone())
        .unwrap()
}

#[test]
fn the_embedded_calibration_set_parses() {
    let data = calibration().unwrap();
    assert!(data.len() >= 27, "{} rows", data.len());
    let nginx = data.iter().find(|m| m.package == "nginx").unwrap();
    assert_eq!(nginx.features.installed_size_kib, Some(1331.0));
    assert_eq!(nginx.features.closure_installed_size_kib, Some(9713.0));
    assert_eq!(nginx.features.dependencies, Some(18.0));
    assert_eq!(nginx.features.section.as_deref(), Some("httpd"));
    assert_eq!(nginx.usage.get(Need::PeakMemoryKib), 197232.0);
    assert_eq!(nginx.usage.get(Need::CpuSeconds), 41.69);
    assert_eq!(nginx.usage.get(Need::DownloadBytes), 3040304.0);
}

#[test]
fn bad_csv_is_named_and_failed_rows_are_skipped() {
    let header = "package,section,installed_size_kib,closure_installed_size_kib,dependencies,download_bytes,peak_memory_kib,cpu_seconds,peak_cpu_cores,disk_write_bytes,status,error";
    let csv = format!(
        "{header}\na,web,1,2,3,4,5,6,7,8,ok,\nb,web,1,2,3,4,5,6,7,8,failed,\"boom, twice\"\n"
    );
    let rows = parse_measurements(&csv).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].usage.get(Need::DiskWriteBytes), 8.0);

    let csv = format!("{header}\na,web,1,2,x3,4,5,6,7,8,ok,\n");
    let e = parse_measurements(&csv).unwrap_err().to_string();
    assert!(
        e.contains("line 2") && e.contains("'dependencies'") && e.contains("'x3'"),
        "{e}"
    );
    let e = parse_measurements("package,section\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'installed_size_kib'"), "{e}");
    assert!(parse_measurements("").is_err());
}

#[test]
fn bigger_packages_are_predicted_to_need_more() {
    let data = calibration().unwrap();
    let model = ProfileModel::train(&data).unwrap();
    let small = model.predict(&features_of(&data, "jq")).unwrap();
    let big = model.predict(&features_of(&data, "postgresql")).unwrap();
    assert!(!small.fallback && small.warning.is_none());
    for need in [Need::CpuSeconds, Need::PeakMemoryKib, Need::DiskWriteBytes] {
        let (s, b) = (small.need(need), big.need(need));
        assert!(
            s.median < b.median,
            "{need:?}: jq {s:?} vs postgresql {b:?}"
        );
        assert!(s.p05 < s.median && s.median < s.p95, "{s:?}");
        assert!(matches!(&s.source, Source::Model { features } if features.len() == 4));
    }
    // the known download size is the network need
    let d = big.need(Need::DownloadBytes);
    assert_eq!(d.source, Source::Metadata);
    assert_eq!(d.median, 74823248.0);
}

#[test]
fn missing_metadata_uses_what_is_known_and_none_falls_back_with_a_warning() {
    let data = calibration().unwrap();
    let model = ProfileModel::train(&data).unwrap();
    let partial = model
        .predict(&PackageFeatures {
            installed_size_kib: Some(500.0),
            ..PackageFeatures::default()
        })
        .unwrap();
    assert!(!partial.fallback);
    match &partial.need(Need::DownloadBytes).source {
        Source::Model { features } => assert_eq!(features, &["installed_size_kib"]),
        other => panic!("{other:?}"),
    }

    // a need the metadata does not predict is answered by the population, without the warning
    let full = model.predict(&features_of(&data, "nginx")).unwrap();
    assert!(!full.fallback && full.warning.is_none());

    let unknown = model.predict(&PackageFeatures::default()).unwrap();
    assert!(unknown.fallback);
    assert!(
        unknown
            .warning
            .as_deref()
            .unwrap()
            .contains("no package metadata")
    );
    let mem = unknown.need(Need::PeakMemoryKib);
    assert_eq!(mem.source, Source::Population);
    // the population's own quantiles: within its range, median = the middle package's value
    // (the mean of the middle two for an even count)
    let mut pop: Vec<f64> = data
        .iter()
        .map(|m| m.usage.get(Need::PeakMemoryKib))
        .collect();
    pop.sort_by(f64::total_cmp);
    let n = pop.len();
    let middle = if n.is_multiple_of(2) {
        (pop[n / 2 - 1] + pop[n / 2]) / 2.0
    } else {
        pop[n / 2]
    };
    assert_eq!(mem.median, middle);
    assert!(mem.p05 >= pop[0] && mem.p95 <= pop[pop.len() - 1]);
    assert_eq!(mem.quantile(0.0), pop[0]);
}

#[test]
fn bad_input_is_named() {
    let data = calibration().unwrap();
    let e = ProfileModel::train(&data[..2]).unwrap_err().to_string();
    assert!(e.contains("at least 3") && e.contains("got 2"), "{e}");
    let model = ProfileModel::train(&data).unwrap();
    let e = model
        .predict(&PackageFeatures {
            dependencies: Some(-1.0),
            ..PackageFeatures::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("dependencies") && e.contains("-1"), "{e}");
    let mut bad = data.clone();
    bad[3].features.closure_installed_size_kib = None;
    let e = ProfileModel::train(&bad).unwrap_err().to_string();
    assert!(e.contains(&format!("'{}'", bad[3].package)), "{e}");
}

#[test]
fn normal_quantiles_match_reference_values() {
    // z_0.95 = 1.6448536270, z_0.99 = 2.3263478740, z_0.001 = -3.0902323062 (standard tables)
    assert!((normal_quantile(0.95) - 1.644_853_627).abs() < 1e-8);
    assert!((normal_quantile(0.99) - 2.326_347_874).abs() < 1e-8);
    assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
    assert!(normal_quantile(0.5).abs() < 1e-12);
}

/// The model must beat the population median on held-out packages for the needs metadata
/// explains (CPU time, disk writes, download), and its 90% intervals must cover most of them.
#[test]
fn cross_validation_beats_the_population_median() {
    let data = calibration().unwrap();
    let scores = cross_validate(&data).unwrap();
    for s in &scores {
        assert!(
            s.model.coverage90 >= 0.7,
            "{:?}: coverage {}",
            s.need,
            s.model.coverage90
        );
        if matches!(
            s.need,
            Need::CpuSeconds | Need::DiskWriteBytes | Need::DownloadBytes
        ) {
            assert!(
                s.model.median_abs_log_error < s.baseline.median_abs_log_error,
                "{s:?}"
            );
        }
    }
}
