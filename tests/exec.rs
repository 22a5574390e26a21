//! Command orchestration against libvirt's in-process test driver (`test:///default`): the
//! domain, its live vCPU and memory changes, node capacity and the store are real; only the
//! guest is simulated (the test driver has no guest agent and no balloon statistics).
//!
//! The simulated guest ([`SimGuest`]) answers `guest-exec` like qemu-ga and decides the
//! command's fate the way a Linux guest without swap would: a command that needs more memory
//! than the domain has *when it runs* is killed (signal 9). Its balloon statistics report what
//! the running command uses, so the feedback loop sees it.

use prae::exec::{self, Model, Phase, Request, analysis};
use prae::hypervisor::*;
use prae::model::{Bandwidth, HostCapacity, IoTune, Tier};
use prae::store::exec::{NewQueued, QueueState, Reservation};
use prae::store::{Store, SubjectKind};
use prae::{Error, Result};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const MIB: u64 = 1024;
/// What the simulated guest uses before any command runs.
const GUEST_BASE_KIB: u64 = 80 * MIB;

/// A command the simulated guest is running.
#[derive(Debug, Clone)]
struct Running {
    need_kib: u64,
    polls: u32,
}

/// `test:///default` with a simulated guest agent and balloon statistics.
struct SimGuest {
    inner: Libvirt,
    /// What each program of the commands run needs, KiB (as a real program would touch it).
    need: fn(&[String]) -> u64,
    running: Mutex<Option<Running>>,
    /// Memory the domain had when each command started, KiB.
    started_with: Mutex<Vec<u64>>,
    /// Which guest CPUs are online (the guest onlines a plugged CPU only when told).
    online: Mutex<[bool; 2]>,
    /// The simulated host's free memory, KiB (the test driver's node figures are fixed and
    /// tiny).
    host_free_kib: u64,
}

static SEQ: AtomicU32 = AtomicU32::new(0);
/// Domains in the order their commands started, and `<domain> end` when they ended (all
/// simulated guests of this process).
static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A running transient domain on the test driver: 1 of 2 vCPUs, 192 of 1024 MiB.
fn domain(hv: &SimGuest) -> String {
    let name = format!(
        "prae-exec-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let xml = format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>1024</memory>\
         <currentMemory unit='MiB'>192</currentMemory><vcpu current='1'>2</vcpu>\
         <os><type>hvm</type></os></domain>"
    );
    hv.create(&xml).expect("create the test domain");
    name
}

fn sim(need: fn(&[String]) -> u64) -> SimGuest {
    SimGuest {
        inner: Libvirt::open(Some(DEFAULT_URI)).expect("open test:///default"),
        need,
        running: Mutex::new(None),
        started_with: Mutex::new(Vec::new()),
        online: Mutex::new([true, false]),
        host_free_kib: 4096 * MIB,
    }
}

/// `dd ... bs=SIZE` touches SIZE; anything else 1 MiB.
fn dd_need(argv: &[String]) -> u64 {
    analysis::analyze(argv)
        .ok()
        .and_then(|f| f.size_kib)
        .unwrap_or(MIB)
}

