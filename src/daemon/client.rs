//! A small blocking HTTP/1.1 client for the daemon's socket (one request per connection), used
//! by the CLI, the tests and the benchmarks. It sends a [`Request`] in its HTTP form.

use super::Request;
use crate::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// A reply: HTTP status and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

impl HttpReply {
    /// The body as JSON, or the server's error message as an [`Error`].
    pub fn json(&self) -> Result<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&self.body).map_err(|e| {
            Error::Invalid(format!(
                "the daemon answered {} with no JSON: {e}",
                self.status
            ))
        })?;
        if (200..300).contains(&self.status) {
            Ok(v)
        } else {
            let msg = v
                .get("error")
                .and_then(|m| m.as_str())
                .unwrap_or("no message")
                .to_string();
            Err(Error::Invalid(format!(
                "daemon: {msg} (HTTP {})",
                self.status
            )))
        }
    }
}

/// Sends raw HTTP over any stream and reads the reply to the end.
pub fn exchange(
    mut s: impl Read + Write,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Result<HttpReply> {
    let io = |e| Error::io("the daemon's socket", e);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(io)?;
    if let Some(b) = body {
        // The server may answer (413) and close before reading everything: keep its answer.
        let _ = s.write_all(b);
    }
    let _ = s.flush();
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw)
        && raw.is_empty()
    {
        return Err(io(e));
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<HttpReply> {
    let bad = |what: &str| Error::Invalid(format!("the daemon sent a malformed reply ({what})"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("chunk size"))?;
            let size = std::str::from_utf8(&rest[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| bad("chunk size"))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size {
                return Err(bad("short chunk"));
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or_default();
        }
        body = out;
    }
    Ok(HttpReply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends raw HTTP to the daemon's Unix socket.
pub fn call_raw(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Result<HttpReply> {
    let s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| Error::io(socket.display().to_string(), e))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(600)));
    exchange(s, method, path, body, &[])
}

/// Sends a [`Request`] to the daemon's Unix socket.
pub fn call(socket: &Path, req: &Request) -> Result<HttpReply> {
    let (m, p, b) = req.to_http();
    call_raw(socket, m, &p, b.as_deref().map(str::as_bytes))
}

/// Whether a daemon answers on `socket`.
pub fn running(socket: &Path) -> bool {
    call(socket, &Request::Health).is_ok_and(|r| r.status == 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let r = parse_reply(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "{}"));
        let r = parse_reply(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, "abcde");
        assert!(parse_reply(b"garbage").is_err());
        let e = HttpReply {
            status: 400,
            body: "{\"error\":\"bad tier\"}".into(),
        }
        .json()
        .unwrap_err();
        assert_eq!(e.to_string(), "daemon: bad tier (HTTP 400)");
    }
}
