//! The orchestrator: queue, pre-allocate, run through the guest agent, grow, restore, record.

use super::analysis::{self, Features, Model, Prediction, Usage};
use super::plan::{self, Baseline, Plan};
use crate::build::guest::Agent;
use crate::build::owner::{self, Owner};
use crate::hypervisor::{DomainState, DomainStats, Hypervisor, Scope, XmlKind};
use crate::model::{IoTune, Tier, UsageSample};
use crate::store::exec::{NewQueued, QueueState};
use crate::store::{Fields, Store, SubjectKind};
use crate::{Error, Result, units};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, Instant};

/// One command to run in a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub domain: String,
    /// The argument vector: program then arguments, passed to `guest-exec` as such.
    pub argv: Vec<String>,
    /// Higher runs first.
    pub priority: i32,
    pub tier: Tier,
    /// A reservation whose resources this command may use.
    pub reservation: Option<String>,
    /// Who asks (queue rows, audit).
    pub user: String,
    /// Bytes for the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// The longest the command may run.
    pub timeout: Duration,
    /// The longest the command may wait in the queue.
    pub queue_timeout: Duration,
    /// `false` runs the command with the domain as it is (for comparisons): nothing changed.
    pub preallocate: bool,
}

impl Request {
    pub fn new(domain: impl Into<String>, argv: Vec<String>) -> Request {
        Request {
            domain: domain.into(),
            argv,
            priority: 0,
            tier: Tier::Medium,
            reservation: None,
            user: crate::store::current_user(),
            stdin: None,
            timeout: Duration::from_secs(3600),
            queue_timeout: Duration::from_secs(3600),
            preallocate: true,
        }
    }
}

/// When a change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the command started (pre-allocation).
    Before,
    /// While it ran (the feedback loop).
    During,
    /// After it ended (restoring the baseline).
    After,
}

/// One change made to the domain (or attempted: `error` says why it did not happen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub phase: Phase,
    pub what: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run did and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub queue_id: i64,
    pub domain: String,
    pub argv: Vec<String>,
    pub features: Features,
    pub prediction: Prediction,
    /// The prediction at the request's tier.
    pub need: Usage,
    pub baseline: Baseline,
    /// The allocation the command started with (`None`: not pre-allocated).
    pub plan: Option<Plan>,
    pub changes: Vec<Change>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    /// What the command used, measured from the domain's stats.
    pub used: Usage,
    /// Which fields of `used` were measured (the test driver reports none).
    pub measured: bool,
    pub waited_s: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none()
    }
}

/// What pre-allocation changed beyond vCPUs and memory, to put back afterwards.
#[derive(Debug, Default)]
struct Undo {
    /// Guest CPUs onlined through the agent.
    onlined: Vec<i64>,
    /// Disks whose limits were raised, with their limits before.
    raised: Vec<(String, IoTune)>,
}

/// Runs commands in running domains over a [`Hypervisor`] and a [`Store`].
pub struct Orchestrator<'a> {
    pub hv: &'a dyn Hypervisor,
    pub store: &'a mut Store,
    /// How often the queue is polled while waiting.
    pub poll: Duration,
    /// How often stats are read while the command runs.
    pub sample_every: Duration,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The record of `name` in all-domain stats (an empty record when the driver has none).
fn stats_of(hv: &dyn Hypervisor, name: &str) -> DomainStats {
    hv.all_domain_stats()
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.name == name))
        .unwrap_or_default()
}

/// Running totals while a command runs.
#[derive(Debug, Default)]
struct Watch {
    before: DomainStats,
    last: DomainStats,
    used_before: Option<u64>,
    peak_used: Option<u64>,
}

impl Watch {
    fn see(&mut self, s: DomainStats) {
        if let Some(u) = crate::store::live::memory_used_kib(&s) {
            self.peak_used = Some(self.peak_used.map_or(u, |p| p.max(u)));
        }
        self.last = s;
    }