impl SimGuest {
    fn agent(&self, domain: &str, cmd: &Value) -> Result<String> {
        let reply = match cmd["execute"].as_str().unwrap_or("") {
            "guest-exec" => {
                STARTED.lock().unwrap().push(domain.to_string());
                let a = &cmd["arguments"];
                let mut argv = vec![a["path"].as_str().unwrap_or("").to_string()];
                argv.extend(
                    a["arg"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap_or("").to_string()),
                );
                let mem = self.inner.domain_info(domain)?.memory_kib;
                self.started_with.lock().unwrap().push(mem);
                *self.running.lock().unwrap() = Some(Running {
                    need_kib: (self.need)(&argv),
                    polls: 0,
                });
                json!({"return": {"pid": 42}})
            }
            "guest-exec-status" => {
                let mut r = self.running.lock().unwrap();
                let run = r.as_mut().expect("exec-status without exec");
                run.polls += 1;
                if run.polls < 4 {
                    json!({"return": {"exited": false}})
                } else {
                    let mem = self.inner.domain_info(domain)?.memory_kib;
                    let killed = GUEST_BASE_KIB + run.need_kib > mem;
                    *r = None;
                    STARTED.lock().unwrap().push(format!("{domain} end"));
                    if killed {
                        json!({"return": {"exited": true, "signal": 9,
                                          "err-data": "S2lsbGVk"}})
                    } else {
                        json!({"return": {"exited": true, "exitcode": 0,
                                          "out-data": "b2sK"}})
                    }
                }
            }
            "guest-get-vcpus" => {
                let n = self.inner.domain_info(domain)?.vcpus as usize;
                let online = self.online.lock().unwrap();
                let cpus: Vec<Value> = (0..n.min(2))
                    .map(|i| json!({"logical-id": i, "online": online[i], "can-offline": i > 0}))
                    .collect();
                json!({"return": cpus})
            }
            "guest-set-vcpus" => {
                let mut online = self.online.lock().unwrap();
                let list = cmd["arguments"]["vcpus"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for c in &list {
                    let i = c["logical-id"].as_u64().unwrap_or(0) as usize;
                    online[i.min(1)] = c["online"].as_bool().unwrap_or(false);
                }
                json!({"return": list.len()})
            }
            other => return Err(Error::Unsupported(format!("sim agent: {other}"))),
        };
        Ok(reply.to_string())
    }
}

impl Hypervisor for SimGuest {
    fn uri(&self) -> Result<String> {
        self.inner.uri()
    }
    fn define(&self, xml: &str) -> Result<String> {
        self.inner.define(xml)
    }
    fn create(&self, xml: &str) -> Result<String> {
        self.inner.create(xml)
    }
    fn start(&self, name: &str) -> Result<()> {
        self.inner.start(name)
    }
    fn shutdown(&self, name: &str) -> Result<()> {
        self.inner.shutdown(name)
    }
    fn destroy(&self, name: &str) -> Result<()> {
        self.inner.destroy(name)
    }
    fn undefine(&self, name: &str) -> Result<()> {
        self.inner.undefine(name)
    }
    fn list_domains(&self) -> Result<Vec<DomainInfo>> {
        self.inner.list_domains()
    }
    fn domain_info(&self, name: &str) -> Result<DomainInfo> {
        self.inner.domain_info(name)
    }
    fn domain_xml(&self, name: &str, kind: XmlKind) -> Result<String> {
        self.inner.domain_xml(name, kind)
    }
    fn set_vcpus(&self, name: &str, count: u32, scope: Scope) -> Result<()> {
        self.inner.set_vcpus(name, count, scope)
    }
    fn set_memory(&self, name: &str, kib: u64, scope: Scope) -> Result<()> {
        self.inner.set_memory(name, kib, scope)
    }
    fn set_disk_iotune(&self, name: &str, disk: &str, io: &IoTune, scope: Scope) -> Result<()> {
        self.inner.set_disk_iotune(name, disk, io, scope)
    }
    fn set_interface_bandwidth(
        &self,
        name: &str,
        iface: &str,
        bw: &Bandwidth,
        scope: Scope,
    ) -> Result<()> {
        self.inner.set_interface_bandwidth(name, iface, bw, scope)
    }
    fn node_capacity(&self) -> Result<HostCapacity> {
        self.inner.node_capacity()
    }
    fn node_cpu_stats(&self) -> Result<NodeCpuStats> {
        self.inner.node_cpu_stats()
    }
    fn node_memory_stats(&self) -> Result<NodeMemoryStats> {
        Ok(NodeMemoryStats {
            total_kib: 2 * self.host_free_kib,
            free_kib: self.host_free_kib,
            buffers_kib: 0,
            cached_kib: 0,
        })
    }
    /// The test driver's records plus balloon figures of the simulated guest.
    fn all_domain_stats(&self) -> Result<Vec<DomainStats>> {
        let mut all = self.inner.all_domain_stats()?;
        let extra = self.running.lock().unwrap().as_ref().map_or(0, |r| {
            // The command's memory grows over its first polls.
            r.need_kib * u64::from(r.polls.min(2)) / 2
        });
        for s in &mut all {
            if let Ok(info) = self.inner.domain_info(&s.name) {
                let used = (GUEST_BASE_KIB + extra).min(info.memory_kib);
                s.balloon_available_kib = Some(info.memory_kib);
                s.balloon_usable_kib = Some(info.memory_kib - used);
                s.cpu_time_ns = Some(0);
            }
        }
        Ok(all)
    }
    fn lifecycle_events(&self) -> Result<EventStream> {
        self.inner.lifecycle_events()
    }
    fn snapshot_create(&self, domain: &str, xml: &str) -> Result<String> {
        self.inner.snapshot_create(domain, xml)
    }
    fn snapshot_list(&self, domain: &str) -> Result<Vec<String>> {
        self.inner.snapshot_list(domain)
    }
    fn snapshot_revert(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.inner.snapshot_revert(domain, snapshot)
    }
    fn snapshot_delete(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.inner.snapshot_delete(domain, snapshot)
    }
    fn pool_list(&self) -> Result<Vec<PoolInfo>> {
        self.inner.pool_list()
    }
    fn pool_define_start(&self, xml: &str) -> Result<String> {
        self.inner.pool_define_start(xml)
    }
    fn pool_refresh(&self, pool: &str) -> Result<()> {
        self.inner.pool_refresh(pool)
    }
    fn pool_remove(&self, pool: &str) -> Result<()> {
        self.inner.pool_remove(pool)
    }
    fn volume_list(&self, pool: &str) -> Result<Vec<VolumeInfo>> {
        self.inner.volume_list(pool)
    }
    fn volume_create(&self, pool: &str, xml: &str) -> Result<VolumeInfo> {
        self.inner.volume_create(pool, xml)
    }
    fn volume_delete(&self, pool: &str, volume: &str) -> Result<()> {
        self.inner.volume_delete(pool, volume)
    }
    fn agent_command(&self, domain: &str, command_json: &str, _timeout: i32) -> Result<String> {
        let cmd: Value = serde_json::from_str(command_json)
            .map_err(|e| Error::Invalid(format!("sim agent: bad JSON: {e}")))?;
        self.agent(domain, &cmd)
    }
    fn choose_virt_type(&self) -> AccelChoice {
        self.inner.choose_virt_type()
    }
}

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn orchestrator<'a>(hv: &'a SimGuest, store: &'a mut Store) -> exec::Orchestrator<'a> {
    exec::Orchestrator {
        hv,
        store,
        poll: Duration::from_millis(20),
        sample_every: Duration::ZERO,
    }
}

fn request(domain: &str, cmd: &[&str]) -> Request {
    let mut r = Request::new(domain, argv(cmd));
    r.tier = Tier::Low;
    r.queue_timeout = Duration::from_millis(300);
    r
}

const DD300: &[&str] = &["dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"];

#[test]
fn memory_is_added_before_the_command_and_restored_after() {
    let hv = sim(dd_need);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let model = exec::model(&store).unwrap();
    let report = orchestrator(&hv, &mut store)
        .run(&request(&name, DD300), &model)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.stdout, "ok\n");
    let started_with = hv.started_with.lock().unwrap()[0];
    assert!(
        started_with >= GUEST_BASE_KIB + 300 * MIB,
        "the command started with {started_with} KiB"
    );
    let before: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.phase == Phase::Before)
        .collect();
    assert_eq!(before.len(), 1, "{:?}", report.changes);
    assert_eq!(
        (before[0].what.as_str(), before[0].from.as_str()),
        ("memory", "192MiB")
    );
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.phase == Phase::After && c.to == "192MiB")
    );
    assert_eq!(hv.domain_info(&name).unwrap().memory_kib, 192 * MIB);
    // What it used is history now, and the queue entry is done.
    assert!(report.measured);
    assert!(
        (report.used.memory_kib - (300 * MIB) as f64).abs() < 1.0,
        "{:?}",
        report.used
    );
    let subject = store
        .find_subject(SubjectKind::Command, &analysis::join_key(&argv(DD300)))
        .unwrap()
        .expect("history subject of the command");
    assert_eq!(store.sample_count(subject).unwrap(), 1);
    assert_eq!(
        store.queue_get(report.queue_id).unwrap().state,
        QueueState::Done
    );
    let learned = exec::model(&store).unwrap();
    assert_eq!(learned.observations().len(), model.observations().len() + 1);
    hv.destroy(&name).unwrap();
}

