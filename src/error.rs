//! The library's error type. Messages are one sentence, lower case, naming the offending value;
//! they do not repeat their source's text.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A value the caller gave cannot be used (unknown tier, 0 vCPUs, bad size, ...).
    #[error("{0}")]
    Invalid(String),
    /// The input is not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// The XML is well-formed but is not a libvirt domain (or lacks what a domain needs).
    #[error("not a libvirt domain: {0}")]
    NotADomain(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// libvirt refused or failed an operation.
    #[error("libvirt: {0}")]
    Libvirt(String),
    /// Something the caller asked for does not exist (domain, pool, volume, snapshot).
    #[error("{0} not found")]
    NotFound(String),
    /// The operation is not supported by this hypervisor or host.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The history store (database) refused or failed an operation.
    #[error("store: {0}")]
    Store(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