    fn usage(&self, elapsed: f64) -> (Usage, Fields) {
        let mut fields = Fields::default();
        let mut u = Usage {
            duration_s: elapsed,
            ..Usage::default()
        };
        if let (Some(a), Some(b)) = (self.before.cpu_time_ns, self.last.cpu_time_ns)
            && b >= a
            && elapsed > 0.0
        {
            u.cpu_cores = (b - a) as f64 / 1e9 / elapsed;
            fields = fields.union(Fields::CPU_TIME);
        }
        if let (Some(a), Some(p)) = (self.used_before, self.peak_used) {
            u.memory_kib = p.saturating_sub(a) as f64;
            fields = fields.union(Fields::MEMORY);
        }
        let sum = |s: &DomainStats, f: fn(&crate::hypervisor::BlockStats) -> u64| -> u64 {
            s.blocks.iter().map(f).sum()
        };
        if !self.before.blocks.is_empty() {
            u.disk_read_bytes = sum(&self.last, |b| b.rd_bytes)
                .saturating_sub(sum(&self.before, |b| b.rd_bytes))
                as f64;
            u.disk_write_bytes = sum(&self.last, |b| b.wr_bytes)
                .saturating_sub(sum(&self.before, |b| b.wr_bytes))
                as f64;
            fields = fields.union(Fields::DISK_READ).union(Fields::DISK_WRITE);
        }
        if !self.before.nets.is_empty() {
            let n = |s: &DomainStats| s.nets.iter().map(|n| n.rx_bytes + n.tx_bytes).sum::<u64>();
            u.net_bytes = n(&self.last).saturating_sub(n(&self.before)) as f64;
            fields = fields.union(Fields::NET_RX);
        }
        (u, fields)
    }
}