#[test]
fn without_preallocation_the_same_command_is_killed() {
    let hv = sim(dd_need);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let model = exec::model(&store).unwrap();
    let mut req = request(&name, DD300);
    req.preallocate = false;
    let report = orchestrator(&hv, &mut store).run(&req, &model).unwrap();
    assert_eq!(report.signal, Some(9), "{report:?}");
    assert!(report.changes.is_empty() && report.plan.is_none());
    assert_eq!(
        store.queue_get(report.queue_id).unwrap().state,
        QueueState::Failed
    );
    hv.destroy(&name).unwrap();
}

#[test]
fn usage_near_the_allocation_grows_memory_while_it_runs() {
    // No evidence at all (an empty model predicts nothing) for a program that needs 600 MiB.
    let hv = sim(|_| 600 * MIB);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let model = Model::default();
    let report = orchestrator(&hv, &mut store)
        .run(&request(&name, &["sort", "/data/big"]), &model)
        .unwrap();
    let grew: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.phase == Phase::During)
        .collect();
    assert!(!grew.is_empty(), "{:?}", report.changes);
    assert!(grew.iter().all(|c| c.error.is_none()), "{grew:?}");
    assert_eq!(hv.domain_info(&name).unwrap().memory_kib, 192 * MIB);
    hv.destroy(&name).unwrap();
}

