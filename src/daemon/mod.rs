//! The daemon (`prae daemon`): the HTTP/JSON API on a Unix socket (and optionally loopback TCP
//! with a bearer token), interception of domains defined by other clients through libvirt's
//! lifecycle events, a sampling loop that writes every domain's usage into the store, and
//! Prometheus metrics.
//!
//! # Layout
//! - [`api`]: the one request type ([`Request`]) and its pure parser; [`Daemon::dispatch`] acts
//!   on a `Request`, so the HTTP server, the CLI's client and tests share it.
//! - [`config`]: the TOML configuration, made of the API's own types.
//! - `server`: axum over tokio's `UnixListener`/`TcpListener`; who the caller is (peer
//!   credentials on the socket, the bearer token on TCP) and whether they are an admin.
//! - `intercept`: what to do with a domain prae has not handled ([`intercept::decide`], pure),
//!   and the supervisor that (re)connects to libvirt, rescans every domain on each connection
//!   and follows lifecycle events.
//! - `sampler`: node and all-domain stats every `sample_interval_s` into a bounded queue that a
//!   writer thread drains into the store (the oldest batch is dropped, and counted, when full).
//! - [`marks`]: prae's marks in a domain's metadata (rewritten, advised, opted out); the hook's
//!   verdict.
//! - [`status`]: hosts, domains, allocation against use, recommendations.
//! - [`client`]: a small blocking HTTP client for the socket (CLI, tests, benchmarks).
//!
//! # Invariants
//! - libvirt only through the [`Hypervisor`] trait (blocking calls run in `spawn_blocking`);
//!   the database only through [`Store`].
//! - Every refused request is a 4xx with a one-line JSON message and changes nothing.
//! - A domain that carries prae's allocation or advice, or that opted out, is never touched
//!   again; the daemon's own re-define (which fires DEFINED) therefore ends the loop.
//! - Admin operations (overrides, define, builds) need root, the daemon's own user or the
//!   admin group on the socket, and the bearer token on TCP.

pub mod api;
pub mod client;
pub mod config;
pub mod intercept;
pub mod marks;
pub mod metrics;
pub mod sampler;
mod server;
pub mod status;

pub use api::{ApiError, Request};
pub use config::{Config, Policy};
pub use server::{Peer, bind_unix, effective_uid, resolve_group};

use crate::build::{self, BuildConfig, BuildRequest};
use crate::engine::{self, PredictRequest};
use crate::hypervisor::Hypervisor;
use crate::model::{Allocation, ResourceProfile};
use crate::store::{Override, OverrideScope, OverrideSpec, Store};
use crate::{Error, Result, domain};
use metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Opens a connection to libvirt; called at start and after every lost connection.
pub type Connector = Box<dyn Fn() -> Result<Arc<dyn Hypervisor>> + Send + Sync>;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// For audit rows: `uid N`, `tcp token`.
    pub who: String,
    pub admin: bool,
}

impl Caller {
    /// A caller with every right (tests, the daemon itself).
    pub fn admin(who: &str) -> Caller {
        Caller {
            who: who.into(),
            admin: true,
        }
    }
}

/// What a handler returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Json(u16, serde_json::Value),
    Text(String),
}

/// One image build requested through the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildJob {
    pub id: u64,
    pub package: String,
    pub os: String,
    /// queued, running, succeeded, failed, interrupted.
    pub state: String,
    pub requested_by: String,
    pub events: Vec<build::Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<build::Manifest>,
}

/// The last usage the sampler saw of a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub at: i64,
    pub cpu_cores: Option<f64>,
    pub memory_used_kib: Option<u64>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The daemon's shared state.
pub struct Daemon {
    config: Config,
    connector: Connector,
    hv: RwLock<Option<Arc<dyn Hypervisor>>>,
    store: Arc<Mutex<Store>>,
    /// Active overrides, cached for the prediction path (refreshed on every change).
    overrides: RwLock<Vec<Override>>,
    admin_gid: Option<u32>,
    own_uid: Option<u32>,
    token: Option<String>,
    pub metrics: Metrics,
    builds: Mutex<BTreeMap<u64, BuildJob>>,
    next_build: AtomicU64,
    build_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(crate) usage: Mutex<BTreeMap<String, Usage>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config)
            .finish()
    }
}

