//! The daemon against libvirt's in-process test driver: the API against `openapi.json`, refused
//! requests, the TCP token, interception (enforce, advise, opt-out), reconnect and rescan,
//! sampling, `prae status` and the `prepare` hook. The lab version is `tests/daemon_lab.rs`.
//!
//! The test driver's state is shared by every connection in this process, and a daemon under
//! enforce rewrites every domain it sees, so these tests run one at a time (`SERIAL`) and use
//! their own domain names (`prae-dmn-...`).

#[path = "daemon/harness.rs"]
mod harness;

use harness::{start, test_driver, wait_until};
use prae::daemon::client::{self, HttpReply};
use prae::daemon::{Config, Policy, Request, marks};
use prae::hypervisor::{
    AccelChoice, DomainInfo, DomainStats, EventStream, Hypervisor, Libvirt, NodeCpuStats,
    NodeMemoryStats, PoolInfo, Scope, VolumeInfo, XmlKind,
};
use prae::model::{Bandwidth, HostCapacity, IoTune};
use prae::{Error, Result, domain};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const WAIT: Duration = Duration::from_secs(20);

fn config(policy: Policy) -> Config {
    Config {
        policy,
        sample_interval_s: 0,
        reconnect_s: 1,
        ..Config::default()
    }
}

fn domain_xml(name: &str, extra_metadata: &str) -> String {
    format!(
        "<domain type='test'>\n  <name>{name}</name>\n  <memory unit='KiB'>524288</memory>\n  \
         <vcpu placement='static'>1</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n{extra_metadata}</domain>\n"
    )
}

const OPT_OUT: &str = "  <metadata><p:policy xmlns:p='urn:prae:policy:1' mode='off'/></metadata>\n";

fn raw(socket: &Path, method: &str, path: &str, body: Option<&str>) -> HttpReply {
    client::call_raw(socket, method, path, body.map(str::as_bytes)).expect("request")
}

fn marks_of(hv: &Libvirt, name: &str) -> marks::Marks {
    marks::marks(&hv.domain_xml(name, XmlKind::Inactive).unwrap()).unwrap()
}

fn cleanup(hv: &Libvirt, names: &[&str]) {
    for n in names {
        let _ = hv.undefine(n);
    }
}

// ---- OpenAPI ---------------------------------------------------------------------------

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

/// A small JSON-schema check: type, required, properties, items, enum, additionalProperties.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let s = resolve(doc, schema);
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        assert!(ok, "{at}: {v} is not of type {t}");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        assert!(e.contains(v), "{at}: {v} is not one of {e:?}");
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for r in req {
            let r = r.as_str().unwrap();
            assert!(v.get(r).is_some(), "{at}: missing required '{r}' in {v}");
        }
    }
    if let (Some(props), Some(obj)) = (s.get("properties"), v.as_object()) {
        for (k, val) in obj {
            match props.get(k) {
                Some(p) => check(doc, p, val, &format!("{at}.{k}")),
                None => assert!(
                    s.get("additionalProperties") != Some(&Value::Bool(false)),
                    "{at}: undocumented property '{k}'"
                ),
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn api_conforms_to_openapi() {
    let _g = serial();
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let d = start(config(Policy::Off), test_driver(), None, false);
    wait_until("libvirt connected", WAIT, || {
        d.daemon.hypervisor().is_some()
    });
    // The document and the server's table name the same operations.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push((
                method.to_uppercase(),
                path.clone(),
                op["operationId"].as_str().unwrap().to_string(),
            ));
        }
    }
    let mut served: Vec<(String, String, String)> = prae::daemon::api::OPERATIONS
        .iter()
        .map(|o| (o.method.into(), o.path.into(), o.operation_id.into()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Walk every operation in document order with its example; the status must be documented
    // and the body must match the documented schema.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let url = path.replace("{id}", "1");
            let example = op
                .pointer("/requestBody/content/application~1json/example")
                .map(|e| e.to_string());
            let r = raw(&d.socket, &method.to_uppercase(), &url, example.as_deref());
            let resp = op["responses"]
                .get(r.status.to_string())
                .unwrap_or_else(|| panic!("{id}: undocumented status {}: {}", r.status, r.body));
            if let Some(schema) = resp.pointer("/content/application~1json/schema") {
                let v: Value = serde_json::from_str(&r.body)
                    .unwrap_or_else(|e| panic!("{id}: body is not JSON ({e}): {}", r.body));
                check(&doc, schema, &v, id);
            } else {
                assert!(r.body.contains("# TYPE prae_up gauge"), "{id}: {}", r.body);
            }
            // A wrong method on the same path is refused.
            if method != "put" {
                assert_eq!(raw(&d.socket, "PUT", &url, None).status, 405, "{id}");
            }
            // An error shape is documented for every operation.
            check(
                &doc,
                &op["responses"]["400"]["content"]["application/json"]["schema"],
                &serde_json::json!({"error": "x"}),
                id,
            );
        }
    }
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    cleanup(&hv, &["prae-dmn-openapi"]);
}