#[test]
fn vcpus_are_plugged_and_onlined_for_a_parallel_command() {
    let hv = sim(|_| MIB);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let obs = exec::calibration::parse(
        &format!(
            "{}\n2.0\t1024\t0\t0\t0\t10\txargs -P 2 -n 1 gzip\n",
            exec::calibration::HEADER
        ),
        "t",
    )
    .unwrap();
    let report = orchestrator(&hv, &mut store)
        .run(
            &request(&name, &["xargs", "-P", "2", "-n", "1", "gzip"]),
            &Model::new(obs),
        )
        .unwrap();
    assert!(report.ok());
    let host_cpus = hv.node_capacity().unwrap().cpus;
    if host_cpus >= 2 {
        assert_eq!(report.plan.as_ref().unwrap().vcpus, 2, "{report:?}");
        assert!(
            report
                .changes
                .iter()
                .any(|c| c.what == "guest cpus online" && c.to == "[1]"),
            "{:?}",
            report.changes
        );
        assert!(
            report
                .changes
                .iter()
                .any(|c| c.phase == Phase::After && c.what == "vcpus")
        );
    }
    assert_eq!(hv.domain_info(&name).unwrap().vcpus, 1);
    assert_eq!(
        *hv.online.lock().unwrap(),
        [true, false],
        "CPU 1 left online"
    );
    hv.destroy(&name).unwrap();
}

#[test]
fn missing_domain_reservation_and_command_are_named() {
    let hv = sim(dd_need);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let model = exec::model(&store).unwrap();
    let mut o = orchestrator(&hv, &mut store);
    let e = o
        .run(&request("prae-exec-nope", &["true"]), &model)
        .unwrap_err();
    assert_eq!(e.to_string(), "domain 'prae-exec-nope' not found");
    let mut r = request(&name, &["true"]);
    r.reservation = Some("ghost".into());
    assert_eq!(
        o.run(&r, &model).unwrap_err().to_string(),
        "reservation 'ghost' not found"
    );
    let e = o.run(&request(&name, &[]), &model).unwrap_err().to_string();
    assert!(e.contains("no command given"), "{e}");
    // Nothing was queued for requests that could not run.
    assert!(store.queue_list(&[]).unwrap().is_empty());
    hv.destroy(&name).unwrap();
}

#[test]
fn a_reservation_keeps_its_memory_and_its_holder_may_use_it() {
    let hv = sim(dd_need);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let free = hv.node_memory_stats().unwrap().free_kib;
    store
        .reservation_add(&Reservation {
            name: "all-of-it".into(),
            user: "ops".into(),
            vcpus: 0,
            memory_kib: free,
            starts_at: 0,
            ends_at: None,
        })
        .unwrap();
    let model = exec::model(&store).unwrap();
    let e = orchestrator(&hv, &mut store)
        .run(&request(&name, DD300), &model)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("timed out: ") && e.contains("more memory"),
        "{e}"
    );
    assert_eq!(hv.domain_info(&name).unwrap().memory_kib, 192 * MIB);
    let q = store.queue_list(&[]).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].state, QueueState::Cancelled);
    let mut r = request(&name, DD300);
    r.reservation = Some("all-of-it".into());
    let report = orchestrator(&hv, &mut store).run(&r, &model).unwrap();
    assert!(report.ok(), "{report:?}");
    hv.destroy(&name).unwrap();
}

