//! The daemon's configuration: a TOML file whose types are the API's own ([`Policy`],
//! [`Tier`]); `GET /v1/config` returns the same structure as JSON.
//!
//! ```toml
//! uri = "qemu:///system"
//! socket = "/run/prae/prae.sock"
//! socket_group = "libvirt"      # the socket is mode 0660, owned by this group
//! admin_group = "prae-admin"    # peers with this primary group may change overrides
//! tcp = "127.0.0.1:7070"        # optional; loopback only, bearer token required
//! token_file = "/etc/prae/token"
//! db = "/var/lib/prae/prae.db"
//! policy = "advise"             # off | advise | enforce
//! tier = "medium"               # the tier interception predicts with
//! intercept_prefix = "ci-"      # optional: intercept only domains named ci-*
//! sample_interval_s = 10
//! ```

use crate::model::Tier;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// What the daemon does with a domain defined by another client (virsh, virt-install, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Leave it alone.
    Off,
    /// Record the recommendation in the domain's metadata; change no resource.
    #[default]
    Advise,
    /// Rewrite its persistent config before it starts (and veto starts through the hook).
    Enforce,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Off, Policy::Advise, Policy::Enforce];
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Advise => "advise",
            Policy::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown policy '{s}' (expected off, advise or enforce)"
                ))
            })
    }
}

/// The largest request body the API reads by default, bytes (domain XML fits easily).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The daemon's configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// libvirt URI (default: libvirt's in-process test driver).
    pub uri: String,
    /// The API's Unix socket.
    pub socket: Option<PathBuf>,
    /// Group that owns the socket (name or number); the socket is mode 0660.
    pub socket_group: Option<String>,
    /// Group (name or number) whose members, by primary group, are admins on the socket
    /// (root and the daemon's own user always are).
    pub admin_group: Option<String>,
    /// Optional loopback TCP listener (`127.0.0.1:PORT`); every request needs the bearer token.
    pub tcp: Option<SocketAddr>,
    /// File holding the bearer token for TCP (required when `tcp` is set).
    pub token_file: Option<PathBuf>,
    /// History database (default: the store's default path).
    pub db: Option<PathBuf>,
    pub policy: Policy,
    /// The tier interception predicts with.
    pub tier: Tier,
    /// Intercept only domains whose name starts with this (default: every domain).
    pub intercept_prefix: Option<String>,
    /// Seconds between two samples of node and domain stats (0: no sampling).
    pub sample_interval_s: u64,
    /// Sample batches held in memory while the store is slow; the oldest is dropped beyond.
    pub sample_queue: usize,
    /// Seconds between two reconnection attempts (and liveness checks) of libvirt.
    pub reconnect_s: u64,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Image builds: the base image directory (`tests/lab/build-debian.sh` makes one).
    pub build_base_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            uri: crate::hypervisor::DEFAULT_URI.into(),
            socket: None,
            socket_group: None,
            admin_group: None,
            tcp: None,
            token_file: None,
            db: None,
            policy: Policy::Advise,
            tier: crate::engine::DEFAULT_TIER,
            intercept_prefix: None,
            sample_interval_s: 10,
            sample_queue: 64,
            reconnect_s: 2,
            max_body_bytes: DEFAULT_MAX_BODY,
            build_base_dir: None,
        }
    }
}

impl Config {
    /// Parses a TOML configuration; `what` names it (its path) in errors.
    pub fn from_toml(text: &str, what: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(s) => {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    Error::Invalid(format!("{what}: line {line}: {msg}"))
                }
                None => Error::Invalid(format!("{what}: {msg}")),
            }
        })?;
        c.validate()
            .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
        Ok(c)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.uri.trim().is_empty() {
            return Err(Error::Invalid("uri is empty".into()));
        }
        if let Some(a) = self.tcp {
            if !a.ip().is_loopback() {
                return Err(Error::Invalid(format!(
                    "tcp address {a} is not a loopback address (the API listens on loopback only)"
                )));
            }
            if self.token_file.is_none() {
                return Err(Error::Invalid(format!(
                    "tcp {a} needs token_file (every TCP request carries the bearer token)"
                )));
            }
        }
        if self.sample_queue == 0 {
            return Err(Error::Invalid("sample_queue 0 must be at least 1".into()));
        }
        if self.reconnect_s == 0 {
            return Err(Error::Invalid("reconnect_s 0 must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::Invalid(format!(
                "max_body_bytes {} is below 1024",
                self.max_body_bytes
            )));
        }
        Ok(())
    }

    /// The socket path: the configured one, else `/run/prae/prae.sock` for root and
    /// `$XDG_RUNTIME_DIR/prae/prae.sock` (else the state directory) for anyone else.
    pub fn socket_path(&self) -> Result<PathBuf> {
        match &self.socket {
            Some(p) => Ok(p.clone()),
            None => default_socket(),
        }
    }
}

/// The socket clients look for when none is given (`PRAE_SOCKET` overrides it).
pub fn default_socket() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PRAE_SOCKET").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if super::server::effective_uid() == Some(0) {
        return Ok(PathBuf::from("/run/prae/prae.sock"));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("prae/prae.sock"));
    }
    Ok(crate::store::default_state_dir()?.join("prae.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("", "c").unwrap(), Config::default());
    }

    #[test]
    fn values_parse_into_api_types() {
        let c = Config::from_toml(
            "policy = \"enforce\"\ntier = \"high\"\ntcp = \"127.0.0.1:7070\"\ntoken_file = \"t\"\n",
            "c",
        )
        .unwrap();
        assert_eq!((c.policy, c.tier), (Policy::Enforce, Tier::High));
        assert_eq!(c.tcp.unwrap().port(), 7070);
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("policy = \"sometimes\"\n", "prae.toml").unwrap_err();
        assert!(e.to_string().contains("prae.toml: line 1"), "{e}");
        assert!(e.to_string().contains("sometimes"), "{e}");
        let e = Config::from_toml("polcy = \"off\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("polcy"), "{e}");
        let e = Config::from_toml("tcp = \"0.0.0.0:1\"\ntoken_file = \"t\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("0.0.0.0:1 is not a loopback"), "{e}");
        let e = Config::from_toml("tcp = \"127.0.0.1:1\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("token_file"), "{e}");
        let e = Config::from_toml("sample_interval_s = \"x\"\n", "c").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn policies_parse() {
        for p in Policy::ALL {
            assert_eq!(p.as_str().parse::<Policy>().unwrap(), p);
        }
        assert!(
            "on".parse::<Policy>()
                .unwrap_err()
                .to_string()
                .contains("'on'")
        );
    }
}