impl Daemon {
    /// A daemon over `store`, connecting to libvirt with `connector`. `token` is the bearer
    /// token TCP callers must send.
    pub fn new(
        config: Config,
        connector: Connector,
        store: Store,
        token: Option<String>,
    ) -> Result<Arc<Daemon>> {
        config.validate()?;
        let admin_gid = config
            .admin_group
            .as_deref()
            .map(resolve_group)
            .transpose()?;
        if let Some(t) = &token
            && (t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Error::Invalid(
                "the bearer token must be at least 16 characters without spaces".into(),
            ));
        }
        let overrides = store.list_overrides(false)?;
        Ok(Arc::new(Daemon {
            config,
            connector,
            hv: RwLock::new(None),
            store: Arc::new(Mutex::new(store)),
            overrides: RwLock::new(overrides),
            admin_gid,
            own_uid: effective_uid(),
            token,
            metrics: Metrics::default(),
            builds: Mutex::new(BTreeMap::new()),
            next_build: AtomicU64::new(1),
            build_tasks: Mutex::new(Vec::new()),
            usage: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current libvirt connection, if any.
    pub fn hypervisor(&self) -> Option<Arc<dyn Hypervisor>> {
        self.hv.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_hypervisor(&self, hv: Option<Arc<dyn Hypervisor>>) {
        let up = hv.is_some();
        *self.hv.write().unwrap_or_else(|p| p.into_inner()) = hv;
        self.metrics
            .connected
            .store(u64::from(up), Ordering::Relaxed);
    }

    fn require_hv(&self) -> Result<Arc<dyn Hypervisor>, ApiError> {
        self.hypervisor().ok_or_else(|| {
            ApiError::new(
                503,
                format!(
                    "libvirt ({}) is not connected; the daemon is reconnecting",
                    self.config.uri
                ),
            )
        })
    }

    /// Runs `f` on the store in a blocking task.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .map_err(|e| ApiError::new(500, format!("store task failed: {e}")))?
            .map_err(ApiError::from)
    }

    pub(crate) fn store(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }

    fn refresh_overrides(&self, list: Vec<Override>) {
        *self.overrides.write().unwrap_or_else(|p| p.into_inner()) = list;
    }

    fn active_override(&self, scope: &OverrideScope) -> Option<OverrideSpec> {
        let key = scope.key();
        self.overrides
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|o| o.scope.key() == key)
            .map(|o| o.spec.clone())
    }

    /// The most specific package override: package/os/tier, package/os, package.
    fn package_override(&self, b: &api::PredictBody) -> Option<OverrideSpec> {
        let package = b.package.clone()?;
        let os =
            b.os.as_deref()
                .and_then(|o| engine::normalize_os(o).ok())
                .map(str::to_string);
        [(os.clone(), b.tier), (os, None), (None, None)]
            .into_iter()
            .find_map(|(os, tier)| {
                self.active_override(&OverrideScope::Package {
                    package: package.clone(),
                    os,
                    tier,
                })
            })
    }

    /// Answers a prediction with the engine, the operator's override applied.
    pub fn predict(&self, b: &api::PredictBody) -> Result<Allocation> {
        let ov = self.package_override(b);
        let alloc = predict_with(
            PredictRequest {
                package: b.package.clone(),
                os: b.os.clone(),
                tier: b.tier,
                pinned: b.pinned.clone(),
            },
            ov.as_ref(),
        )?;
        Metrics::inc(&self.metrics.predictions);
        Ok(alloc)
    }

    /// The allocation interception gives a domain: the configured tier, with the domain's
    /// override applied.
    pub fn domain_allocation(&self, name: &str) -> Result<Allocation> {
        let ov = self.active_override(&OverrideScope::Domain { name: name.into() });
        predict_with(
            PredictRequest {
                package: None,
                os: None,
                tier: Some(self.config.tier),
                pinned: ResourceProfile::default(),
            },
            ov.as_ref(),
        )
    }

    fn is_admin_peer(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Unix { uid, gid } => {
                *uid == Some(0)
                    || (uid.is_some() && *uid == self.own_uid)
                    || (gid.is_some() && *gid == self.admin_gid)
            }
            Peer::Tcp => true,
        }
    }

    /// Who the caller is, or 401 when a TCP caller lacks the token.
    pub fn authenticate(
        &self,
        peer: &Peer,
        authorization: Option<&str>,
    ) -> Result<Caller, ApiError> {
        match peer {
            Peer::Unix { uid, .. } => Ok(Caller {
                who: uid.map_or("unknown uid".into(), |u| format!("uid {u}")),
                admin: self.is_admin_peer(peer),
            }),
            Peer::Tcp => {
                let want = self.token.as_deref().unwrap_or_default();
                let got = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .unwrap_or_default();
                if !want.is_empty() && constant_time_eq(want.as_bytes(), got.as_bytes()) {
                    Ok(Caller {
                        who: "tcp token".into(),
                        admin: true,
                    })
                } else {
                    Err(ApiError::new(
                        401,
                        "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                    ))
                }
            }
        }
    }

    /// Acts on one request for `caller`.
    pub async fn dispatch(
        self: &Arc<Self>,
        caller: &Caller,
        req: Request,
    ) -> Result<Reply, ApiError> {
        let (m, p, _) = req.to_http();
        let path = p.split('?').next().unwrap_or_default();
        let (op, _) = api::operation(m, path)?;
        if op.admin && !caller.admin {
            return Err(ApiError::new(
                403,
                format!(
                    "{} needs an admin (root, the daemon's user or the admin group); {} is not",
                    op.operation_id, caller.who
                ),
            ));
        }
        let ok = |v: serde_json::Value| Ok(Reply::Json(200, v));
        match req {
            Request::Health => {
                let hv = self.hypervisor();
                ok(serde_json::json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "policy": self.config.policy,
                    "libvirt": {"uri": self.config.uri, "connected": hv.is_some()},
                }))
            }
            Request::Config => ok(to_value(&self.config)?),
            Request::Metrics => {
                let me = self.clone();
                let t = tokio::task::spawn_blocking(move || me.render_metrics())
                    .await
                    .map_err(|e| ApiError::new(500, format!("metrics task failed: {e}")))?;
                Ok(Reply::Text(t))
            }
            Request::Status => {
                let hv = self.require_hv()?;
                let me = self.clone();
                let s = tokio::task::spawn_blocking(move || {
                    let usage = lock(&me.usage).clone();
                    status::collect(hv.as_ref(), &usage, me.config.policy, |n| {
                        me.domain_allocation(n)
                    })
                })
                .await
                .map_err(|e| ApiError::new(500, format!("status task failed: {e}")))??;
                ok(to_value(&s)?)
            }
            Request::Predict(b) => ok(to_value(&self.predict(&b)?)?),
            Request::ListOverrides { include_inactive } => {
                let l = self
                    .with_store(move |s| s.list_overrides(include_inactive))
                    .await?;
                ok(to_value(&l)?)
            }
            Request::SetOverride(b) => {
                let who = caller.who.clone();
                let (id, list) = self
                    .with_store(move |s| {
                        let id = s.set_override(&b.scope, &b.spec, &b.reason, &who)?;
                        Ok((id, s.list_overrides(false)?))
                    })
                    .await?;
                self.refresh_overrides(list);
                Ok(Reply::Json(201, serde_json::json!({"id": id.0})))
            }
            Request::RemoveOverride { id } => {
                let who = caller.who.clone();
                let list = self
                    .with_store(move |s| {
                        s.remove_override(crate::store::OverrideId(id), &who)?;
                        s.list_overrides(false)
                    })
                    .await?;
                self.refresh_overrides(list);
                ok(serde_json::json!({"removed": id}))
            }
            Request::Define(b) => self.define(caller, b).await,
            Request::RequestBuild(b) => self.request_build(caller, b),
            Request::ListBuilds => {
                let l: Vec<BuildJob> = lock(&self.builds).values().cloned().collect();
                ok(to_value(&l)?)
            }
            Request::BuildStatus { id } => match lock(&self.builds).get(&id) {
                Some(j) => ok(to_value(j)?),
                None => Err(ApiError::new(404, format!("build {id} not found"))),
            },
        }
    }

    async fn define(
        self: &Arc<Self>,
        caller: &Caller,
        b: api::DefineBody,
    ) -> Result<Reply, ApiError> {
        // Validate before touching libvirt.
        let view = domain::parse(&b.xml)?;
        let ov = self.active_override(&OverrideScope::Domain {
            name: view.name.clone(),
        });
        let alloc = predict_with(
            PredictRequest {
                package: None,
                os: None,
                tier: b.tier,
                pinned: b.pinned,
            },
            ov.as_ref(),
        )?;
        let r = domain::rewrite(&b.xml, &alloc)?;
        let hv = self.require_hv()?;
        let xml = r.xml.clone();
        let name = tokio::task::spawn_blocking(move || hv.define(&xml))
            .await
            .map_err(|e| ApiError::new(500, format!("define task failed: {e}")))??;
        log::info!(
            "defined domain '{name}' for {} ({})",
            caller.who,
            alloc.provenance.reason
        );
        Ok(Reply::Json(
            201,
            serde_json::json!({"name": name, "allocation": alloc,
                               "changes": r.changes, "skipped": r.skipped}),
        ))
    }

    fn request_build(
        self: &Arc<Self>,
        caller: &Caller,
        b: api::BuildBody,
    ) -> Result<Reply, ApiError> {
        engine::validate_package_name(&b.package)?;
        let os = engine::normalize_os(&b.os)?.to_string();
        b.pinned.validate()?;
        let Some(base) = self.config.build_base_dir.clone() else {
            return Err(ApiError::new(
                501,
                "this daemon has no build_base_dir configured; image builds are off",
            ));
        };
        let hv = self.require_hv()?;
        let id = self.next_build.fetch_add(1, Ordering::Relaxed);
        lock(&self.builds).insert(
            id,
            BuildJob {
                id,
                package: b.package.clone(),
                os: os.clone(),
                state: "queued".into(),
                requested_by: caller.who.clone(),
                events: Vec::new(),
                error: None,
                manifest: None,
            },
        );
        let me = self.clone();
        let db = self.config.db.clone();
        let task = tokio::task::spawn_blocking(move || {
            me.set_build(id, |j| j.state = "running".into());
            let res = run_build(&me, id, hv.as_ref(), db, base, b, os);
            me.set_build(id, |j| match res {
                Ok(m) => {
                    j.state = "succeeded".into();
                    j.manifest = Some(m);
                }
                Err(e) => {
                    j.state = "failed".into();
                    j.error = Some(e.to_string());
                }
            });
        });
        lock(&self.build_tasks).push(task);
        Ok(Reply::Json(
            202,
            serde_json::json!({"id": id, "state": "queued"}),
        ))
    }

    fn set_build(&self, id: u64, f: impl FnOnce(&mut BuildJob)) {
        if let Some(j) = lock(&self.builds).get_mut(&id) {
            f(j);
        }
    }

    /// Waits for builds still running (they are blocking threads); those that do not finish
    /// within `grace` are recorded as interrupted.
    pub(crate) async fn finish_builds(&self, grace: std::time::Duration) {
        let tasks: Vec<_> = lock(&self.build_tasks).drain(..).collect();
        if tasks.is_empty() {
            return;
        }
        log::info!("waiting up to {grace:?} for {} build(s)", tasks.len());
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            for j in lock(&self.builds).values_mut() {
                if j.state == "running" || j.state == "queued" {
                    log::warn!("build {} ({}) interrupted by shutdown", j.id, j.package);
                    j.state = "interrupted".into();
                }
            }
        }
    }