#[test]
fn higher_priority_waiting_commands_go_first_and_dead_waiters_are_dropped() {
    let hv = sim(dd_need);
    let name = domain(&hv);
    let mut store = Store::in_memory().unwrap();
    let model = exec::model(&store).unwrap();
    let ahead = |owner: &str| NewQueued {
        domain: name.clone(),
        argv: argv(&["make", "-j2"]),
        priority: 10,
        user: "other".into(),
        reservation: None,
        owner: Some(owner.into()),
    };
    // A live waiter (this process) with a higher priority keeps ours waiting.
    let live = prae::build::owner::Owner::current().token();
    let live_id = store.queue_push(&ahead(&live)).unwrap();
    let e = orchestrator(&hv, &mut store)
        .run(&request(&name, &["true"]), &model)
        .unwrap_err()
        .to_string();
    assert!(e.contains("commands ahead of it in the queue"), "{e}");
    assert_eq!(store.queue_get(live_id).unwrap().state, QueueState::Waiting);
    store
        .queue_finish(live_id, QueueState::Cancelled, "test")
        .unwrap();
    // A waiter whose process is gone is dropped, a command whose process died while it ran
    // holds nothing any more, and ours runs.
    let dead_id = store.queue_push(&ahead("999999999.1.0")).unwrap();
    let dead_running = store.queue_push(&ahead("999999998.1.0")).unwrap();
    let free = hv.node_memory_stats().unwrap().free_kib;
    assert!(store.queue_start(dead_running, 0, free).unwrap());
    let report = orchestrator(&hv, &mut store)
        .run(&request(&name, &["true"]), &model)
        .unwrap();
    assert!(report.ok());
    assert_eq!(
        store.queue_get(dead_id).unwrap().state,
        QueueState::Cancelled
    );
    assert_eq!(
        store.queue_get(dead_running).unwrap().state,
        QueueState::Cancelled
    );
    hv.destroy(&name).unwrap();
}

/// `prae` with a private database, against the test driver.
fn prae(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(args)
        .env_remove("PRAE_URI")
        .env("PRAE_DB", db)
        .output()
        .expect("run prae")
}

/// One line on stderr naming `needle`, exit 1, nothing on stdout.
fn assert_fails(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("prae: ") && err.contains(needle), "{err}");
}

#[test]
fn cli_names_what_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prae.db");
    assert_fails(
        &prae(&db, &["exec", "--domain", "test", "--"]),
        "no command given",
    );
    assert_fails(
        &prae(&db, &["exec", "--domain", "prae-exec-nope", "--", "true"]),
        "domain 'prae-exec-nope' not found",
    );
    assert_fails(
        &prae(
            &db,
            &[
                "exec",
                "--domain",
                "test",
                "--reserve",
                "ghost",
                "--",
                "true",
            ],
        ),
        "reservation 'ghost' not found",
    );
    assert_fails(
        &prae(&db, &["reserve", "remove", "ghost"]),
        "reservation 'ghost' not found",
    );
    assert_fails(&prae(&db, &["reserve", "add", "empty"]), "holds nothing");
}

#[test]
fn cli_reservations_persist_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prae.db");
    let out = prae(
        &db,
        &[
            "reserve", "add", "nightly", "--memory", "1GiB", "--vcpus", "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_fails(
        &prae(&db, &["reserve", "add", "nightly", "--memory", "1GiB"]),
        "reservation 'nightly' already exists",
    );
    let list = String::from_utf8_lossy(&prae(&db, &["reserve", "list"]).stdout).into_owned();
    assert!(
        list.contains("nightly") && list.contains("1GiB") && list.contains("(active)"),
        "{list}"
    );
    assert!(
        prae(&db, &["reserve", "remove", "nightly"])
            .status
            .success()
    );
    let list = String::from_utf8_lossy(&prae(&db, &["reserve", "list"]).stdout).into_owned();
    assert!(!list.contains("nightly"), "{list}");
}

#[test]
fn a_domain_the_command_names_is_started_first() {
    let hv = sim(|_| MIB);
    let name = domain(&hv);
    let dep = format!("{name}-db");
    let xml = format!(
        "<domain type='test'><name>{dep}</name><memory unit='MiB'>128</memory>\
         <vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    );
    hv.define(&xml).unwrap();
    assert_eq!(hv.domain_info(&dep).unwrap().state, DomainState::Shutoff);
    let mut store = Store::in_memory().unwrap();
    let target = format!("root@{dep}");
    let report = orchestrator(&hv, &mut store)
        .run(
            &request(&name, &["ssh", &target, "true"]),
            &Model::default(),
        )
        .unwrap();
    assert_eq!(
        report.prediction.dependencies,
        vec![analysis::Dependency::Domain(dep.clone())]
    );
    assert_eq!(hv.domain_info(&dep).unwrap().state, DomainState::Running);
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.what == format!("dependency domain {dep}") && c.to == "running"),
        "{:?}",
        report.changes
    );
    hv.destroy(&dep).unwrap();
    hv.undefine(&dep).unwrap();
    hv.destroy(&name).unwrap();
}