// ---- refusals --------------------------------------------------------------------------

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let _g = serial();
    let c = Config {
        max_body_bytes: 4096,
        ..config(Policy::Off)
    };
    let d = start(c, test_driver(), None, false);
    let s = &d.socket;
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("POST", "/v1/overrides", "{\"scope\":".into(), 400, "invalid request body"),
        ("POST", "/v1/overrides", "not json".into(), 400, "expected a JSON object"),
        ("POST", "/v1/predict", "{\"package\": \"nginx\"} trailing".into(), 400, "trailing characters"),
        (
            "POST",
            "/v1/overrides",
            "{\"scope\":{\"kind\":\"domain\",\"name\":\"x\"},\"spec\":{\"type\":\"exact\",\"profile\":{\"vcpus\":2}},\"reason\":\"r\",\"extra\":1}".into(),
            400,
            "unknown field `extra`",
        ),
        (
            "POST",
            "/v1/overrides",
            "{\"scope\":{\"kind\":\"domain\",\"name\":\"x\"},\"spec\":{\"type\":\"exact\",\"profile\":{\"vcpus\":\"two\"}},\"reason\":\"r\"}".into(),
            400,
            "invalid type",
        ),
        (
            "POST",
            "/v1/overrides",
            "{\"scope\":{\"kind\":\"domain\",\"name\":\"x\"},\"spec\":{\"type\":\"exact\",\"profile\":{\"vcpus\":0}},\"reason\":\"r\"}".into(),
            400,
            "at least 1",
        ),
        ("POST", "/v1/overrides", format!("{{\"reason\":\"{}\"}}", "x".repeat(8000)), 413, "larger than 4096"),
        ("POST", "/v1/predict", "{\"tier\":\"extreme\"}".into(), 400, "unknown variant"),
        ("POST", "/v1/predict", "{\"package\":\"a;b\"}".into(), 400, "not a valid Debian package"),
        ("POST", "/v1/predict", "[]".into(), 400, "expected a JSON object"),
        ("DELETE", "/v1/overrides/abc", String::new(), 400, "'abc'"),
        ("DELETE", "/v1/overrides/42", String::new(), 404, "override 42"),
        ("POST", "/v1/domains", "{\"xml\":\"<domain\"}".into(), 400, "not well-formed"),
        ("GET", "/v1/nothing", String::new(), 404, "/v1/nothing"),
    ];
    for (m, p, body, status, msg) in cases {
        let r = raw(s, m, p, (!body.is_empty()).then_some(body.as_str()));
        assert_eq!(r.status, status, "{m} {p}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(msg), "{m} {p}: '{e}' lacks '{msg}'");
        assert!(!e.contains('\n'), "multi-line error: {e}");
    }
    // Nothing changed: no override, no audit row, no build.
    let r = client::call(
        s,
        &Request::ListOverrides {
            include_inactive: true,
        },
    )
    .unwrap();
    assert_eq!(r.json().unwrap(), serde_json::json!([]));
    let store = prae::store::Store::open(d.dir.path().join("prae.db")).unwrap();
    assert!(store.audit_log().unwrap().is_empty());
    assert_eq!(
        client::call(s, &Request::ListBuilds)
            .unwrap()
            .json()
            .unwrap(),
        serde_json::json!([])
    );
    // The socket is mode 0660.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // A second daemon on the same socket is refused.
    let e = prae::daemon::bind_unix(s, None).unwrap_err();
    assert!(e.to_string().contains("already listening"), "{e}");
}