    /// The `/metrics` text.
    pub fn render_metrics(&self) -> String {
        let mut builds: BTreeMap<&'static str, u64> = BTreeMap::new();
        for j in lock(&self.builds).values() {
            let s = match j.state.as_str() {
                "queued" => "queued",
                "running" => "running",
                "succeeded" => "succeeded",
                "failed" => "failed",
                _ => "interrupted",
            };
            *builds.entry(s).or_default() += 1;
        }
        let gauges = sampler::gauges(self);
        metrics::render(&self.metrics, self.config.policy.as_str(), &builds, &gauges)
    }
}

fn run_build(
    d: &Daemon,
    id: u64,
    hv: &dyn Hypervisor,
    db: Option<PathBuf>,
    base: PathBuf,
    b: api::BuildBody,
    os: String,
) -> Result<build::Manifest> {
    struct Sink<'a>(&'a Daemon, u64);
    impl build::Progress for Sink<'_> {
        fn event(&self, e: &build::Event) {
            self.0.set_build(self.1, |j| j.events.push(e.clone()));
        }
    }
    // A build holds its own store connection for minutes; the daemon's stays free.
    let mut store = match db {
        Some(p) => Store::open(p)?,
        None => Store::in_memory()?,
    };
    let mut cfg = BuildConfig::new(build::default_state_dir()?)?;
    cfg.base_dir = Some(base);
    let req = BuildRequest {
        package: b.package,
        os,
        tier: b.tier,
        overrides: b.pinned,
        disk_bytes: None,
    };
    let r = build::request_image_build(hv, &mut store, &cfg, &req, &Sink(d, id))?;
    Ok(r.manifest)
}