#[test]
fn a_disk_limit_below_the_predicted_rate_is_raised_for_the_command_only() {
    let hv = sim(|_| MIB);
    let name = format!("prae-exec-{}-io", std::process::id());
    let xml = format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>1024</memory>\
         <currentMemory unit='MiB'>192</currentMemory><vcpu current='1'>2</vcpu>\
         <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
         <source file='/guest/{name}.img'/><target dev='vda' bus='virtio'/>\
         <iotune><total_bytes_sec>1000000</total_bytes_sec></iotune></disk></devices></domain>"
    );
    hv.create(&xml).unwrap();
    let cmd = ["dd", "if=/dev/zero", "of=/var/tmp/x", "bs=1M", "count=100"];
    let obs = exec::calibration::parse(
        &format!(
            "{}\n1.0\t2048\t0\t100000000\t0\t10\t{}\n",
            exec::calibration::HEADER,
            analysis::join_key(&argv(&cmd))
        ),
        "t",
    )
    .unwrap();
    let mut store = Store::in_memory().unwrap();
    let report = orchestrator(&hv, &mut store)
        .run(&request(&name, &cmd), &Model::new(obs))
        .unwrap();
    let io: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.what == "disk vda iotune")
        .map(|c| (c.phase, c.to.as_str(), c.error.is_none()))
        .collect();
    assert_eq!(
        io,
        vec![
            (Phase::Before, "total 12000000 B/s", true),
            (Phase::After, "total 1000000 B/s", true)
        ],
        "{:?}",
        report.changes
    );
    let live = hv.domain_xml(&name, XmlKind::Live).unwrap();
    assert!(
        live.contains("<total_bytes_sec>1000000</total_bytes_sec>"),
        "{live}"
    );
    hv.destroy(&name).unwrap();
}

#[test]
fn more_commands_than_the_host_holds_run_one_at_a_time_by_priority_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prae.db");
    let mut store = Store::open(&db).unwrap();
    // A running command (of this live process) holds all the host's room.
    let blocker = store
        .queue_push(&NewQueued {
            domain: "elsewhere".into(),
            argv: argv(&["make"]),
            priority: 100,
            user: "other".into(),
            reservation: None,
            owner: Some(prae::build::owner::Owner::current().token()),
        })
        .unwrap();
    assert!(store.queue_start(blocker, 0, 500 * MIB).unwrap());
    let mut threads = Vec::new();
    let mut names = Vec::new();
    for prio in [1, 5, 3] {
        let db = db.clone();
        let mut hv = sim(dd_need);
        hv.host_free_kib = 500 * MIB;
        let name = domain(&hv);
        names.push((prio, name.clone()));
        threads.push(std::thread::spawn(move || {
            let mut store = Store::open(&db).unwrap();
            let model = exec::model(&store).unwrap();
            let mut r = request(&name, DD300);
            r.priority = prio;
            r.queue_timeout = Duration::from_secs(60);
            let report = orchestrator(&hv, &mut store).run(&r, &model);
            hv.destroy(&name).unwrap();
            report
        }));
    }
    // All three wait behind the blocker; then it ends.
    let t = std::time::Instant::now();
    while store.queue_list(&[QueueState::Waiting]).unwrap().len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the commands did not queue"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    store.queue_finish(blocker, QueueState::Done, "{}").unwrap();
    for t in threads {
        let report = t.join().unwrap().unwrap();
        assert!(report.ok(), "{report:?}");
    }
    names.sort_by_key(|(p, _)| -p);
    // Highest priority first, and each ends before the next starts.
    let expected: Vec<String> = names
        .into_iter()
        .flat_map(|(_, n)| [n.clone(), format!("{n} end")])
        .collect();
    let seen: Vec<String> = STARTED
        .lock()
        .unwrap()
        .iter()
        .filter(|d| expected.contains(d))
        .cloned()
        .collect();
    assert_eq!(seen, expected, "out of priority order, or two ran at once");
    let states: Vec<QueueState> = store
        .queue_list(&[])
        .unwrap()
        .iter()
        .map(|q| q.state)
        .collect();
    assert_eq!(states, vec![QueueState::Done; 4], "a command was lost");
}
