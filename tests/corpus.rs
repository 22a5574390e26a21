//! Corpus acceptance: prae's rewrite over libvirt's own test domains.
//!
//! Every domain file of the corpus is rewritten with a fixed profile that changes vCPUs, memory,
//! disk bus, storage class, disk I/O limits and interface bandwidth (`tests/common`), once each
//! with disks moved to SATA, SCSI and virtio. For each file and profile:
//!
//! - **no panic**: parse, rewrite and revert run under `catch_unwind`; a file `parse` refuses
//!   must be refused by `rewrite` too, and a file `parse` accepts must be rewritten;
//! - **refusal**: prae's own invalid files (`tests/corpus/invalid/`) must be refused;
//! - **tree**: input and output, read into element trees (namespace-resolved names, attributes,
//!   trimmed text, comments, processing instructions), are identical once the resource elements
//!   and prae's metadata are taken out of both (see [`strip_resources`]); comments are counted;
//! - **idempotence**: `rewrite(rewrite(x)) == rewrite(x)`, byte for byte;
//! - **revert**: `revert(rewrite(x))` parses to the same view as `x` (how many are byte-identical
//!   to `x` is reported);
//! - **virt-xml-validate**: a file `virt-xml-validate FILE domain` accepted is accepted after the
//!   rewrite (skipped, with a note, when the tool is absent). The full corpus runs the script's
//!   own xmllint command over batches of files, which the shipped run checks against per-file
//!   calls;
//! - **test:///default**: a file libvirt's test driver defined (under a unique name) is defined
//!   after the rewrite; every domain defined is undefined again.
//!
//! The shipped subset (`tests/corpus/`) always runs; the full corpus
//! (`../shared/corpus/libvirt-domains/`) runs when it is present and is reported as skipped
//! otherwise. `qemu_system_relative` repeats the define check against a real libvirtd
//! (`qemu:///system`) for x86 QEMU/KVM domains when `PRAE_LAB=1` (start one with
//! `tests/lab/start-libvirtd.sh`). `PRAE_CORPUS_JOBS` sets the worker threads (default 3).

mod common;

use common::{allocation, rel, xml_files};
use prae::domain::{self, DomainView, PRAE_NS};
use prae::hypervisor::{Hypervisor, Libvirt};
use prae::model::{Allocation, DiskBus};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::{NsReader, Reader};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// libvirt's schema checker (a shell script around xmllint).
const VALIDATOR: &str = "/usr/bin/virt-xml-validate";

/// The disk buses the corpus is rewritten to, one profile each.
const BUSES: [DiskBus; 3] = [DiskBus::Sata, DiskBus::Scsi, DiskBus::Virtio];

/// Files of the shipped subset that `parse` must refuse, besides everything under `invalid/`.
const MUST_REFUSE: &[&str] = &[];

/// One corpus run at a time: the runs share libvirt's in-process test driver and the CPU.
static HEAVY: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// Running things on a few threads, and catching panics.

fn jobs() -> usize {
    std::env::var("PRAE_CORPUS_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// `f` over `items` on [`jobs`] threads; results in the order of `items`.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs().min(items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(i, &items[i]);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

/// Runs `f`, turning a panic into `Err("panicked: ...")`.
fn guarded<R>(f: impl FnOnce() -> prae::Result<R>) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown payload".into());
            Err(format!("{PANICKED}{msg}"))
        }
    }
}

const PANICKED: &str = "panicked: ";

// ---------------------------------------------------------------------------------------------
// Element trees.

#[derive(Debug, Clone, PartialEq)]
enum Node {
    El(El),
    Text(String),
    Comment(String),
    CData(String),
    Pi(String),
    Decl(String),
    DocType(String),
}

/// An element: namespace URI (empty when unbound), local name, attributes in document order
/// (namespace URI, local name, unescaped value; `xmlns` declarations kept as written), children.
#[derive(Debug, Clone, PartialEq, Default)]
struct El {
    ns: String,
    name: String,
    attrs: Vec<(String, String, String)>,
    children: Vec<Node>,
}

impl El {
    fn is(&self, name: &str) -> bool {
        self.ns.is_empty() && self.name == name
    }
    fn label(&self) -> String {
        if self.ns.is_empty() {
            self.name.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.name)
        }
    }
    fn elements_mut(&mut self) -> impl Iterator<Item = &mut El> {
        self.children.iter_mut().filter_map(|c| match c {
            Node::El(e) => Some(e),
            _ => None,
        })
    }
    fn remove_children(&mut self, pred: impl Fn(&El) -> bool) {
        self.children
            .retain(|c| !matches!(c, Node::El(e) if pred(e)));
    }
    fn remove_attrs(&mut self, names: &[&str]) {
        self.attrs
            .retain(|(ns, n, _)| !(ns.is_empty() && names.contains(&n.as_str())));
    }
}

fn ns_of(r: ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => format!("unknown-prefix:{}", String::from_utf8_lossy(&p)),
    }
}

fn element(
    r: &NsReader<&[u8]>,
    ns: String,
    e: &quick_xml::events::BytesStart,
) -> Result<El, String> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("attribute: {e}"))?;
        let raw_key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| format!("attribute {raw_key}: {e}"))?
            .into_owned();
        if raw_key == "xmlns" || raw_key.starts_with("xmlns:") {
            attrs.push((String::new(), raw_key, value));
            continue;
        }
        let (res, local) = r.resolve_attribute(a.key);
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        attrs.push((ns_of(res), local, value));
    }
    Ok(El {
        ns,
        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        attrs,
        children: Vec::new(),
    })
}

