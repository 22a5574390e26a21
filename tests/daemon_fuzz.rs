//! Bounded fuzzing of the API's request parser on stable Rust (cargo-fuzz needs nightly): a
//! seeded proptest feeds random methods, paths and bodies (random bytes, and valid bodies with
//! random bytes flipped, cut or inserted) to `parse_request`, which must never panic and must
//! answer every refusal with a 4xx and a one-line message. Runs in the normal test suite (CI)
//! for a fixed number of cases.

use prae::daemon::api::parse_request;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const VALID: &[&str] = &[
    r#"{"package":"nginx","os":"debian12","tier":"low"}"#,
    r#"{"scope":{"kind":"package","package":"nginx"},"spec":{"type":"exact","profile":{"vcpus":3}},"reason":"r"}"#,
    r#"{"scope":{"kind":"domain","name":"d"},"spec":{"type":"bounds","min":{"vcpus":1},"max":{"memory_kib":1048576}},"reason":"r"}"#,
    r#"{"xml":"<domain type='test'><name>x</name></domain>","tier":"high","pinned":{"vcpus":2}}"#,
    r#"{"package":"hello","os":"debian12","pinned":{"memory_kib":2097152,"disk_iotune":{"total_bytes_sec":1}}}"#,
];

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7072_6165),
        ..Config::default()
    }
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "DELETE", "PUT", "PATCH", "", "get", "POST ",
    ])
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "/v1/predict",
            "/v1/overrides",
            "/v1/overrides/1",
            "/v1/domains",
            "/v1/builds",
            "/v1/builds/18446744073709551616",
            "/v1/health",
            "/v1/status",
            "/v1/config",
            "/metrics",
            "/v1/overrides?all=true",
            "/v1/overrides/-1",
            "/v1/builds/",
        ])
        .prop_map(str::to_string),
        "(/v1/[a-z]{0,10}(/[0-9a-z%]{0,6}){0,2}|/[ -~]{0,24})(\\?[ -~]{0,12})?",
    ]
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(VALID.to_vec()),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(v, edits)| {
            let mut b = v.as_bytes().to_vec();
            for (i, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let at = i.index(b.len());
                match op {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ => b.truncate(at),
                }
            }
            b
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        mutated(),
        prop::sample::select(VALID.to_vec()).prop_map(|s| s.as_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn the_parser_never_panics_and_refuses_with_4xx(m in method(), p in path(), b in body()) {
        if let Err(e) = parse_request(m, &p, &b) {
            prop_assert!((400..500).contains(&e.status), "{} for {m} {p}", e.status);
            prop_assert!(!e.message.is_empty() && !e.message.contains('\n'), "{:?}", e.message);
        }
    }

    #[test]
    fn valid_bodies_still_parse_when_reformatted(i in 0..VALID.len(), pretty in any::<bool>()) {
        let v: serde_json::Value = serde_json::from_str(VALID[i]).unwrap();
        let s = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        let path = ["/v1/predict", "/v1/overrides", "/v1/overrides", "/v1/domains", "/v1/builds"][i];
        prop_assert!(parse_request("POST", path, s.as_bytes()).is_ok());
    }
}
