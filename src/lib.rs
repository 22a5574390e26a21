//! prae: predictive resource allocation for libvirt.
//!
//! prae predicts what a VM, an image build or a command will need before it runs and rewrites the
//! allocation (vCPUs, memory, disk bus and storage class, disk and network limits) in the domain
//! XML, recording why in the domain's own `<metadata>`.
//!
//! # Layout
//!
//! One library, two thin binaries (`prae`, `prae-virsh`). Each module keeps one rule:
//!
//! | module         | job                                                        | rule it keeps |
//! |----------------|------------------------------------------------------------|---------------|
//! | [`model`]      | plain data: profiles, tiers, samples, host capacity        | no behaviour beyond validation; serde everywhere |
//! | [`units`]      | libvirt's size units (`512MiB`, `3GiB`, `KB` vs `KiB`)      | pure |
//! | [`domain`]     | typed view of domain XML, lossless rewrite and revert, templates | pure: strings in, strings out; only resource elements and prae's metadata change |
//! | [`engine`]     | evidence -> allocation: per-tier table, tiers from TOML (quantile + headroom), history blended with the prior, host load cut, explanations | pure; every allocation carries its provenance |
//! | [`forecast`]   | auto-ARIMA after R's `auto.arima`: order selection, exact-likelihood fit, forecasts with intervals | pure: values in, values out; no I/O, clock or randomness |
//! | [`optimize`]   | genetic optimizer (rayon) choosing profiles and hosts for all pending requests; exact solver for checks | pure: values and a seed in, a value out; serial and parallel give the same answer |
//! | [`profile`]    | application profiles: package metadata -> CPU, memory, disk, network needs with intervals (log-scale ridge, LOO-checked) | pure: measurements in (embedded calibration CSV), estimates out; no I/O |
//! | [`replay`]     | trace replay: prae, a static size, Kubernetes VPA's recommender and the perfect-foresight bound, step by step; slack and violation scores | pure: series in, allocations and scores out (files are read by `store::replay`) |
//! | [`hypervisor`] | the `Hypervisor` trait and its libvirt implementation      | the ONLY module that calls libvirt; every `unsafe` has a `SAFETY` comment and a real-libvirt test |
//! | [`store`]      | history (usage samples, trace import/export), builds, overrides, audit, in SQLite (WAL) | the ONLY module that touches the database, trace files and prae's own files (`store::files`: ledger, manifests, repository cache, locks); schema migrations forward-only; a kill loses at most the batch being written |
//! | [`build`]      | image builds: base -> overlay -> predicted build VM -> install through the guest agent while sampling -> flattened image + manifest; host-capacity ledger; leftover cleanup | libvirt only through the `Hypervisor` trait, the database and its files only through `store`; no shell; everything it creates is named after its owner process, and only dead owners' leftovers are removed |
//! | [`daemon`]     | `prae daemon`: HTTP/JSON API on a Unix socket (+ loopback TCP with a token), interception of domains defined by other clients (policy off/advise/enforce), live sampling into the store, Prometheus metrics | libvirt only through the `Hypervisor` trait, the database only through `store`; one `Request` type shared by API, CLI and tests; refused requests change nothing; a domain carrying prae's marks is never touched again |
//! | [`exec`]       | command orchestration: predict a command's needs, pre-allocate on the running VM, run it through the guest agent, grow, restore, record; queue and reservations | libvirt only through the `Hypervisor` trait, the database only through `store`; commands are argument vectors, never shell text; what it changes it restores |
//! | [`cli`]        | clap definitions and handlers for `prae` and `prae-virsh`  | parse, validate, then call the library; never passes text through a shell |
//!
//! Not yet wired: `engine::predict` (what `prae build`, `prae define`, `prae-virsh` and the
//! daemon apply) still answers from the per-tier table with the operator's pinned values over it;
//! `optimize` and `profile` are libraries the engine does not call yet, and the history evidence
//! (`engine::evidence`) is used by `prae predict` and `prae replay` only.
//!
//! # Invariants
//! - Pure modules take their inputs as values and never reach out (no libvirt, files or clock).
//! - A rewrite changes only resource elements and prae's metadata; a round trip keeps the rest;
//!   rewriting twice equals rewriting once; revert restores the recorded originals.
//! - Every error is one line naming the offending value; bad input changes nothing.

pub mod build;
pub mod cli;
pub mod daemon;
pub mod domain;
pub mod engine;
mod error;
pub mod exec;
pub mod forecast;
pub mod hypervisor;
pub mod model;
pub mod optimize;
pub mod profile;
pub mod replay;
pub mod store;
pub mod units;

pub use error::{Error, Result};
