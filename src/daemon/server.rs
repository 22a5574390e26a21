//! The HTTP server: axum over tokio's `UnixListener` (and optionally a loopback `TcpListener`).
//! One fallback handler reads the body (bounded), parses it with [`super::api::parse_request`],
//! authenticates the peer and calls [`super::Daemon::dispatch`].

use super::api::{self, ApiError};
use super::{Daemon, Reply};
use crate::{Error, Result};
use axum::Router;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

/// The caller's end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A Unix socket peer with its credentials (`SO_PEERCRED`).
    Unix { uid: Option<u32>, gid: Option<u32> },
    /// A loopback TCP peer (authenticated by the bearer token).
    Tcp,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Peer::Unix {
                uid: Some(c.uid()),
                gid: Some(c.gid()),
            },
            Err(_) => Peer::Unix {
                uid: None,
                gid: None,
            },
        }
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, TcpListener>) -> Self {
        Peer::Tcp
    }
}

/// This process's effective user id.
pub fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A group's id from its number or its name (looked up in `/etc/group`).
pub fn resolve_group(g: &str) -> Result<u32> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group").map_err(|e| Error::io("/etc/group", e))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(name, _)| *name == g)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| Error::Invalid(format!("unknown group '{g}'")))
}

/// Binds the API's socket: creates its directory, refuses a path where a daemon already
/// listens, replaces a stale socket, and sets mode 0660 (owned by `group` when given).
pub fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Invalid(format!(
                "{shown}: a daemon is already listening there"
            )));
        }
        std::fs::remove_file(path).map_err(|e| Error::io(&shown, e))?;
    }
    let gid = group.map(resolve_group).transpose()?;
    let l = UnixListener::bind(path).map_err(|e| Error::io(&shown, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::io(&shown, e))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| Error::io(&shown, e))?;
    }
    Ok(l)
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(serde_json::json!({"error": e.message}))).into_response()
}

async fn handle(
    State(d): State<Arc<Daemon>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: HttpRequest,
) -> Response {
    let (parts, body) = req.into_parts();
    let res = async {
        // Authenticate before reading anything else from an unauthenticated TCP peer.
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = d.authenticate(&peer, auth)?;
        let limit = d.config().max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(413, format!("request body is larger than {limit} bytes"))
        })?;
        let pq = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str());
        let r = api::parse_request(parts.method.as_str(), pq, &bytes)?;
        d.dispatch(&caller, r).await
    }
    .await;
    let resp = match res {
        Ok(Reply::Json(s, v)) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
            axum::Json(v),
        )
            .into_response(),
        Ok(Reply::Text(t)) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], t).into_response()
        }
        Err(e) => {
            if e.status >= 500 {
                log::warn!("{} {}: {}", parts.method, parts.uri.path(), e.message);
            }
            error_response(&e)
        }
    };
    d.metrics.request(resp.status().as_u16());
    resp
}

fn router(d: Arc<Daemon>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(d)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Serves until the shutdown flag is set; requests in flight finish.
pub(super) async fn serve(
    d: Arc<Daemon>,
    unix: UnixListener,
    tcp: Option<TcpListener>,
    rx: watch::Receiver<bool>,
) -> Result<()> {
    let app = router(d.clone());
    let u = axum::serve(
        unix,
        app.clone().into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(stopped(rx.clone()));
    let t = tcp.map(|l| {
        axum::serve(l, app.into_make_service_with_connect_info::<Peer>())
            .with_graceful_shutdown(stopped(rx.clone()))
    });
    let io = |e: std::io::Error| Error::Io {
        path: "the API listener".into(),
        source: e,
    };
    match t {
        Some(t) => {
            let (a, b) = tokio::join!(u.into_future(), t.into_future());
            a.map_err(io)?;
            b.map_err(io)
        }
        None => u.await.map_err(io),
    }
}
