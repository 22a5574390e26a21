//! [`Hypervisor`] on the `virt` crate.

use super::*;
use crate::Error;

/// A libvirt connection.
pub struct Libvirt {
    conn: virt::connect::Connect,
}

impl Libvirt {
    /// Opens `uri` (`None`: libvirt's own default, as virsh without `-c`).
    pub fn open(uri: Option<&str>) -> Result<Self> {
        let conn = virt::connect::Connect::open(uri).map_err(|e| {
            Error::Libvirt(format!(
                "cannot connect to {}: {}",
                uri.unwrap_or("the default URI"),
                e
            ))
        })?;
        Ok(Libvirt { conn })
    }
}