impl Orchestrator<'_> {
    /// Validates `req`, predicts, waits for its turn and room, pre-allocates, runs the command,
    /// restores the baseline and records what it used. The command's own failure is in the
    /// report (exit code), not an error; errors are for requests that cannot run.
    pub fn run(&mut self, req: &Request, model: &Model) -> Result<Report> {
        let features = analysis::analyze(&req.argv)?;
        if let Some(r) = &req.reservation {
            let res = self.store.reservation(r)?;
            if !res.active_at(now()) {
                return Err(Error::Invalid(format!(
                    "reservation '{r}' is not active now (window {}..{})",
                    res.starts_at,
                    res.ends_at.map_or("open".into(), |e| e.to_string())
                )));
            }
        }
        let info = self.hv.domain_info(&req.domain).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!("domain '{}'", req.domain)),
            e => e,
        })?;
        if info.state != DomainState::Running {
            return Err(Error::Invalid(format!(
                "domain '{}' is {:?}, not running; start it first",
                req.domain, info.state
            )));
        }
        let (vcpus, max_vcpus, memory_kib) = live_allocation(self.hv, &req.domain)?;
        let baseline = Baseline {
            vcpus,
            max_vcpus,
            memory_kib,
            max_memory_kib: info.max_memory_kib.max(memory_kib),
        };
        let mut prediction = model.predict(&features);
        resolve_dependencies(self.hv, &req.domain, &mut prediction);
        let need = prediction.at_tier(req.tier);

        let me = Owner::current().token();
        let id = self.store.queue_push(&NewQueued {
            domain: req.domain.clone(),
            argv: req.argv.clone(),
            priority: req.priority,
            user: req.user.clone(),
            reservation: req.reservation.clone(),
            owner: Some(me),
        })?;
        let waited = Instant::now();
        let plan = match self.wait_turn(id, req, &need, &baseline) {
            Ok(p) => p,
            Err(e) => {
                let _ = self
                    .store
                    .queue_finish(id, QueueState::Cancelled, &e.to_string());
                return Err(e);
            }
        };
        let waited_s = waited.elapsed().as_secs_f64();

        let mut changes = Vec::new();
        if let Err(e) = start_dependencies(self.hv, &prediction, &mut changes) {
            let _ = self
                .store
                .queue_finish(id, QueueState::Failed, &e.to_string());
            return Err(e);
        }
        let mut undo = Undo::default();
        if let Some(p) = &plan
            && let Err(e) = self.apply(req, &baseline, p, &need, &mut changes, &mut undo)
        {
            self.restore(&req.domain, &baseline, &undo, &mut changes);
            let _ = self
                .store
                .queue_finish(id, QueueState::Failed, &e.to_string());
            return Err(e);
        }

        let hv = self.hv;
        let mut watch = Watch::default();
        watch.before = stats_of(hv, &req.domain);
        watch.used_before = crate::store::live::memory_used_kib(&watch.before);
        watch.last = watch.before.clone();
        let mut current_mem = plan.as_ref().map_or(baseline.memory_kib, |p| p.memory_kib);
        let extra_vcpus = plan.as_ref().map_or(0, |p| p.extra_vcpus(&baseline));
        let mut last_sample = Instant::now();
        let started = Instant::now();
        let agent = Agent {
            hv,
            domain: &req.domain,
        };
        let args: Vec<&str> = req.argv[1..].iter().map(String::as_str).collect();
        let store = &mut *self.store;
        let sample_every = self.sample_every;
        let grow_enabled = req.preallocate;
        let reservation = req.reservation.clone();
        let result = agent.exec(
            &req.argv[0],
            &args,
            req.stdin.as_deref(),
            req.timeout,
            || {
                if last_sample.elapsed() < sample_every {
                    return;
                }
                last_sample = Instant::now();
                let s = stats_of(hv, &req.domain);
                let used = crate::store::live::memory_used_kib(&s);
                watch.see(s);
                let Some(used) = used.filter(|_| grow_enabled) else {
                    return;
                };
                let room = host_room(hv, store, reservation.as_deref(), Some(id))
                    .map_or(0, |r| r.memory_kib);
                if let Some(next) = plan::grow(used, current_mem, baseline.max_memory_kib, room) {
                    let r = hv.set_memory(&req.domain, next, Scope::Live);
                    changes.push(Change {
                        phase: Phase::During,
                        what: "memory".into(),
                        from: units::format_kib(current_mem),
                        to: units::format_kib(next),
                        error: r.as_ref().err().map(|e| e.to_string()),
                    });
                    if r.is_ok() {
                        current_mem = next;
                        let _ = store.queue_hold(
                            id,
                            extra_vcpus,
                            current_mem.saturating_sub(baseline.memory_kib),
                        );
                    }
                }
            },
        );
        let elapsed = started.elapsed().as_secs_f64();
        watch.see(stats_of(hv, &req.domain));
        if plan.is_some() {
            self.restore(&req.domain, &baseline, &undo, &mut changes);
        }
        let exec = match result {
            Ok(x) => x,
            Err(e) => {
                let _ = self
                    .store
                    .queue_finish(id, QueueState::Failed, &e.to_string());
                return Err(e);
            }
        };
        let (used, fields) = watch.usage(elapsed);
        // The command ran: a history that cannot be written is logged, not an error.
        if fields != Fields::default()
            && let Err(e) = self.record(&req.argv, &used, fields)
        {
            log::warn!(
                "usage of `{}` not recorded: {e}",
                analysis::join_key(&req.argv)
            );
        }
        let report = Report {
            queue_id: id,
            domain: req.domain.clone(),
            argv: req.argv.clone(),
            features,
            prediction,
            need,
            baseline,
            plan,
            changes,
            exit_code: exec.exit_code,
            signal: exec.signal,
            stdout: exec.stdout,
            stderr: exec.stderr,
            used,
            measured: fields != Fields::default(),
            waited_s,
        };
        let summary = json!({
            "exit_code": report.exit_code, "signal": report.signal, "used": report.used,
            "changes": report.changes.len(),
        });
        let state = if report.ok() {
            QueueState::Done
        } else {
            QueueState::Failed
        };
        self.store.queue_finish(id, state, &summary.to_string())?;
        Ok(report)
    }

    /// Waits until `id` is first in the queue and its plan fits; marks it running. Returns the
    /// plan (`None` when the request does not pre-allocate).
    fn wait_turn(
        &mut self,
        id: i64,
        req: &Request,
        need: &Usage,
        baseline: &Baseline,
    ) -> Result<Option<Plan>> {
        let start = Instant::now();
        loop {
            // Entries of processes that are gone (killed while waiting or running) hold
            // nothing any more.
            let live = self
                .store
                .queue_list(&[QueueState::Waiting, QueueState::Running])?;
            for q in &live {
                let dead = q
                    .owner
                    .as_deref()
                    .and_then(owner::parse_token)
                    .is_some_and(|o| !o.alive());
                if dead && q.id != id {
                    self.store.queue_finish(
                        q.id,
                        QueueState::Cancelled,
                        "the process that queued it is gone",
                    )?;
                }
            }
            let waiting = self.store.queue_list(&[QueueState::Waiting])?;
            let why = if plan::order(&waiting, now()).first() == Some(&id) {
                let room = host_room(self.hv, self.store, req.reservation.as_deref(), Some(id))?;
                let used = crate::store::live::memory_used_kib(&stats_of(self.hv, &req.domain))
                    .unwrap_or(0);
                let planned = if req.preallocate {
                    plan::plan(need, used, baseline, &room).map(Some)
                } else {
                    Ok(None)
                };
                match planned {
                    Ok(p) => {
                        let (cpu, mem) = p.as_ref().map_or((0, 0), |p| {
                            (p.extra_vcpus(baseline), p.extra_memory_kib(baseline))
                        });
                        if self.store.queue_start(id, cpu, mem)? {
                            return Ok(p);
                        }
                        return Err(Error::Invalid(format!(
                            "queue entry {id} was cancelled while it waited"
                        )));
                    }
                    Err(why) => why,
                }
            } else {
                "commands ahead of it in the queue".to_string()
            };
            if start.elapsed() >= req.queue_timeout {
                return Err(Error::Timeout(format!(
                    "`{}` waited {} s in the queue for domain '{}': {why}",
                    analysis::join_key(&req.argv),
                    req.queue_timeout.as_secs(),
                    req.domain
                )));
            }
            std::thread::sleep(self.poll);
        }
    }

    fn apply(
        &self,
        req: &Request,
        base: &Baseline,
        p: &Plan,
        need: &Usage,
        changes: &mut Vec<Change>,
        undo: &mut Undo,
    ) -> Result<()> {
        if p.memory_kib != base.memory_kib {
            let r = self.hv.set_memory(&req.domain, p.memory_kib, Scope::Live);
            changes.push(Change {
                phase: Phase::Before,
                what: "memory".into(),
                from: units::format_kib(base.memory_kib),
                to: units::format_kib(p.memory_kib),
                error: r.as_ref().err().map(|e| e.to_string()),
            });
            r?;
            wait_balloon(self.hv, &req.domain, p.memory_kib);
        }
        if p.vcpus != base.vcpus {
            let r = self.hv.set_vcpus(&req.domain, p.vcpus, Scope::Live);
            changes.push(Change {
                phase: Phase::Before,
                what: "vcpus".into(),
                from: base.vcpus.to_string(),
                to: p.vcpus.to_string(),
                error: r.as_ref().err().map(|e| e.to_string()),
            });
            r?;
            // The guest must online the plugged CPUs (some guests do it themselves).
            match online_vcpus(self.hv, &req.domain, true, &[]) {
                Ok(ids) => {
                    if !ids.is_empty() {
                        changes.push(Change {
                            phase: Phase::Before,
                            what: "guest cpus online".into(),
                            from: "-".into(),
                            to: format!("{ids:?}"),
                            error: None,
                        });
                    }
                    undo.onlined.extend(ids);
                }
                Err(e) => changes.push(Change {
                    phase: Phase::Before,
                    what: "guest cpus online".into(),
                    from: "-".into(),
                    to: "-".into(),
                    error: Some(e.to_string()),
                }),
            }
        }
        // Disks whose byte limits are below the command's predicted rate get them raised.
        let rate = (need.disk_read_bytes + need.disk_write_bytes) / need.duration_s.max(1.0);
        if rate > 0.0 {
            let view = crate::domain::parse(&self.hv.domain_xml(&req.domain, XmlKind::Live)?)?;
            for d in view.disks.iter().filter(|d| d.device == "disk") {
                let Some(old) = d.iotune else { continue };
                let Some(new) = plan::raise_iotune(&old, rate) else {
                    continue;
                };
                let r = self
                    .hv
                    .set_disk_iotune(&req.domain, &d.target, &new, Scope::Live);
                changes.push(Change {
                    phase: Phase::Before,
                    what: format!("disk {} iotune", d.target),
                    from: iotune_text(&old),
                    to: iotune_text(&new),
                    error: r.as_ref().err().map(|e| e.to_string()),
                });
                if r.is_ok() {
                    undo.raised.push((d.target.clone(), old));
                }
            }
        }
        Ok(())
    }

    /// Puts the baseline back; failures are reported as changes with an error, never raised
    /// (the command's result matters more, and the next run starts from what is there).
    fn restore(&self, domain: &str, base: &Baseline, undo: &Undo, changes: &mut Vec<Change>) {
        for (disk, old) in &undo.raised {
            let r = self.hv.set_disk_iotune(domain, disk, old, Scope::Live);
            changes.push(Change {
                phase: Phase::After,
                what: format!("disk {disk} iotune"),
                from: "raised".into(),
                to: iotune_text(old),
                error: r.err().map(|e| e.to_string()),
            });
        }
        let Ok((vcpus, _, memory_kib)) = live_allocation(self.hv, domain) else {
            return;
        };
        if memory_kib != base.memory_kib {
            let r = self.hv.set_memory(domain, base.memory_kib, Scope::Live);
            changes.push(Change {
                phase: Phase::After,
                what: "memory".into(),
                from: units::format_kib(memory_kib),
                to: units::format_kib(base.memory_kib),
                error: r.err().map(|e| e.to_string()),
            });
        }
        if vcpus != base.vcpus {
            if !undo.onlined.is_empty() {
                let _ = online_vcpus(self.hv, domain, false, &undo.onlined);
            }
            let r = self.hv.set_vcpus(domain, base.vcpus, Scope::Live);
            changes.push(Change {
                phase: Phase::After,
                what: "vcpus".into(),
                from: vcpus.to_string(),
                to: base.vcpus.to_string(),
                error: r.err().map(|e| e.to_string()),
            });
        }
    }

    /// Appends one sample covering the run to the command's history subject.
    fn record(&mut self, argv: &[String], used: &Usage, fields: Fields) -> Result<()> {
        let subject = self
            .store
            .subject(SubjectKind::Command, &analysis::join_key(argv))?;
        let sample = UsageSample {
            timestamp: now(),
            interval_s: used.duration_s.round().max(1.0) as u32,
            cpu_time_ns: (used.cpu_cores * used.duration_s * 1e9) as u64,
            cpu_percent: None,
            memory_used_kib: used.memory_kib as u64,
            disk_read_bytes: used.disk_read_bytes as u64,
            disk_write_bytes: used.disk_write_bytes as u64,
            net_rx_bytes: used.net_bytes as u64,
            net_tx_bytes: 0,
        };
        self.store.append_fields(subject, &[sample], fields)?;
        Ok(())
    }
}

