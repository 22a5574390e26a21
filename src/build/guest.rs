//! Talking to a build guest through the QEMU guest agent: ping, `guest-exec` of an argument
//! vector (never a shell) with its output, shutdown.

use crate::hypervisor::{DomainState, Hypervisor};
use crate::{Error, Result};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The guest's `PATH` for commands run through the agent (`env` replaces the agent's own).
const GUEST_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A domain's guest agent.
pub struct Agent<'a> {
    pub hv: &'a dyn Hypervisor,
    pub domain: &'a str,
}

/// What a command run through `guest-exec` returned.
#[derive(Debug, Clone)]
pub struct Exec {
    pub what: String,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Exec {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none()
    }

    /// The last `n` non-empty lines of stderr (else stdout), joined with " | ".
    pub fn tail(&self, n: usize) -> String {
        let pick = |t: &str| {
            let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            lines[lines.len().saturating_sub(n)..].join(" | ")
        };
        let e = pick(&self.stderr);
        if e.is_empty() { pick(&self.stdout) } else { e }
    }

    /// An error naming the command, its exit status and its last output lines.
    pub fn error(&self, domain: &str) -> Error {
        Error::Invalid(format!(
            "`{}` failed in build guest {domain} (exit {}{}): {}",
            self.what,
            self.exit_code.map_or("?".into(), |c| c.to_string()),
            self.signal
                .map_or(String::new(), |s| format!(", signal {s}")),
            self.tail(3)
        ))
    }
}

impl Agent<'_> {
    /// One agent command; the reply's `return` value.
    pub fn call(&self, command: &Value, timeout_secs: i32) -> Result<Value> {
        let reply = self
            .hv
            .agent_command(self.domain, &command.to_string(), timeout_secs)?;
        let v: Value = serde_json::from_str(&reply).map_err(|e| {
            Error::Libvirt(format!("guest agent of {}: bad reply ({e})", self.domain))
        })?;
        v.get("return").cloned().ok_or_else(|| {
            Error::Libvirt(format!(
                "guest agent of {}: reply without return",
                self.domain
            ))
        })
    }

    /// Polls `guest-ping` until it answers or `deadline` passes.
    pub fn wait(&self, deadline: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            match self.call(&json!({"execute": "guest-ping"}), 5) {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) => {
                    if start.elapsed() >= deadline {
                        return Err(Error::Timeout(format!(
                            "the guest agent of {} did not answer within {} s (last error: {e})",
                            self.domain,
                            deadline.as_secs()
                        )));
                    }
                    if let Ok(info) = self.hv.domain_info(self.domain)
                        && info.state != DomainState::Running
                    {
                        return Err(Error::Invalid(format!(
                            "build guest {} stopped while booting ({:?})",
                            self.domain, info.state
                        )));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs `path args...` (no shell) with `input` on stdin; polls until it exits or `deadline`
    /// passes (then [`Error::Timeout`]; the guest is left to the caller's guard). `tick` runs
    /// between polls.
    pub fn exec(
        &self,
        path: &str,
        args: &[&str],
        input: Option<&[u8]>,
        deadline: Duration,
        mut tick: impl FnMut(),
    ) -> Result<Exec> {
        let mut arguments = json!({
            "path": path,
            "arg": args,
            "env": [GUEST_PATH, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"],
            "capture-output": true,
        });
        if let Some(input) = input {
            arguments["input-data"] = Value::from(base64_encode(input));
        }
        let what = std::iter::once(path)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let started = Instant::now();
        let pid = self.call(
            &json!({"execute": "guest-exec", "arguments": arguments}),
            30,
        )?["pid"]
            .as_i64()
            .ok_or_else(|| Error::Libvirt(format!("guest-exec `{what}`: no pid in the reply")))?;
        loop {
            tick();
            let status = self.call(
                &json!({"execute": "guest-exec-status", "arguments": {"pid": pid}}),
                30,
            )?;
            if status["exited"].as_bool() == Some(true) {
                let text = |key: &str| {
                    let b64 = status[key].as_str().unwrap_or("");
                    String::from_utf8_lossy(&base64_decode(b64).unwrap_or_default()).into_owned()
                };
                return Ok(Exec {
                    what,
                    exit_code: status["exitcode"].as_i64(),
                    signal: status["signal"].as_i64(),
                    stdout: text("out-data"),
                    stderr: text("err-data"),
                    elapsed: started.elapsed(),
                });
            }
            if started.elapsed() >= deadline {
                return Err(Error::Timeout(format!(
                    "`{what}` still running in build guest {} after {} s",
                    self.domain,
                    deadline.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// [`Agent::exec`] that must exit 0.
    pub fn run(
        &self,
        path: &str,
        args: &[&str],
        input: Option<&[u8]>,
        deadline: Duration,
    ) -> Result<Exec> {
        let r = self.exec(path, args, input, deadline, || {})?;
        if r.ok() {
            Ok(r)
        } else {
            Err(r.error(self.domain))
        }
    }

    fn state(&self) -> Option<DomainState> {
        self.hv.domain_info(self.domain).ok().map(|i| i.state)
    }

    fn wait_shutoff(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.state() == Some(DomainState::Shutoff) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// Powers the guest off: `guest-shutdown` (with dbus in the guest it works; the agent sends
    /// no reply), then `systemctl poweroff` through `guest-exec`, each with `deadline`.
    /// Returns the method that worked.
    pub fn shutdown(&self, deadline: Duration) -> Result<&'static str> {
        let _ = self.call(&json!({"execute": "guest-shutdown"}), 10);
        if self.wait_shutoff(deadline) {
            return Ok("guest-shutdown");
        }
        let _ = self.call(
            &json!({"execute": "guest-exec", "arguments": {
                "path": "/usr/bin/systemctl", "arg": ["poweroff"], "env": [GUEST_PATH]}}),
            10,
        );
        if self.wait_shutoff(deadline) {
            return Ok("systemctl poweroff");
        }
        Err(Error::Timeout(format!(
            "build guest {} did not power off within {} s of guest-shutdown and systemctl poweroff",
            self.domain,
            deadline.as_secs()
        )))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what the guest agent sends and expects).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional, whitespace ignored); `None` when it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let digits = digits.strip_suffix(b"==").unwrap_or(&digits);
    let digits = digits.strip_suffix(b"=").unwrap_or(digits);
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|&d| d == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(base64_decode("Zm9*"), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
    }
}
