//! Rewrite throughput over the shipped corpus (`tests/corpus/libvirt-domains/`), side by side
//! with a plain quick-xml read-then-write pass over the same bytes.
//!
//! Group `corpus`, two functions over the same in-memory files, `Throughput::Bytes` of their
//! total size:
//! - `passthrough`: quick-xml `Reader` -> `Writer` of every event into a `Vec` (the floor any
//!   event-based rewrite pays);
//! - `prae_rewrite`: `prae::domain::rewrite` with the corpus acceptance profile (SATA).
//!
//! Files the rewrite refuses are left out of both, so both read the same bytes. The acceptance
//! target is `prae_rewrite` >= half the `passthrough` rate.
//!
//! Run: `cargo bench --bench rewrite` (add `-- --quick` for a rough number).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prae::model::DiskBus;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use quick_xml::writer::Writer;
use std::hint::black_box;
use std::time::Duration;

/// Reads `xml` event by event and writes every event back; returns the output length.
fn passthrough(xml: &str) -> usize {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(e) => writer.write_event(e).expect("writing to a Vec"),
            Err(e) => panic!("passthrough: {e}"),
        }
    }
    writer.into_inner().len()
}

fn corpus(c: &mut Criterion) {
    let alloc = common::allocation(DiskBus::Sata);
    let mut files: Vec<String> = Vec::new();
    let mut refused = 0usize;
    for p in common::xml_files(&common::shipped_dir()) {
        let Ok(xml) = std::fs::read_to_string(&p) else {
            refused += 1;
            continue;
        };
        if prae::domain::rewrite(&xml, &alloc).is_ok() {
            files.push(xml);
        } else {
            refused += 1;
        }
    }
    let bytes: usize = files.iter().map(String::len).sum();
    // Both passes must succeed on every file measured.
    for f in &files {
        passthrough(f);
    }
    println!(
        "corpus: {} files, {bytes} bytes of tests/corpus/libvirt-domains ({refused} refused by \
         the rewrite, excluded from both)",
        files.len()
    );

    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("passthrough", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|f| passthrough(black_box(f)))
                .sum::<usize>()
        })
    });
    g.bench_function("prae_rewrite", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|f| {
                    prae::domain::rewrite(black_box(f), &alloc)
                        .map(|r| r.xml.len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, corpus);
criterion_main!(benches);
