//! The `prae` and `prae-virsh` binaries, end to end, against libvirt's in-process
//! `test:///default` driver and the system `virsh`.

#[path = "common/bin.rs"]
mod bin;

use bin::{prae, prae_virsh};
use std::path::PathBuf;
use std::process::{Command, Output};

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .args(args)
        .output()
        .expect("run virsh")
}

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A failure: non-zero exit, nothing on stdout, one line on stderr that names `needle`.
fn assert_clean_failure(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout not empty: {}",
        text(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("prae: "), "{err}");
    assert!(err.contains(needle), "'{err}' does not name '{needle}'");
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn rewrite_prints_the_rewritten_domain() {
    let out = prae(&[
        "rewrite",
        &data("example-vm.xml"),
        "--vcpus",
        "4",
        "--memory",
        "3GiB",
        "--disk-bus",
        "virtio",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(xml.contains(">4</vcpu>"), "{xml}");
    assert!(xml.contains("3145728"), "{xml}");
    assert!(
        xml.contains("bus=\"virtio\"") || xml.contains("bus='virtio'"),
        "{xml}"
    );
    assert!(xml.contains(prae::domain::PRAE_NS));
    // The operator's values alone: no bandwidth was asked for, so none is written.
    assert!(!xml.contains("<bandwidth"), "{xml}");
    // The notes on stderr name what changed.
    assert!(text(&out.stderr).contains("4"), "{}", text(&out.stderr));
}

#[test]
fn define_on_the_embedded_default_reports_what_libvirt_holds() {
    let out = prae(&["define", &data("example-vm.xml"), "--tier", "high"]);
    let so = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        so.starts_with("Domain 'web01' defined with 4 vCPU(s), 4GiB"),
        "{so}"
    );
}

#[test]
fn revert_of_a_file_restores_the_original_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = prae(&["rewrite", &data("example-vm.xml"), "--tier", "high"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rewritten = write_tmp(&dir, "rewritten.xml", &text(&out.stdout));
    let out = prae(&["revert", "--file", &rewritten]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reverted = prae::domain::parse(&text(&out.stdout)).unwrap();
    let original =
        prae::domain::parse(&std::fs::read_to_string(data("example-vm.xml")).unwrap()).unwrap();
    assert_eq!(reverted.vcpus, original.vcpus);
    assert_eq!(reverted.memory_kib, original.memory_kib);
    assert_eq!(reverted.disks, original.disks);
    assert_eq!(reverted.interfaces, original.interfaces);
    assert!(!reverted.rewritten_by_prae);
}

#[test]
fn predict_answers_per_tier_in_table_and_json() {
    let out = prae(&[
        "predict",
        "--package",
        "nginx",
        "--os",
        "debian12",
        "--tier",
        "low",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("vcpus") && t.contains("1GiB") && t.contains("tier low"),
        "{t}"
    );

    let out = prae(&[
        "predict",
        "--package",
        "nginx",
        "--tier",
        "high",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"]["vcpus"], 4);
    assert_eq!(v["profile"]["memory_kib"], 4 * 1024 * 1024);
    assert_eq!(v["provenance"]["tier"], "high");
}

#[test]
fn bad_inputs_fail_in_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let example = data("example-vm.xml");
    let missing = dir
        .path()
        .join("missing.xml")
        .to_string_lossy()
        .into_owned();
    assert_clean_failure(&prae(&["rewrite", &missing]), "missing.xml");
    let not_xml = write_tmp(&dir, "notxml.xml", "this is <not xml");
    assert_clean_failure(&prae(&["define", &not_xml]), "notxml.xml");
    let not_domain = write_tmp(&dir, "network.xml", "<network><name>n</name></network>");
    assert_clean_failure(&prae(&["define", &not_domain]), "not a libvirt domain");
    assert_clean_failure(&prae(&["define", &example, "--vcpus", "0"]), "vcpus");
    assert_clean_failure(
        &prae(&["define", &example, "--memory", "1MiB"]),
        "below the floor",
    );
    assert_clean_failure(
        &prae(&["predict", "--package", "nginx;reboot"]),
        "nginx;reboot",
    );
    assert_clean_failure(
        &prae(&["define", &example, "--uri", "nosuchdriver:///x"]),
        "nosuchdriver:///x",
    );
    // clap's own errors are not one line, but they fail and print nothing on stdout.
    for args in [
        vec!["define", example.as_str(), "--tier", "ultra"],
        vec!["define", example.as_str(), "--memory", "lots"],
    ] {
        let out = prae(&args);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains("ultra") || err.contains("lots"), "{err}");
    }
}

#[test]
fn revert_of_an_unknown_domain_is_an_error() {
    assert_clean_failure(&prae(&["revert", "no-such-domain"]), "no-such-domain");
}

/// The test driver reports the wall clock as a domain's CPU time, so two `dominfo` calls differ
/// in that line alone; everything else must match byte for byte.
fn without_cpu_time(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("CPU time:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn prae_virsh_passes_other_commands_through_unchanged() {
    for args in [
        vec!["-c", "test:///default", "list", "--all"],
        vec!["-c", "test:///default", "dominfo", "test"],
        vec!["-c", "test:///default", "frobnicate"],
        vec!["-c", "test:///default", "dominfo", "no-such-domain"],
    ] {
        let ours = prae_virsh(&args);
        let theirs = virsh(&args);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(
            without_cpu_time(&text(&ours.stdout)),
            without_cpu_time(&text(&theirs.stdout)),
            "{args:?}"
        );
        assert_eq!(text(&ours.stderr), text(&theirs.stderr), "{args:?}");
    }
}

#[test]
fn prae_virsh_define_rewrites_then_answers_as_virsh() {
    let file = data("example-vm.xml");
    let ours = prae_virsh(&["-c", "test:///default", "define", &file]);
    let theirs = virsh(&["-c", "test:///default", "define", &file]);
    assert_eq!(ours.status.code(), Some(0), "{}", text(&ours.stderr));
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));
    assert!(text(&ours.stdout).contains(&file));
    // The notes name the rewrite (the default tier gives 2 vCPUs to a 1-vCPU domain).
    assert!(
        text(&ours.stderr).contains("prae-virsh: vcpu"),
        "{}",
        text(&ours.stderr)
    );

    // A file that is not a domain: virsh's own error and exit code, after prae's note.
    let dir = tempfile::tempdir().unwrap();
    let bad = write_tmp(&dir, "bad.xml", "<nope/>");
    let ours = prae_virsh(&["-c", "test:///default", "define", &bad]);
    let theirs = virsh(&["-c", "test:///default", "define", &bad]);
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(text(&ours.stderr).contains("not rewritten"));
    assert!(text(&ours.stderr).contains(&text(&theirs.stderr)));
}

/// `define` and `create` with nothing but `-q`, `-c` and the file go to libvirt from prae-virsh
/// itself (no virsh child); stdout, stderr after prae's notes, and the exit code are virsh's,
/// for success and for libvirt's refusal (which prae-virsh leaves to virsh to report).
#[test]
fn prae_virsh_define_and_create_print_what_virsh_prints() {
    let dir = tempfile::tempdir().unwrap();
    let file = data("example-vm.xml");
    // A domain libvirt refuses: the test driver already has a domain 'test' with another UUID.
    let clash = write_tmp(
        &dir,
        "clash.xml",
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("<name>web01</name>", "<name>test</name>"),
    );
    assert!(
        std::fs::read_to_string(&clash)
            .unwrap()
            .contains("<name>test</name>")
    );
    let file_opt = format!("--file={file}");
    for command in ["define", "create"] {
        for (args, ok) in [
            (vec!["-c", "test:///default", command, &file], true),
            (vec!["-q", "-c", "test:///default", command, &file], true),
            (
                vec!["--connect", "test:///default", command, "--file", &file],
                true,
            ),
            (vec!["-c", "test:///default", command, &file_opt], true),
            (vec!["-c", "test:///default", command, &clash], false),
            (vec!["-q", "-c", "test:///default", command, &clash], false),
        ] {
            let ours = prae_virsh(&args);
            let theirs = virsh(&args);
            assert_eq!(
                theirs.status.success(),
                ok,
                "{args:?}: {}",
                text(&theirs.stderr)
            );
            assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
            assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
            let (oe, te) = (text(&ours.stderr), text(&theirs.stderr));
            let virsh_part: String = oe
                .lines()
                .filter(|l| !l.starts_with("prae-virsh: "))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(virsh_part, te, "{args:?}");
            // Quiet means no notes from prae either.
            assert_eq!(
                args[0] == "-q",
                !oe.contains("prae-virsh: vcpu"),
                "{args:?}: {oe}"
            );
        }
    }
}

/// The simple `define` runs without virsh at all: with no virsh to run it still succeeds, with
/// virsh's message; a command line with an option prae does not handle itself needs virsh.
#[test]
fn prae_virsh_simple_define_needs_no_virsh() {
    let file = data("example-vm.xml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prae-virsh"))
            .args(args)
            .env_remove("PRAE_TIER")
            .env("PRAE_VIRSH", "prae-no-such-virsh")
            .output()
            .expect("run prae-virsh")
    };
    let out = run(&["-c", "test:///default", "define", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Domain 'web01' defined from {file}\n\n")
    );
    let out = run(&["-c", "test:///default", "define", "--validate", &file]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot run virsh define"));
}