/// Run by `socket_peers_are_told_apart_by_their_credentials` as user nobody: sends the requests
/// named in `PRAE_DMN_AS_NOBODY` (the socket path) and prints the statuses.
#[test]
fn helper_client_as_nobody() {
    let Some(sock) = std::env::var_os("PRAE_DMN_AS_NOBODY") else {
        return;
    };
    let s = Path::new(&sock);
    let set = "{\"scope\":{\"kind\":\"domain\",\"name\":\"x\"},\"spec\":{\"type\":\"exact\",\"profile\":{\"vcpus\":2}},\"reason\":\"r\"}";
    let a = raw(s, "POST", "/v1/predict", Some("{}"));
    let b = raw(s, "POST", "/v1/overrides", Some(set));
    println!("STATUSES {} {} {}", a.status, b.status, b.body);
}

#[test]
fn socket_peers_are_told_apart_by_their_credentials() {
    if prae::daemon::effective_uid() != Some(0) {
        println!("skipped: needs root (to run a client as nobody)");
        return;
    }
    let _g = serial();
    let nobody = 65534;
    let c = Config {
        socket_group: Some(nobody.to_string()),
        ..config(Policy::Off)
    };
    let d = start(c, test_driver(), None, false);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for dir in [
        d.dir.path().to_path_buf(),
        d.socket.parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(std::fs::metadata(&d.socket).unwrap().gid(), nobody);
    // This test binary, copied where nobody can run it (the target directory may be private).
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("daemon-test");
    std::fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .current_dir(bin_dir.path())
        .args([
            "--exact",
            "helper_client_as_nobody",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PRAE_DMN_AS_NOBODY", &d.socket)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find_map(|l| l.split_once("STATUSES ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("no statuses: {out} {}", String::from_utf8_lossy(&o.stderr)));
    // A member of the socket's group may predict but is no admin.
    assert!(line.starts_with("200 403 "), "{line}");
    assert!(line.contains("uid 65534 is not"), "{line}");
    let r = client::call(
        &d.socket,
        &Request::ListOverrides {
            include_inactive: true,
        },
    )
    .unwrap();
    assert_eq!(r.json().unwrap(), serde_json::json!([]));
}

#[test]
fn tcp_needs_the_bearer_token() {
    let _g = serial();
    let token = "s3cret-token-0123456789";
    let mut c = config(Policy::Off);
    c.tcp = Some("127.0.0.1:1".parse().unwrap()); // documents the listener; the harness binds :0
    c.token_file = Some("unused".into());
    let d = start(c, test_driver(), Some(token), true);
    let addr = d.tcp.unwrap();
    let send = |auth: Option<&str>, m: &str, p: &str, body: Option<&str>| {
        let s = std::net::TcpStream::connect(addr).unwrap();
        let h = auth.map(|a| format!("Bearer {a}"));
        let headers: Vec<(&str, &str)> = h.iter().map(|h| ("Authorization", h.as_str())).collect();
        client::exchange(s, m, p, body.map(str::as_bytes), &headers).unwrap()
    };
    let set = "{\"scope\":{\"kind\":\"domain\",\"name\":\"x\"},\"spec\":{\"type\":\"exact\",\"profile\":{\"vcpus\":2}},\"reason\":\"r\"}";
    for auth in [None, Some("wrong-token-0123456789")] {
        assert_eq!(send(auth, "GET", "/v1/health", None).status, 401);
        let r = send(auth, "POST", "/v1/overrides", Some(set));
        assert_eq!(r.status, 401);
        assert!(r.body.contains("bearer token"), "{}", r.body);
    }
    assert_eq!(send(Some(token), "GET", "/v1/overrides", None).body, "[]");
    assert_eq!(send(Some(token), "GET", "/v1/health", None).status, 200);
    assert_eq!(
        send(Some(token), "POST", "/v1/overrides", Some(set)).status,
        201
    );
    let store = prae::store::Store::open(d.dir.path().join("prae.db")).unwrap();
    assert_eq!(store.audit_log().unwrap()[0].who, "tcp token");
}

// ---- interception ----------------------------------------------------------------------

#[test]
fn enforce_rewrites_domains_defined_by_other_clients() {
    let _g = serial();
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    let names = [
        "prae-dmn-enf-opt",
        "prae-dmn-enf-plain",
        "prae-dmn-enf-prae",
    ];
    cleanup(&hv, &names);
    let d = start(config(Policy::Enforce), test_driver(), None, false);
    wait_until("libvirt connected", WAIT, || {
        d.daemon.hypervisor().is_some()
    });
    // Opted out first: events are handled in order, so once the plain one is rewritten the
    // opted-out one has been looked at.
    let opt = domain_xml(names[0], OPT_OUT);
    hv.define(&opt).unwrap();
    hv.define(&domain_xml(names[1], "")).unwrap();
    wait_until("the plain domain rewritten", WAIT, || {
        marks_of(&hv, names[1]).handled
    });
    let v = domain::parse(&hv.domain_xml(names[1], XmlKind::Inactive).unwrap()).unwrap();
    assert_eq!((v.vcpus, v.memory_kib), (2, 2 * 1024 * 1024)); // tier medium
    let o = hv.domain_xml(names[0], XmlKind::Inactive).unwrap();
    assert!(!marks::marks(&o).unwrap().handled);
    assert_eq!(domain::parse(&o).unwrap().vcpus, 1);
    // Defined through the API: rewritten synchronously, and the daemon leaves it alone.
    let r = client::call(
        &d.socket,
        &Request::Define(prae::daemon::api::DefineBody {
            xml: domain_xml(names[2], ""),
            tier: Some(prae::model::Tier::Low),
            pinned: Default::default(),
        }),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(marks_of(&hv, names[2]).handled);
    assert_eq!(
        domain::parse(&hv.domain_xml(names[2], XmlKind::Inactive).unwrap())
            .unwrap()
            .vcpus,
        1
    );
    let m = client::call(&d.socket, &Request::Metrics).unwrap().body;
    let n: u64 = m
        .lines()
        .find(|l| {
            l.starts_with("prae_interceptions_total{policy=\"enforce\",action=\"rewritten\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "{m}");
    // The daemon's own re-define did not loop: the count settles.
    std::thread::sleep(Duration::from_millis(300));
    let again = client::call(&d.socket, &Request::Metrics).unwrap().body;
    let count = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("prae_interceptions_total"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&m), count(&again));
    drop(d);
    cleanup(&hv, &names);
}

#[test]
fn advise_records_the_recommendation_only() {
    let _g = serial();
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    let names = ["prae-dmn-adv"];
    cleanup(&hv, &names);
    let d = start(config(Policy::Advise), test_driver(), None, false);
    wait_until("libvirt connected", WAIT, || {
        d.daemon.hypervisor().is_some()
    });
    hv.define(&domain_xml(names[0], "")).unwrap();
    wait_until("the domain annotated", WAIT, || {
        marks_of(&hv, names[0]).advised
    });
    let x = hv.domain_xml(names[0], XmlKind::Inactive).unwrap();
    let v = domain::parse(&x).unwrap();
    assert_eq!((v.vcpus, v.memory_kib), (1, 524288));
    assert!(x.contains("what=\"vcpu\""), "{x}");
    assert!(!marks::marks(&x).unwrap().handled);
    drop(d);
    cleanup(&hv, &names);
}

#[test]
fn a_domain_running_before_prae_saw_it_is_resized_live_within_its_maximums() {
    let _g = serial();
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    let name = "prae-dmn-live";
    cleanup(&hv, &[name]);
    let xml = format!(
        "<domain type='test'><name>{name}</name><memory unit='KiB'>4194304</memory>\
         <currentMemory unit='KiB'>1048576</currentMemory><vcpu current='1'>4</vcpu>\
         <os><type arch='x86_64'>hvm</type></os></domain>"
    );
    hv.define(&xml).unwrap();
    hv.start(name).unwrap();
    let d = start(config(Policy::Enforce), test_driver(), None, false);
    wait_until("rewritten", WAIT, || marks_of(&hv, name).handled);
    let info = hv.domain_info(name).unwrap();
    assert_eq!((info.vcpus, info.memory_kib), (2, 2 * 1024 * 1024));
    let m = client::call(&d.socket, &Request::Metrics).unwrap().body;
    assert!(m.contains("prae_live_adjustments_total 2\n"), "{m}");
    drop(d);
    let _ = hv.destroy(name);
    cleanup(&hv, &[name]);
}

// ---- reconnect -------------------------------------------------------------------------

/// The test driver behind a switch: while `down`, every call fails as if libvirtd had died.
struct Flaky {
    inner: Libvirt,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn up(&self) -> Result<&Libvirt> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Libvirt(
                "End of file while reading data: Input/output error (test)".into(),
            ))
        } else {
            Ok(&self.inner)
        }
    }
}

impl Hypervisor for Flaky {
    fn uri(&self) -> Result<String> {
        self.up()?.uri()
    }
    fn define(&self, xml: &str) -> Result<String> {
        self.up()?.define(xml)
    }
    fn create(&self, xml: &str) -> Result<String> {
        self.up()?.create(xml)
    }
    fn start(&self, n: &str) -> Result<()> {
        self.up()?.start(n)
    }
    fn shutdown(&self, n: &str) -> Result<()> {
        self.up()?.shutdown(n)
    }
    fn destroy(&self, n: &str) -> Result<()> {
        self.up()?.destroy(n)
    }
    fn undefine(&self, n: &str) -> Result<()> {
        self.up()?.undefine(n)
    }
    fn list_domains(&self) -> Result<Vec<DomainInfo>> {
        self.up()?.list_domains()
    }
    fn domain_info(&self, n: &str) -> Result<DomainInfo> {
        self.up()?.domain_info(n)
    }
    fn domain_xml(&self, n: &str, k: XmlKind) -> Result<String> {
        self.up()?.domain_xml(n, k)
    }
    fn set_vcpus(&self, n: &str, c: u32, s: Scope) -> Result<()> {
        self.up()?.set_vcpus(n, c, s)
    }
    fn set_memory(&self, n: &str, k: u64, s: Scope) -> Result<()> {
        self.up()?.set_memory(n, k, s)
    }
    fn set_disk_iotune(&self, n: &str, d: &str, i: &IoTune, s: Scope) -> Result<()> {
        self.up()?.set_disk_iotune(n, d, i, s)
    }
    fn set_interface_bandwidth(&self, n: &str, i: &str, b: &Bandwidth, s: Scope) -> Result<()> {
        self.up()?.set_interface_bandwidth(n, i, b, s)
    }
    fn node_capacity(&self) -> Result<HostCapacity> {
        self.up()?.node_capacity()
    }
    fn node_cpu_stats(&self) -> Result<NodeCpuStats> {
        self.up()?.node_cpu_stats()
    }
    fn node_memory_stats(&self) -> Result<NodeMemoryStats> {
        self.up()?.node_memory_stats()
    }
    fn all_domain_stats(&self) -> Result<Vec<DomainStats>> {
        self.up()?.all_domain_stats()
    }
    fn lifecycle_events(&self) -> Result<EventStream> {
        self.up()?.lifecycle_events()
    }
    fn snapshot_create(&self, d: &str, x: &str) -> Result<String> {
        self.up()?.snapshot_create(d, x)
    }
    fn snapshot_list(&self, d: &str) -> Result<Vec<String>> {
        self.up()?.snapshot_list(d)
    }
    fn snapshot_revert(&self, d: &str, s: &str) -> Result<()> {
        self.up()?.snapshot_revert(d, s)
    }
    fn snapshot_delete(&self, d: &str, s: &str) -> Result<()> {
        self.up()?.snapshot_delete(d, s)
    }
    fn pool_list(&self) -> Result<Vec<PoolInfo>> {
        self.up()?.pool_list()
    }
    fn pool_define_start(&self, x: &str) -> Result<String> {
        self.up()?.pool_define_start(x)
    }
    fn pool_refresh(&self, p: &str) -> Result<()> {
        self.up()?.pool_refresh(p)
    }
    fn pool_remove(&self, p: &str) -> Result<()> {
        self.up()?.pool_remove(p)
    }
    fn volume_list(&self, p: &str) -> Result<Vec<VolumeInfo>> {
        self.up()?.volume_list(p)
    }
    fn volume_create(&self, p: &str, x: &str) -> Result<VolumeInfo> {
        self.up()?.volume_create(p, x)
    }
    fn volume_delete(&self, p: &str, v: &str) -> Result<()> {
        self.up()?.volume_delete(p, v)
    }
    fn agent_command(&self, d: &str, c: &str, t: i32) -> Result<String> {
        self.up()?.agent_command(d, c, t)
    }
    fn choose_virt_type(&self) -> AccelChoice {
        self.inner.choose_virt_type()
    }
}

#[test]
fn a_lost_libvirt_is_reported_predictions_go_on_and_the_rescan_catches_up() {
    let _g = serial();
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    let names = ["prae-dmn-while-down"];
    cleanup(&hv, &names);
    let down = Arc::new(AtomicBool::new(false));
    let down2 = down.clone();
    let connector: prae::daemon::Connector = Box::new(move || {
        if down2.load(Ordering::SeqCst) {
            return Err(Error::Libvirt(
                "cannot connect: connection refused (test)".into(),
            ));
        }
        Ok(Arc::new(Flaky {
            inner: Libvirt::open(Some("test:///default"))?,
            down: down2.clone(),
        }) as Arc<dyn Hypervisor>)
    });
    let d = start(config(Policy::Enforce), connector, None, false);
    let health = |s: &Path| client::call(s, &Request::Health).unwrap().json().unwrap();
    wait_until("connected", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == true
    });
    down.store(true, Ordering::SeqCst);
    wait_until("the loss reported", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == false
    });
    // Predictions are still served; what needs libvirt says why it cannot.
    let p = client::call(&d.socket, &Request::Predict(Default::default())).unwrap();
    assert_eq!(p.status, 200, "{}", p.body);
    let st = client::call(&d.socket, &Request::Status).unwrap();
    assert_eq!(st.status, 503);
    assert!(st.body.contains("reconnecting"), "{}", st.body);
    // A domain defined while the daemon cannot see libvirt: its DEFINED event is lost.
    hv.define(&domain_xml(names[0], "")).unwrap();
    down.store(false, Ordering::SeqCst);
    wait_until("reconnected", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == true
    });
    wait_until("the rescan rewrote it", WAIT, || {
        marks_of(&hv, names[0]).handled
    });
    let m = client::call(&d.socket, &Request::Metrics).unwrap().body;
    assert!(m.contains("prae_libvirt_disconnects_total 1\n"), "{m}");
    drop(d);
    cleanup(&hv, &names);
}