/// The engine's answer with an override applied: exact values are pinned (over the caller's),
/// bounds clamp vCPUs and memory.
pub fn predict_with(mut req: PredictRequest, ov: Option<&OverrideSpec>) -> Result<Allocation> {
    if let Some(OverrideSpec::Exact { profile }) = ov {
        req.pinned = profile.over(&req.pinned);
    }
    let mut a = engine::predict(&req)?;
    match ov {
        Some(OverrideSpec::Exact { .. }) => a.provenance.sources.push("override: exact".into()),
        Some(OverrideSpec::Bounds { min, max }) => {
            let p = &mut a.profile;
            let clamp = |v: Option<u64>, lo: Option<u64>, hi: Option<u64>| {
                v.map(|v| v.max(lo.unwrap_or(0)).min(hi.unwrap_or(u64::MAX)))
            };
            let (vlo, vhi) = (min.vcpus.map(u64::from), max.vcpus.map(u64::from));
            p.vcpus = clamp(p.vcpus.map(u64::from), vlo, vhi).map(|v| v as u32);
            p.max_vcpus = clamp(p.max_vcpus.map(u64::from), vlo, vhi).map(|v| v as u32);
            p.memory_kib = clamp(p.memory_kib, min.memory_kib, max.memory_kib);
            p.current_memory_kib = clamp(p.current_memory_kib, min.memory_kib, max.memory_kib);
            p.validate()?;
            a.provenance.sources.push("override: bounds".into());
            a.provenance.reason.push_str("; clamped by an override");
        }
        None => {}
    }
    Ok(a)
}

fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(500, format!("cannot encode JSON: {e}")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs the daemon until `shutdown` resolves: the API on `unix` (and `tcp`), the libvirt
/// supervisor (connect, rescan, events, reconnect) and the sampler. On shutdown it stops
/// accepting, lets requests in flight finish, waits for builds, and drains the sample queue
/// into the store.
pub async fn run(
    daemon: Arc<Daemon>,
    unix: tokio::net::UnixListener,
    tcp: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let supervisor = tokio::spawn(intercept::supervise(daemon.clone(), rx.clone()));
    let sampler = tokio::spawn(sampler::run(daemon.clone(), rx.clone()));
    let servers = server::serve(daemon.clone(), unix, tcp, rx.clone());
    let res = servers.await;
    let _ = supervisor.await;
    let _ = sampler.await;
    daemon
        .finish_builds(std::time::Duration::from_secs(60))
        .await;
    log::info!("daemon stopped");
    res
}

#[cfg(test)]
mod tests;