/// Reads `xml` into a document node (name `#document`) holding the prolog, root and epilog.
fn tree(xml: &str) -> Result<El, String> {
    let mut r = NsReader::from_str(xml);
    r.config_mut().check_end_names = true;
    let mut stack = vec![El {
        name: "#document".into(),
        ..El::default()
    }];
    let mut text = String::new();
    fn flush(text: &mut String, parent: &mut El) -> Result<(), String> {
        let t = quick_xml::escape::unescape(text.trim())
            .map_err(|e| format!("text: {e}"))?
            .into_owned();
        text.clear();
        if !t.is_empty() {
            parent.children.push(Node::Text(t));
        }
        Ok(())
    }
    loop {
        let pos = r.buffer_position();
        let (res, ev) = r
            .read_resolved_event()
            .map_err(|e| format!("not well-formed at byte {pos}: {e}"))?;
        let ns = ns_of(res);
        let top = stack.last_mut().expect("the document node stays");
        match ev {
            Event::Text(t) => {
                text.push_str(&t.decode().map_err(|e| e.to_string())?);
                continue;
            }
            Event::GeneralRef(g) => {
                text.push('&');
                text.push_str(&g.decode().map_err(|e| e.to_string())?);
                text.push(';');
                continue;
            }
            _ => flush(&mut text, top)?,
        }
        let top = stack.last_mut().expect("the document node stays");
        match ev {
            Event::Start(e) => {
                let el = element(&r, ns, &e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = element(&r, ns, &e)?;
                top.children.push(Node::El(el));
            }
            Event::End(_) => {
                let el = stack.pop().expect("an open element");
                stack
                    .last_mut()
                    .ok_or("unbalanced end tag")?
                    .children
                    .push(Node::El(el));
            }
            Event::Comment(c) => top
                .children
                .push(Node::Comment(String::from_utf8_lossy(&c).into_owned())),
            Event::CData(c) => top
                .children
                .push(Node::CData(String::from_utf8_lossy(&c).into_owned())),
            Event::PI(p) => top
                .children
                .push(Node::Pi(String::from_utf8_lossy(&p).into_owned())),
            Event::Decl(d) => top
                .children
                .push(Node::Decl(String::from_utf8_lossy(&d).into_owned())),
            Event::DocType(d) => top
                .children
                .push(Node::DocType(String::from_utf8_lossy(&d).into_owned())),
            Event::Eof => break,
            Event::Text(_) | Event::GeneralRef(_) => unreachable!("handled above"),
        }
    }
    if stack.len() != 1 {
        return Err("unclosed elements at the end".into());
    }
    Ok(stack.pop().expect("the document node"))
}

fn count_comments(el: &El) -> usize {
    el.children
        .iter()
        .map(|c| match c {
            Node::Comment(_) => 1,
            Node::El(e) => count_comments(e),
            _ => 0,
        })
        .sum()
}

fn has_metadata(doc: &El) -> bool {
    doc.children.iter().any(|c| match c {
        Node::El(d) => {
            d.is("domain")
                && d.children
                    .iter()
                    .any(|m| matches!(m, Node::El(m) if m.is("metadata")))
        }
        _ => false,
    })
}

/// Takes the elements a rewrite may change out of a document tree:
/// `/domain/{vcpu,memory,currentMemory,maxMemory}`, `/domain/cpu/topology`, the size attributes
/// of `/domain/cpu/numa/cell`, a `device='disk'` disk's `target@{dev,bus,rotation_rate}`,
/// `address` and `iotune` (cdroms, floppies and luns must not change at all), an interface's `bandwidth`, and prae's element under `/domain/metadata`. With
/// `drop_empty_metadata`, a `<metadata>` left empty is removed too (prae created it).
fn strip_resources(doc: &mut El, drop_empty_metadata: bool) {
    for d in doc.elements_mut().filter(|e| e.is("domain")) {
        d.remove_children(|e| {
            e.is("vcpu") || e.is("memory") || e.is("currentMemory") || e.is("maxMemory")
        });
        for c in d.elements_mut() {
            if c.is("cpu") {
                c.remove_children(|e| e.is("topology"));
                for n in c.elements_mut().filter(|e| e.is("numa")) {
                    for cell in n.elements_mut().filter(|e| e.is("cell")) {
                        cell.remove_attrs(&["memory", "unit"]);
                    }
                }
            } else if c.is("devices") {
                for dev in c.elements_mut() {
                    // Only `device='disk'` disks (the default) have resources: a cdrom,
                    // floppy or lun must come out unchanged.
                    let device = dev
                        .attrs
                        .iter()
                        .find(|(ns, n, _)| ns.is_empty() && n == "device")
                        .map_or("disk", |a| a.2.as_str());
                    if dev.is("disk") && device == "disk" {
                        dev.remove_children(|e| e.is("address") || e.is("iotune"));
                        for t in dev.elements_mut().filter(|e| e.is("target")) {
                            t.remove_attrs(&["dev", "bus", "rotation_rate"]);
                        }
                    } else if dev.is("interface") {
                        dev.remove_children(|e| e.is("bandwidth"));
                    }
                }
            } else if c.is("metadata") {
                c.remove_children(|e| e.ns == PRAE_NS);
            }
        }
        if drop_empty_metadata {
            d.remove_children(|e| e.is("metadata") && e.children.is_empty() && e.attrs.is_empty());
        }
    }
}

fn short(n: &Node) -> String {
    let s = match n {
        Node::El(e) => format!("<{}> {:?}", e.label(), e.attrs),
        other => format!("{other:?}"),
    };
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

/// The first difference between two trees, as a path and what differs.
fn first_diff(a: &El, b: &El, path: &str) -> Option<String> {
    let here = format!("{path}/{}", a.label());
    if a.ns != b.ns || a.name != b.name {
        return Some(format!("{path}: <{}> became <{}>", a.label(), b.label()));
    }
    if a.attrs != b.attrs {
        return Some(format!(
            "{here}: attributes {:?} became {:?}",
            a.attrs, b.attrs
        ));
    }
    for (i, pair) in a.children.iter().zip(b.children.iter()).enumerate() {
        match pair {
            (Node::El(x), Node::El(y)) => {
                if let Some(d) = first_diff(x, y, &format!("{here}[{i}]")) {
                    return Some(d);
                }
            }
            (x, y) if x != y => {
                return Some(format!(
                    "{here}: child {i} {} became {}",
                    short(x),
                    short(y)
                ));
            }
            _ => {}
        }
    }
    if a.children.len() != b.children.len() {
        let (longer, which) = if a.children.len() > b.children.len() {
            (a, "lost")
        } else {
            (b, "gained")
        };
        let n = a.children.len().min(b.children.len());
        return Some(format!(
            "{here}: {which} child {}",
            short(&longer.children[n])
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Renaming, validation, defining.

/// `xml` with the text of the root's `<name>` child replaced by `name` (unchanged when there is
/// no such child or the XML cannot be read).
fn renamed(xml: &str, name: &str) -> String {
    let mut r = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut open_at: Option<usize> = None;
    loop {
        let before = r.buffer_position() as usize;
        let Ok(ev) = r.read_event() else {
            return xml.to_string();
        };
        let after = r.buffer_position() as usize;
        match ev {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.name().as_ref() == b"name" {
                    open_at = Some(after);
                }
            }
            Event::Empty(e) if depth == 1 && e.name().as_ref() == b"name" => {
                return format!("{}<name>{name}</name>{}", &xml[..before], &xml[after..]);
            }
            Event::End(_) => {
                if depth == 2
                    && let Some(start) = open_at
                {
                    return format!("{}{name}{}", &xml[..start], &xml[before..]);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => return xml.to_string(),
            _ => {}
        }
    }
}

fn have_validator() -> bool {
    Path::new(VALIDATOR).is_file()
}

/// `virt-xml-validate FILE domain`: `Ok` when accepted, else its first line of complaint.
fn validate(path: &Path) -> Result<(), String> {
    let out = Command::new(VALIDATOR)
        .arg(path)
        .arg("domain")
        .output()
        .map_err(|e| format!("cannot run {VALIDATOR}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stdout));
    let line = msg
        .lines()
        .find(|l| !l.trim().is_empty() && !l.contains("fails to validate"))
        .or_else(|| msg.lines().next())
        .unwrap_or("refused")
        .trim()
        .to_string();
    Err(line)
}

/// How the schema check runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validation {
    /// `virt-xml-validate FILE domain` once per file.
    PerFile,
    /// The same xmllint command `virt-xml-validate` runs, over many files per process (the
    /// schema is read once per batch instead of once per file). Used for the full corpus; the
    /// shipped subset runs both and checks that they agree.
    Batched,
}

/// The RELAX NG schema `virt-xml-validate FILE domain` uses, read from the script itself, when
/// the script is the known `xmllint --noout --relaxng "$SCHEMA" "$XMLFILE"` wrapper.
fn batch_schema() -> Option<PathBuf> {
    let script = std::fs::read_to_string(VALIDATOR).ok()?;
    if !script.contains(r#"xmllint --noout --relaxng "$SCHEMA" "$XMLFILE""#) {
        return None;
    }
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SCHEMA=\""))?;
    let schema = line
        .strip_prefix("SCHEMA=\"")?
        .strip_suffix('"')?
        .replace("${TYPE}", "domain");
    let schema = PathBuf::from(schema);
    let xmllint = Command::new("xmllint").arg("--version").output().ok()?;
    (xmllint.status.success() && schema.is_file()).then_some(schema)
}

/// Checks `files` against `schema` in one xmllint run; one result per file, as [`validate`].
fn validate_batch(schema: &Path, files: &[PathBuf]) -> Vec<Result<(), String>> {
    let out = match Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(schema)
        .args(files)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            return files
                .iter()
                .map(|_| Err(format!("cannot run xmllint: {e}")))
                .collect();
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    files
        .iter()
        .map(|f| {
            let name = f.to_string_lossy();
            let prefix = format!("{name}:");
            let mut complaint = None;
            for l in stderr.lines() {
                if l.strip_prefix(name.as_ref()) == Some(" validates") {
                    return Ok(());
                }
                if l.starts_with(&prefix) {
                    complaint = Some(l[prefix.len()..].trim().to_string());
                }
            }
            Err(complaint.unwrap_or_else(|| "fails to validate".into()))
        })
        .collect()
}

/// Runs the schema check over `files` in `mode`, on [`jobs`] threads.
fn validate_all(mode: Validation, files: &[PathBuf]) -> Vec<Result<(), String>> {
    match (mode, batch_schema()) {
        (Validation::Batched, Some(schema)) => {
            let chunks: Vec<&[PathBuf]> = files.chunks(100).collect();
            par_map(&chunks, |_, c| validate_batch(&schema, c))
                .into_iter()
                .flatten()
                .collect()
        }
        _ => par_map(files, |_, f| validate(f)),
    }
}

/// Defines `xml` under `name` and undefines it again. `Ok` when libvirt accepted it; an undefine
/// failure is reported as `Err` too, prefixed with `undefine:`.
fn define_undefine(h: &Libvirt, xml: &str, name: &str) -> Result<(), String> {
    let xml = renamed(xml, name);
    let got = h.define(&xml).map_err(|e| e.to_string())?;
    h.undefine(&got)
        .map_err(|e| format!("undefine: cannot undefine '{got}': {e}"))
}

// ---------------------------------------------------------------------------------------------
// The checks.

struct Failure {
    file: String,
    check: String,
    reason: String,
}

/// What one file gave under one profile.
#[derive(Default)]
struct ProfileOutcome {
    /// The rewritten XML, when the rewrite succeeded.
    out: Option<String>,
    changed: bool,
    tree_ok: bool,
    comments: (usize, usize),
    /// Kinds of change made and of change declined (see [`kind`]), each once per file.
    made: std::collections::BTreeSet<String>,
    declined: std::collections::BTreeSet<String>,
    idempotent: bool,
    revert_view: bool,
    revert_bytes: bool,
    /// `revert(rewrite(rewrite(x, this), other)) == x`, byte for byte.
    chain_revert_bytes: bool,
    failures: Vec<(String, String)>,
}

struct Case {
    rel: String,
    path: PathBuf,
    input: Option<String>,
    must_refuse: bool,
    parsed: Result<DomainView, String>,
    profiles: Vec<ProfileOutcome>,
}

fn check_profile(
    input: &str,
    parsed: &Result<DomainView, String>,
    alloc: &Allocation,
    other: &Allocation,
) -> ProfileOutcome {
    let mut o = ProfileOutcome::default();
    let mut fail = |check: &str, reason: String| o.failures.push((check.to_string(), reason));
    let rewritten = guarded(|| domain::rewrite(input, alloc));
    let view = match (parsed, rewritten) {
        (_, Err(e)) if e.starts_with(PANICKED) => {
            fail("no panic", format!("rewrite {e}"));
            return o;
        }
        (Err(pe), Ok(_)) => {
            fail(
                "refusal",
                format!("parse refused it ({pe}) but rewrite accepted it"),
            );
            return o;
        }
        (Err(_), Err(_)) => return o,
        (Ok(_), Err(e)) => {
            fail(
                "rewrite",
                format!("parse accepted it but rewrite refused: {e}"),
            );
            return o;
        }
        (Ok(v), Ok(r)) => {
            o.made = r.changes.iter().map(|c| kind(&c.what)).collect();
            o.declined = r.skipped.iter().map(|c| kind(&c.what)).collect();
            o.out = Some(r.xml);
            v
        }
    };
    let out = o.out.clone().expect("set above");
    o.changed = out != input;

    // Tree comparison.
    match (tree(input), tree(&out)) {
        (Ok(mut a), Ok(mut b)) => {
            o.comments = (count_comments(&a), count_comments(&b));
            let created = !has_metadata(&a);
            strip_resources(&mut a, false);
            strip_resources(&mut b, created);
            match first_diff(&a, &b, "") {
                None => o.tree_ok = true,
                Some(d) => fail("tree", d),
            }
            if o.comments.0 != o.comments.1 {
                fail(
                    "comments",
                    format!("{} comments in, {} out", o.comments.0, o.comments.1),
                );
            }
        }
        (Err(e), _) => fail("tree", format!("the input cannot be read as a tree: {e}")),
        (_, Err(e)) => fail("tree", format!("the output is not well-formed: {e}")),
    }

    // Idempotence.
    // Changes are reported relative to the XML given: none the second time.
    match guarded(|| domain::rewrite(&out, alloc)) {
        Ok(again) if again.xml == out && again.changes.is_empty() => o.idempotent = true,
        Ok(again) if again.xml == out => fail(
            "idempotence",
            format!(
                "same bytes, but the second rewrite reports changes: {:?}",
                again.changes
            ),
        ),
        Ok(again) => fail("idempotence", first_line_diff(&out, &again.xml)),
        Err(e) => fail("idempotence", format!("rewriting the output failed: {e}")),
    }

    // Revert. A domain prae never rewrote comes back unchanged.
    if !view.rewritten_by_prae {
        match guarded(|| domain::revert(input)) {
            Ok(r) if r.xml == input && r.changes.is_empty() => {}
            Ok(r) => fail(
                "revert",
                format!(
                    "reverting a domain prae never rewrote changed it: {}",
                    first_line_diff(input, &r.xml)
                ),
            ),
            Err(e) => fail("revert", format!("reverting the input failed: {e}")),
        }
    }
    match guarded(|| domain::revert(&out)) {
        Ok(back) => {
            o.revert_bytes = back.xml == input;
            match guarded(|| domain::parse(&back.xml)) {
                Ok(bv) if bv == *view => o.revert_view = true,
                Ok(bv) => fail("revert", view_diff(view, &bv)),
                Err(e) => fail("revert", format!("the reverted XML does not parse: {e}")),
            }
        }
        Err(e) => fail("revert", format!("revert failed: {e}")),
    }

    // Re-rewriting with another profile starts from the recorded originals: it gives what
    // rewriting the input would, and reverting that still gives the input back.
    match (
        guarded(|| domain::rewrite(&out, other)),
        guarded(|| domain::rewrite(input, other)),
    ) {
        (Ok(chained), Ok(direct)) => {
            if chained.xml != direct.xml {
                fail(
                    "re-rewrite",
                    format!(
                        "rewriting the output with another profile differs from rewriting the \
                         input with it: {}",
                        first_line_diff(&direct.xml, &chained.xml)
                    ),
                );
            }
            match guarded(|| domain::revert(&chained.xml)) {
                Ok(back) if back.xml == input => o.chain_revert_bytes = true,
                Ok(back) => match guarded(|| domain::parse(&back.xml)) {
                    Ok(bv) if bv == *view => {}
                    Ok(bv) => fail("re-rewrite revert", view_diff(view, &bv)),
                    Err(e) => fail("re-rewrite revert", format!("does not parse: {e}")),
                },
                Err(e) => fail("re-rewrite revert", format!("revert failed: {e}")),
            }
        }
        (Err(e), _) | (_, Err(e)) => fail("re-rewrite", format!("rewrite failed: {e}")),
    }
    o
}

/// The kind of a change or skip, from its `what`: `disk vda bus` -> `disk bus`,
/// `interface 52:54:00:.. bandwidth` -> `interface bandwidth`, `NUMA cell 1 memory` ->
/// `NUMA cell memory`; others as they are.
fn kind(what: &str) -> String {
    let words: Vec<&str> = what.split_whitespace().collect();
    match words.as_slice() {
        ["disk", _, rest @ ..] | ["interface", _, rest @ ..] | ["NUMA", "cell", _, rest @ ..] => {
            let head = &words[..words.len() - rest.len() - 1];
            format!("{} {}", head.join(" "), rest.join(" "))
        }
        _ => what.to_string(),
    }
}

/// The first differing line of two texts.
fn first_line_diff(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: {:?} became {:?}", i + 1, x.trim(), y.trim());
        }
    }
    format!(
        "{} lines became {} lines",
        a.lines().count(),
        b.lines().count()
    )
}

fn view_diff(a: &DomainView, b: &DomainView) -> String {
    let (ja, jb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut s = String::from("parse view differs from the original:");
    if let (Some(ma), Some(mb)) = (ja.as_object(), jb.as_object()) {
        for (k, va) in ma {
            let vb = mb.get(k).cloned().unwrap_or_default();
            if *va != vb {
                let _ = write!(s, " {k}: {va} became {vb};");
            }
        }
    }
    s
}

fn load(root: &Path, path: &Path, must_refuse: bool) -> Case {
    let rel = rel(root, path);
    let input = std::fs::read(path)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let parsed = match &input {
        Some(x) => guarded(|| domain::parse(x)),
        None => Err("not readable as UTF-8".into()),
    };
    Case {
        rel,
        path: path.to_path_buf(),
        input,
        must_refuse,
        parsed,
        profiles: Vec::new(),
    }
}

#[derive(Default)]
struct Tally {
    accepted_before: usize,
    refused_before: usize,
    kept: usize,
}

struct Report {
    label: String,
    text: String,
    failures: Vec<Failure>,
}

/// Runs every check over `files` (paths under `root`); `must_refuse(rel)` names files that must
/// be refused. `prefix` makes the test-driver names of this run unique.
fn run_corpus(
    label: &str,
    root: &Path,
    files: &[PathBuf],
    must_refuse: &(dyn Fn(&str) -> bool + Sync),
    prefix: &str,
    validation: Validation,
) -> Report {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let started = std::time::Instant::now();
    let allocs: Vec<Allocation> = BUSES.iter().map(|&b| allocation(b)).collect();
    let mut failures = Vec::new();
    let mut text = String::new();
    let mut fail = |file: &str, check: &str, reason: String| {
        failures.push(Failure {
            file: file.to_string(),
            check: check.to_string(),
            reason,
        })
    };

    // Pure checks, in parallel.
    let mut cases: Vec<Case> = par_map(files, |_, p| {
        let mut c = load(root, p, must_refuse(&rel(root, p)));
        if let Some(input) = &c.input {
            c.profiles = (0..allocs.len())
                .map(|p| {
                    let other = &allocs[(p + 1) % allocs.len()];
                    check_profile(input, &c.parsed, &allocs[p], other)
                })
                .collect();
        }
        c
    });
    let refused: Vec<&Case> = cases.iter().filter(|c| c.parsed.is_err()).collect();
    let _ = writeln!(
        text,
        "corpus {label}: {} files under {}",
        cases.len(),
        root.display()
    );
    let _ = writeln!(
        text,
        "  parse: {} accepted, {} refused",
        cases.len() - refused.len(),
        refused.len()
    );
    for c in &refused {
        let e = c.parsed.as_ref().err().map(String::as_str).unwrap_or("");
        if e.starts_with(PANICKED) {
            fail(&c.rel, "no panic", format!("parse {e}"));
        }
        let _ = writeln!(text, "    refused {}: {e}", c.rel);
    }
    let expected: Vec<&Case> = cases.iter().filter(|c| c.must_refuse).collect();
    for c in &expected {
        if c.parsed.is_ok() {
            fail(
                &c.rel,
                "refusal",
                "a known-invalid file was accepted by parse".into(),
            );
        }
    }
    let _ = writeln!(
        text,
        "  known-invalid: {} of {} refused",
        expected.iter().filter(|c| c.parsed.is_err()).count(),
        expected.len()
    );
    for c in &cases {
        for (p, o) in c.profiles.iter().enumerate() {
            for (check, reason) in &o.failures {
                fail(&c.rel, &format!("{check} ({})", BUSES[p]), reason.clone());
            }
        }
    }
    for (p, bus) in BUSES.iter().enumerate() {
        let outs: Vec<&ProfileOutcome> = cases.iter().filter_map(|c| c.profiles.get(p)).collect();
        let rewritten = outs.iter().filter(|o| o.out.is_some()).count();
        let changed = outs.iter().filter(|o| o.changed).count();
        let comments_in: usize = outs.iter().map(|o| o.comments.0).sum();
        let comments_out: usize = outs.iter().map(|o| o.comments.1).sum();
        let count = |f: fn(&ProfileOutcome) -> bool| outs.iter().filter(|o| f(o)).count();
        let _ = writeln!(
            text,
            "  profile {bus}: rewritten {rewritten} ({changed} changed)\n    \
             tree identical outside resources: {} of {rewritten}; comments {comments_in} in, \
             {comments_out} out\n    idempotent: {} of {rewritten}\n    \
             revert restores the parse view: {} of {rewritten}; byte-identical to the input: \
             {} of {rewritten}\n    after a second rewrite with the next profile, revert is \
             byte-identical to the input: {} of {rewritten}",
            count(|o| o.tree_ok),
            count(|o| o.idempotent),
            count(|o| o.revert_view),
            count(|o| o.revert_bytes),
            count(|o| o.chain_revert_bytes),
        );
        for (what, sets) in [
            (
                "changes made",
                outs.iter().map(|o| &o.made).collect::<Vec<_>>(),
            ),
            (
                "changes declined",
                outs.iter().map(|o| &o.declined).collect(),
            ),
        ] {
            let mut n: std::collections::BTreeMap<&str, usize> = Default::default();
            for k in sets.into_iter().flatten() {
                *n.entry(k).or_default() += 1;
            }
            let list: Vec<String> = n.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(text, "    files with {what}: {}", list.join(", "));
        }
    }
    let _ = writeln!(
        text,
        "  pure checks took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // virt-xml-validate, relative.
    if have_validator() {
        let t = std::time::Instant::now();
        let dir = tempfile::tempdir().expect("a temporary directory");
        // One job per input and per distinct output (profiles often give the same bytes).
        let mut jobs: Vec<PathBuf> = Vec::new();
        let mut input_job = vec![None; cases.len()];
        let mut output_job = vec![vec![None; BUSES.len()]; cases.len()];
        for (i, c) in cases.iter().enumerate() {
            if c.input.is_none() {
                continue;
            }
            input_job[i] = Some(jobs.len());
            jobs.push(c.path.clone());
            let mut seen: Vec<(&str, usize)> = Vec::new();
            for (p, o) in c.profiles.iter().enumerate() {
                let Some(out) = o.out.as_deref().filter(|_| o.changed) else {
                    continue;
                };
                if let Some(&(_, j)) = seen.iter().find(|(x, _)| *x == out) {
                    output_job[i][p] = Some(j);
                    continue;
                }
                let f = dir.path().join(format!("{i}-{p}.xml"));
                std::fs::write(&f, out).expect("writing a temporary file");
                output_job[i][p] = Some(jobs.len());
                seen.push((out, jobs.len()));
                jobs.push(f);
            }
        }
        let results = validate_all(validation, &jobs);
        let how = match (validation, batch_schema()) {
            (Validation::Batched, Some(_)) => {
                "in xmllint batches of 100, as virt-xml-validate runs it"
            }
            _ => "one virt-xml-validate call each",
        };
        if validation == Validation::PerFile {
            // The full corpus runs batched: check here that batches give the same answers.
            if batch_schema().is_some() {
                let batched = validate_all(Validation::Batched, &jobs);
                for ((f, a), b) in jobs.iter().zip(&results).zip(&batched) {
                    if a.is_ok() != b.is_ok() {
                        fail(
                            &f.display().to_string(),
                            "virt-xml-validate batches",
                            format!("per file {a:?}, batched {b:?}"),
                        );
                    }
                }
                let _ = writeln!(
                    text,
                    "  virt-xml-validate: batched xmllint agrees with per-file calls on all {} files",
                    jobs.len()
                );
            }
        }
        let before: Vec<Option<bool>> = input_job
            .iter()
            .map(|j| j.map(|j| results[j].is_ok()))
            .collect();
        let mut tallies: Vec<Tally> = BUSES.iter().map(|_| Tally::default()).collect();
        for (p, tally) in tallies.iter_mut().enumerate() {
            for (i, c) in cases.iter().enumerate() {
                let Some(ok_before) = before[i] else { continue };
                if c.profiles.get(p).is_none_or(|o| o.out.is_none()) {
                    continue;
                }
                if !ok_before {
                    tally.refused_before += 1;
                    continue;
                }
                tally.accepted_before += 1;
                let after = output_job[i][p].map_or(Ok(()), |j| results[j].clone());
                match after {
                    Ok(()) => tally.kept += 1,
                    Err(e) => fail(
                        &c.rel,
                        &format!("virt-xml-validate ({})", BUSES[p]),
                        format!("accepted before the rewrite, refused after: {e}"),
                    ),
                }
            }
        }
        let refused_inputs = before.iter().filter(|b| **b == Some(false)).count();
        let _ = writeln!(
            text,
            "  virt-xml-validate: {} inputs checked, {refused_inputs} refused before any rewrite \
             ({} files, {how}, {:.1} s)",
            before.iter().filter(|b| b.is_some()).count(),
            jobs.len(),
            t.elapsed().as_secs_f64()
        );
        for (p, tally) in tallies.iter().enumerate() {
            let _ = writeln!(
                text,
                "    {}: {} of {} accepted before are accepted after ({} refused before, not \
                 counted)",
                BUSES[p], tally.kept, tally.accepted_before, tally.refused_before
            );
        }
    } else {
        let _ = writeln!(
            text,
            "  virt-xml-validate: skipped, {VALIDATOR} is absent (install libvirt-clients)"
        );
    }

    // test:///default, relative.
    let t = std::time::Instant::now();
    match Libvirt::open(Some("test:///default")) {
        Err(e) => {
            let _ = writeln!(text, "  test:///default: skipped, cannot open it: {e}");
        }
        Ok(h) => {
            let mut tallies: Vec<Tally> = BUSES.iter().map(|_| Tally::default()).collect();
            for (i, c) in cases.iter().enumerate() {
                let Some(input) = &c.input else { continue };
                let name = format!("prae-corpus-{prefix}-{i}");
                let before = define_undefine(&h, input, &name);
                if let Err(e) = &before
                    && e.starts_with("undefine:")
                {
                    fail(&c.rel, "test:///default", e.clone());
                }
                for (p, o) in c.profiles.iter().enumerate() {
                    let Some(out) = &o.out else { continue };
                    if before.is_err() {
                        tallies[p].refused_before += 1;
                        continue;
                    }
                    tallies[p].accepted_before += 1;
                    let after = if o.changed {
                        define_undefine(&h, out, &name)
                    } else {
                        Ok(())
                    };
                    match after {
                        Ok(()) => tallies[p].kept += 1,
                        Err(e) => fail(
                            &c.rel,
                            &format!("test:///default ({})", BUSES[p]),
                            format!("defined before the rewrite, refused after: {e}"),
                        ),
                    }
                }
            }
            let _ = writeln!(
                text,
                "  test:///default ({:.1} s):",
                t.elapsed().as_secs_f64()
            );
            for (p, tally) in tallies.iter().enumerate() {
                let _ = writeln!(
                    text,
                    "    {}: {} of {} defined before are defined after ({} refused before, not \
                     counted)",
                    BUSES[p], tally.kept, tally.accepted_before, tally.refused_before
                );
            }
        }
    }
    cases.clear();
    let _ = writeln!(
        text,
        "  failures: {} (total {:.1} s)",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    Report {
        label: label.to_string(),
        text,
        failures,
    }
}

fn finish(report: Report) {
    println!("{}", report.text);
    for f in &report.failures {
        println!("FAIL {} [{}] {}", f.file, f.check, f.reason);
    }
    assert!(
        report.failures.is_empty(),
        "corpus {}: {} failures (listed above)",
        report.label,
        report.failures.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn shipped_subset() {
    let root = common::repo_root().join("tests/corpus");
    let mut files = xml_files(&common::shipped_dir());
    let invalid = xml_files(&common::invalid_dir());
    assert!(
        files.len() >= 100,
        "the shipped subset has {} files",
        files.len()
    );
    assert!(!invalid.is_empty(), "tests/corpus/invalid/ holds no files");
    files.extend(invalid);
    let must = |rel: &str| {
        rel.starts_with("invalid/")
            || MUST_REFUSE
                .iter()
                .any(|m| rel.strip_prefix("libvirt-domains/") == Some(*m))
    };
    finish(run_corpus(
        "shipped subset",
        &root,
        &files,
        &must,
        "s",
        Validation::PerFile,
    ));
}

#[test]
fn full_corpus() {
    let Some(dir) = common::full_dir() else {
        println!(
            "corpus full: skipped, ../shared/corpus/libvirt-domains is absent (only the shipped \
             subset ran)"
        );
        return;
    };
    let files = xml_files(&dir);
    finish(run_corpus(
        "full",
        &dir,
        &files,
        &|_| false,
        "f",
        Validation::Batched,
    ));
}

#[test]
fn invalid_files_are_refused_with_a_reason() {
    for p in xml_files(&common::invalid_dir()) {
        let xml = std::fs::read_to_string(&p).unwrap_or_default();
        let a = allocation(DiskBus::Sata);
        let e = guarded(|| domain::rewrite(&xml, &a)).expect_err(&p.display().to_string());
        assert!(!e.starts_with(PANICKED), "{}: {e}", p.display());
        assert!(!e.trim().is_empty(), "{}: empty error", p.display());
    }
}

/// Every prefix of a domain document that stops before its closing `</domain>` is not
/// well-formed: parse and rewrite must refuse it (without panicking), never rewrite it.
#[test]
fn truncated_files_are_refused() {
    let a = allocation(DiskBus::Sata);
    let mut cuts = 0;
    for p in xml_files(&common::shipped_dir()) {
        let xml = std::fs::read_to_string(&p).unwrap_or_default();
        let Some(end) = xml.rfind("</domain>") else {
            continue;
        };
        for k in 1..=8 {
            let mut at = end * k / 9;
            while !xml.is_char_boundary(at) {
                at -= 1;
            }
            let cut = &xml[..at];
            cuts += 1;
            for (what, r) in [
                ("parse", guarded(|| domain::parse(cut).map(drop))),
                ("rewrite", guarded(|| domain::rewrite(cut, &a).map(drop))),
            ] {
                match r {
                    Ok(()) => panic!("{} cut at byte {at}: {what} accepted it", p.display()),
                    Err(e) if e.starts_with(PANICKED) => {
                        panic!("{} cut at byte {at}: {what} {e}", p.display())
                    }
                    Err(_) => {}
                }
            }
        }
    }
    println!("truncated files: {cuts} prefixes refused by parse and rewrite");
    assert!(cuts >= 800, "only {cuts} prefixes were tried");
}

#[test]
fn tree_comparison_sees_changes_outside_resources() {
    let a = "<domain type='kvm'><name>a</name><memory>1</memory><!-- c --><devices>\
             <disk><target dev='vda' bus='virtio' tray='open'/></disk></devices></domain>";
    let same = "<domain type='kvm'><name>a</name><memory unit='GiB'>3</memory><!-- c -->\
                <devices><disk><target bus='sata' tray='open' dev='sda'/></disk></devices>\
                <metadata><p:x xmlns:p='urn:prae:allocation:1'/></metadata></domain>";
    let lost_comment = a.replace("<!-- c -->", "");
    let changed_tray = a.replace("open", "closed");
    let cdrom_moved = a
        .replace("<disk>", "<disk device='cdrom'>")
        .replace("bus='virtio'", "bus='sata'");
    let cdrom = a.replace("<disk>", "<disk device='cdrom'>");
    let mut tc = tree(&cdrom).unwrap();
    strip_resources(&mut tc, false);
    let mut tm = tree(&cdrom_moved).unwrap();
    strip_resources(&mut tm, false);
    assert!(
        first_diff(&tc, &tm, "").is_some(),
        "a cdrom's bus is not a resource"
    );
    let mut ta = tree(a).unwrap();
    strip_resources(&mut ta, false);
    for (other, differs) in [
        (same, false),
        (&lost_comment[..], true),
        (&changed_tray[..], true),
    ] {
        let mut tb = tree(other).unwrap();
        strip_resources(&mut tb, true);
        assert_eq!(first_diff(&ta, &tb, "").is_some(), differs, "{other}");
    }
    assert_eq!(
        mask_quoted("can't use 'vda' on bus 'sd', isn't it"),
        "can't use '...' on bus '...', isn't it"
    );
    assert_eq!(
        renamed(
            "<domain><name>test</name><x><name>k</name></x></domain>",
            "n1"
        ),
        "<domain><name>n1</name><x><name>k</name></x></domain>"
    );
}

// ---------------------------------------------------------------------------------------------
// qemu:///system (PRAE_LAB=1).

/// Name prefix of the domains `qemu_system_relative` defines (and sweeps up after a crash).
const QEMU_PREFIX: &str = "prae-corpus-q-";

/// Undefines every domain on `h` whose name starts with [`QEMU_PREFIX`]; returns how many.
fn sweep(h: &Libvirt) -> usize {
    let Ok(list) = h.list_domains() else {
        return 0;
    };
    list.iter()
        .filter(|d| d.name.starts_with(QEMU_PREFIX))
        .filter(|d| h.undefine(&d.name).is_ok())
        .count()
}

/// Sweeps leftovers when dropped, so a panicking run leaves no domain behind.
struct Sweeper<'h>(&'h Libvirt);

impl Drop for Sweeper<'_> {
    fn drop(&mut self) {
        let n = sweep(self.0);
        if n > 0 {
            println!("qemu:///system: undefined {n} leftover {QEMU_PREFIX}* domains");
        }
    }
}

/// `msg` with every quoted value (`'...'` opened after a non-letter) replaced by `'...'`, so that
/// messages differing only in names group together; an apostrophe inside a word (`can't`) is
/// left alone.
fn mask_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '\'' && !prev.is_alphanumeric() {
            let mut inner = String::new();
            let mut closed = false;
            for d in chars.by_ref() {
                if d == '\'' {
                    closed = true;
                    break;
                }
                inner.push(d);
            }
            if closed {
                out.push_str("'...'");
            } else {
                out.push('\'');
                out.push_str(&inner);
            }
            prev = '\'';
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

fn is_x86_qemu(v: &DomainView) -> bool {
    matches!(v.domain_type.as_str(), "qemu" | "kvm")
        && matches!(v.arch.as_deref(), Some("x86_64" | "i686"))
}

/// Defines (never starts) every x86 QEMU/KVM domain of `files` before and after the rewrite.
fn run_qemu(h: &Libvirt, label: &str, root: &Path, files: &[PathBuf], tag: &str) -> Report {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let started = std::time::Instant::now();
    let allocs: Vec<Allocation> = BUSES.iter().map(|&b| allocation(b)).collect();
    let mut failures = Vec::new();
    let mut text = String::new();
    let mut x86 = 0usize;
    let mut tallies: Vec<Tally> = BUSES.iter().map(|_| Tally::default()).collect();
    let mut gained = vec![0usize; BUSES.len()];
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, p) in files.iter().enumerate() {
        let c = load(root, p, false);
        let (Some(input), Ok(view)) = (&c.input, &c.parsed) else {
            continue;
        };
        if !is_x86_qemu(view) {
            continue;
        }
        x86 += 1;
        let name = format!("{QEMU_PREFIX}{tag}-{i}");
        let before = define_undefine(h, input, &name);
        match &before {
            Err(e) if e.starts_with("undefine:") => failures.push(Failure {
                file: c.rel.clone(),
                check: "qemu:///system".into(),
                reason: e.clone(),
            }),
            Err(e) => {
                // Group refusals by libvirt's message, without quoted specifics.
                let msg = e
                    .rsplit_once("cannot define domain: ")
                    .map_or(e.as_str(), |(_, m)| m);
                let key: String = mask_quoted(msg).chars().take(90).collect();
                *reasons.entry(key).or_default() += 1;
            }
            Ok(()) => {}
        }
        for (b, a) in allocs.iter().enumerate() {
            let Ok(out) = guarded(|| domain::rewrite(input, a)) else {
                continue;
            };
            let after = if out.xml == *input {
                before.clone()
            } else {
                define_undefine(h, &out.xml, &name)
            };
            match (&before, after) {
                (Ok(()), Ok(())) => {
                    tallies[b].accepted_before += 1;
                    tallies[b].kept += 1;
                }
                (Ok(()), Err(e)) => {
                    tallies[b].accepted_before += 1;
                    failures.push(Failure {
                        file: c.rel.clone(),
                        check: format!("qemu:///system ({})", BUSES[b]),
                        reason: format!("defined before the rewrite, refused after: {e}"),
                    });
                }
                (Err(_), Ok(())) => {
                    tallies[b].refused_before += 1;
                    gained[b] += 1;
                }
                (Err(_), Err(_)) => tallies[b].refused_before += 1,
            }
        }
    }
    let _ = writeln!(
        text,
        "qemu:///system, corpus {label}: {x86} x86 QEMU/KVM domains of {} files ({:.1} s)",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    for (b, t) in tallies.iter().enumerate() {
        let _ = writeln!(
            text,
            "  {}: {} of {} defined before are defined after; {} refused before ({} of them \
             defined after)",
            BUSES[b], t.kept, t.accepted_before, t.refused_before, gained[b]
        );
    }
    let _ = writeln!(text, "  refused before the rewrite, by reason:");
    let mut by_count: Vec<_> = reasons.into_iter().collect();
    by_count.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (r, n) in by_count.iter().take(12) {
        let _ = writeln!(text, "    {n:5}  {r}");
    }
    Report {
        label: format!("{label} on qemu:///system"),
        text,
        failures,
    }
}

#[test]
fn qemu_system_relative() {
    if std::env::var("PRAE_LAB").as_deref() != Ok("1") {
        println!("qemu:///system: skipped: set PRAE_LAB=1 (see tests/lab/)");
        return;
    }
    let h = Libvirt::open(Some("qemu:///system")).unwrap_or_else(|e| {
        panic!("PRAE_LAB=1 but {e}; start libvirtd with tests/lab/start-libvirtd.sh")
    });
    let _sweeper = Sweeper(&h);
    sweep(&h);
    let root = common::repo_root().join("tests/corpus");
    let shipped = run_qemu(&h, "shipped subset", &root, &xml_files(&root), "s");
    let full = common::full_dir().map(|dir| run_qemu(&h, "full", &dir, &xml_files(&dir), "f"));
    if full.is_none() {
        println!(
            "qemu:///system, corpus full: skipped, ../shared/corpus/libvirt-domains is absent"
        );
    }
    let mut all = shipped;
    if let Some(f) = full {
        all.text.push_str(&f.text);
        all.failures.extend(f.failures);
        all.label = "shipped subset and full".into();
    }
    finish(all);
}