// ---- sampling, status, hook ------------------------------------------------------------

#[test]
fn sampling_writes_history_and_status_shows_domains() {
    let _g = serial();
    let c = Config {
        sample_interval_s: 1,
        ..config(Policy::Off)
    };
    let d = start(c, test_driver(), None, false);
    let written = |s: &Path| -> u64 {
        let m = client::call(s, &Request::Metrics).unwrap().body;
        m.lines()
            .find_map(|l| l.strip_prefix("prae_samples_written_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    wait_until("samples written", WAIT, || written(&d.socket) > 0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(["status", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("DOMAIN") && text.contains("RECOMMENDATION"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("test ")), "{text}");
    d.stop().unwrap();
    // The queue was drained into the store before `run` returned.
    // (The daemon's db lives in the harness's temporary directory, gone with it.)
}

#[test]
fn the_shipped_config_parses() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prae.toml");
    let c = Config::from_toml(&std::fs::read_to_string(&p).unwrap(), "contrib/prae.toml").unwrap();
    assert_eq!(
        (c.uri.as_str(), c.policy),
        ("qemu:///system", Policy::Advise)
    );
    assert_eq!(c.socket_group.as_deref(), Some("libvirt"));
}

#[test]
fn the_prepare_hook_refuses_unhandled_domains_under_enforce() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prae.toml");
    let run = |policy: &str, op: &str, xml: &str| {
        std::fs::write(&conf, format!("policy = \"{policy}\"\n")).unwrap();
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prae"))
            .args(["hook", "--config"])
            .arg(&conf)
            .args(["vm1", op, "begin", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let _ = c.stdin.take().unwrap().write_all(xml.as_bytes());
        let o = c.wait_with_output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let plain = domain_xml("vm1", "");
    let (ok, err) = run("enforce", "prepare", &plain);
    assert!(!ok);
    assert!(
        err.starts_with("prae: domain 'vm1': prae policy is enforce"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(run("advise", "prepare", &plain).0);
    assert!(run("enforce", "started", &plain).0);
    assert!(run("enforce", "prepare", &domain_xml("vm1", OPT_OUT)).0);
    let alloc = prae::engine::predict(&prae::engine::PredictRequest {
        package: None,
        os: None,
        tier: None,
        pinned: Default::default(),
    })
    .unwrap();
    let rewritten = domain::rewrite(&plain, &alloc).unwrap().xml;
    assert!(run("enforce", "prepare", &rewritten).0);
    let (ok, err) = run("sometimes", "prepare", &plain);
    assert!(!ok && err.contains("sometimes"), "{err}");
}