/// The running domain's allocation from its live XML: current vCPUs, maximum vCPUs and the
/// balloon *target* (`<currentMemory>`; libvirt's domain info reports what the balloon has
/// reached, which lags the target).
fn live_allocation(hv: &dyn Hypervisor, domain: &str) -> Result<(u32, u32, u64)> {
    let view = crate::domain::parse(&hv.domain_xml(domain, XmlKind::Live)?)?;
    Ok((
        view.vcpus,
        view.max_vcpus.max(view.vcpus),
        view.current_memory_kib.unwrap_or(view.memory_kib),
    ))
}

/// A host the command names that is a domain of this hypervisor is a domain dependency.
fn resolve_dependencies(hv: &dyn Hypervisor, own: &str, p: &mut Prediction) {
    for d in &mut p.dependencies {
        if let analysis::Dependency::Network(host) = d
            && host != own
            && hv.domain_info(host).is_ok()
        {
            *d = analysis::Dependency::Domain(host.clone());
        }
    }
}

/// How long a dependency domain may take to reach the running state.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(60);

/// Starts the domains the command depends on that are not running, and waits (bounded) until
/// they run; each start is a change. A dependency that cannot start is an error naming it.
fn start_dependencies(
    hv: &dyn Hypervisor,
    p: &Prediction,
    changes: &mut Vec<Change>,
) -> Result<()> {
    for d in &p.dependencies {
        let analysis::Dependency::Domain(name) = d else {
            continue;
        };
        let state = hv.domain_info(name)?.state;
        if state == DomainState::Running {
            continue;
        }
        let r = hv.start(name);
        changes.push(Change {
            phase: Phase::Before,
            what: format!("dependency domain {name}"),
            from: format!("{state:?}").to_lowercase(),
            to: "running".into(),
            error: r.as_ref().err().map(|e| e.to_string()),
        });
        r.map_err(|e| Error::Invalid(format!("dependency domain '{name}' did not start: {e}")))?;
        let t = Instant::now();
        while hv.domain_info(name)?.state != DomainState::Running {
            if t.elapsed() >= DEPENDENCY_WAIT {
                return Err(Error::Timeout(format!(
                    "dependency domain '{name}' not running {} s after its start",
                    DEPENDENCY_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// `total 10000000 B/s, 500 IOPS`-style text of the set limits.
fn iotune_text(io: &IoTune) -> String {
    let parts: Vec<String> = [
        ("total", io.total_bytes_sec, "B/s"),
        ("read", io.read_bytes_sec, "B/s"),
        ("write", io.write_bytes_sec, "B/s"),
        ("total", io.total_iops_sec, "IOPS"),
        ("read", io.read_iops_sec, "IOPS"),
        ("write", io.write_iops_sec, "IOPS"),
    ]
    .iter()
    .filter_map(|(k, v, u)| v.map(|v| format!("{k} {v} {u}")))
    .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(", ")
    }
}

/// How long pre-allocation waits for the guest's balloon driver to hand the memory over.
const BALLOON_WAIT: Duration = Duration::from_secs(20);

/// Waits (bounded by [`BALLOON_WAIT`]) until the balloon reports at least 98% of `target_kib`
/// given to the guest; returns at once when the hypervisor reports no balloon figures.
fn wait_balloon(hv: &dyn Hypervisor, domain: &str, target_kib: u64) {
    let start = Instant::now();
    while start.elapsed() < BALLOON_WAIT {
        match stats_of(hv, domain).balloon_current_kib {
            Some(c) if c * 50 < target_kib * 49 => std::thread::sleep(Duration::from_millis(200)),
            _ => return,
        }
    }
}

/// The host's room for a command (see [`plan::room`]), `exclude` being the command itself.
fn host_room(
    hv: &dyn Hypervisor,
    store: &Store,
    reservation: Option<&str>,
    exclude: Option<i64>,
) -> Result<plan::HostRoom> {
    let cap = hv.node_capacity()?;
    let mem = hv.node_memory_stats()?;
    let free = mem.free_kib + mem.buffers_kib + mem.cached_kib;
    let running: Vec<_> = store
        .queue_list(&[QueueState::Running])?
        .into_iter()
        .filter(|q| Some(q.id) != exclude)
        .collect();
    let reservations = store.reservations()?;
    Ok(plan::room(
        cap.cpus,
        free,
        &running,
        &reservations,
        reservation,
        now(),
    ))
}

/// Onlines (or offlines) guest CPUs through the agent: with `online`, every offline CPU;
/// without, the CPUs in `ids`. Returns the ids changed.
fn online_vcpus(hv: &dyn Hypervisor, domain: &str, online: bool, ids: &[i64]) -> Result<Vec<i64>> {
    let agent = Agent { hv, domain };
    let list = agent.call(&json!({"execute": "guest-get-vcpus"}), 10)?;
    let targets: Vec<i64> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            let id = c["logical-id"].as_i64().unwrap_or(-1);
            let is_online = c["online"].as_bool().unwrap_or(true);
            if online {
                !is_online
            } else {
                is_online && ids.contains(&id) && c["can-offline"].as_bool().unwrap_or(false)
            }
        })
        .filter_map(|c| c["logical-id"].as_i64())
        .collect();
    if targets.is_empty() {
        return Ok(targets);
    }
    let vcpus: Vec<_> = targets
        .iter()
        .map(|id| json!({"logical-id": id, "online": online}))
        .collect();
    agent.call(
        &json!({"execute": "guest-set-vcpus", "arguments": {"vcpus": vcpus}}),
        10,
    )?;
    Ok(targets)
}
