//! `prae status`: hosts, domains, allocation against use, recommendations. Asks the daemon when
//! one answers on its socket (it has live usage), else libvirt directly.

use super::prae::Format;
use crate::daemon::{self, Request, client, status};
use crate::hypervisor::{DEFAULT_URI, Libvirt};
use crate::{Error, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon's socket (default: $PRAE_SOCKET, else the daemon's default path).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(uri: Option<&str>, a: &StatusArgs) -> Result<()> {
    let socket = match &a.socket {
        Some(s) => s.clone(),
        None => daemon::config::default_socket()?,
    };
    let s: status::Status = if a.socket.is_some() || client::running(&socket) {
        let v = client::call(&socket, &Request::Status)?.json()?;
        serde_json::from_value(v)
            .map_err(|e| Error::Invalid(format!("the daemon's status is malformed: {e}")))?
    } else {
        let c = super::daemon::load_config(None)?;
        let uri = uri.unwrap_or(if c.uri.is_empty() {
            DEFAULT_URI
        } else {
            &c.uri
        });
        let hv = Libvirt::open(Some(uri))?;
        let tier = c.tier;
        status::collect(&hv, &BTreeMap::new(), c.policy, |_| {
            daemon::predict_with(
                crate::engine::PredictRequest {
                    package: None,
                    os: None,
                    tier: Some(tier),
                    pinned: Default::default(),
                },
                None,
            )
        })?
    };
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&s)
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?
        ),
        Format::Table => print!("{}", status::table(&s)),
    }
    Ok(())
}
