//! `prae-virsh`: virsh's own syntax. `define` and `create` are intercepted: the domain XML is
//! rewritten with prae's profile first, then handed to libvirt or virsh. Every other command is
//! passed to `virsh` unchanged (the process is replaced, so output, terminal and exit code are
//! virsh's).
//!
//! `[-q] [-c URI] define|create FILE` (no other option) goes to libvirt from this process,
//! without a virsh child (about half of the time of a define was that second process), and
//! prints virsh's message; a failure there (connection, libvirt's refusal; neither changes
//! anything) falls back to virsh below, so errors are virsh's own words and exit code.
//!
//! Intercepted commands keep virsh's behaviour too: the rewritten XML goes to virsh in a private
//! temporary file, virsh's output is passed on with that file's path replaced by the original
//! one, and virsh's exit code is returned. A file prae cannot rewrite (unreadable, not XML, not a
//! domain) is handed to virsh untouched after a one-line note, so virsh reports on it as usual.

use crate::domain;
use crate::engine::{self, PredictRequest};
use crate::model::{ResourceProfile, Tier};
use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

/// virsh's global options that take a value (`-c URI`, `--connect=URI`, ...).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "-c",
    "--connect",
    "-d",
    "--debug",
    "-e",
    "--escape",
    "-k",
    "--keepalive-interval",
    "-K",
    "--keepalive-count",
    "-l",
    "--log",
];

/// Options of intercepted commands that take a value, so their value is not taken for the file.
const COMMAND_WITH_VALUE: &[&str] = &["--pass-fds"];

/// What `prae-virsh` will do with a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run virsh with these arguments, unchanged.
    PassThrough,
    /// Rewrite the XML file at `args[file_index]` (or in `--file=PATH` form), then run virsh.
    Intercept {
        command: String,
        file_index: usize,
        /// True when the argument is `--file=PATH` rather than `PATH`.
        inline: bool,
        quiet: bool,
        console: bool,
    },
}

/// Decides from virsh's arguments (without the program name) whether to intercept.
pub fn plan(args: &[String]) -> Plan {
    let mut i = 0;
    let mut quiet = false;
    // Global options come first.
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if a == "-q" || a == "--quiet" {
            quiet = true;
        }
        if GLOBAL_WITH_VALUE.contains(&a) {
            i += 2;
        } else {
            i += 1;
        }
    }
    let Some(command) = args.get(i) else {
        return Plan::PassThrough;
    };
    if command != "define" && command != "create" {
        return Plan::PassThrough;
    }
    // Several commands in one argument (`virsh "define x; list"`) are virsh's business.
    let rest = &args[i + 1..];
    if rest.iter().any(|a| a == ";") {
        return Plan::PassThrough;
    }
    let console = rest.iter().any(|a| a == "--console");
    let mut j = 0;
    let mut file: Option<(usize, bool)> = None;
    while j < rest.len() {
        let a = rest[j].as_str();
        if a == "--file" {
            if j + 1 < rest.len() {
                file = Some((i + 1 + j + 1, false));
            }
            j += 2;
            continue;
        }
        if a.starts_with("--file=") {
            file = Some((i + 1 + j, true));
            j += 1;
            continue;
        }
        if COMMAND_WITH_VALUE.contains(&a) {
            j += 2;
            continue;
        }
        if a.starts_with("--") {
            j += 1;
            continue;
        }
        if file.is_none() {
            file = Some((i + 1 + j, false));
        }
        j += 1;
    }
    match file {
        Some((file_index, inline)) => Plan::Intercept {
            command: command.clone(),
            file_index,
            inline,
            quiet,
            console,
        },
        None => Plan::PassThrough,
    }
}

fn virsh_program() -> OsString {
    std::env::var_os("PRAE_VIRSH").unwrap_or_else(|| "virsh".into())
}

/// The tier prae-virsh sizes domains at: `PRAE_TIER` (low, medium, high), else the default tier.
fn tier_from_env() -> Result<Option<Tier>, crate::Error> {
    match std::env::var("PRAE_TIER") {
        Ok(t) if !t.is_empty() => t.parse().map(Some),
        _ => Ok(None),
    }
}

/// Runs `prae-virsh` with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    super::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match plan(&args) {
        Plan::PassThrough => exec_virsh(&args),
        Plan::Intercept {
            command,
            file_index,
            inline,
            quiet,
            console,
        } => intercept(&args, &command, file_index, inline, quiet, console),
    }
}

/// Replaces this process with virsh (Unix `exec`), so nothing of prae stands in between.
fn exec_virsh(args: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let err = Command::new(virsh_program()).args(args).exec();
    eprintln!("prae-virsh: cannot run virsh: {err}");
    127
}

fn intercept(
    args: &[String],
    command: &str,
    file_index: usize,
    inline: bool,
    quiet: bool,
    console: bool,
) -> i32 {
    let path = if inline {
        args[file_index]["--file=".len()..].to_string()
    } else {
        args[file_index].clone()
    };
    // Unreadable files and stdin go to virsh as they are: its error and behaviour are the user's
    // expectation.
    if path == "-" || path == "/dev/stdin" {
        return exec_virsh(args);
    }
    let Ok(xml) = super::read_input(&path) else {
        return exec_virsh(args);
    };
    let tier = match tier_from_env() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("prae-virsh: PRAE_TIER: {e}");
            return 1;
        }
    };
    let req = PredictRequest {
        package: None,
        os: None,
        tier,
        pinned: ResourceProfile::default(),
    };
    let rewritten = engine::predict(&req).and_then(|alloc| domain::rewrite(&xml, &alloc));
    let r = match rewritten {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prae-virsh: {path}: not rewritten: {e}");
            return exec_virsh(args);
        }
    };
    if !quiet {
        for line in super::describe(&r) {
            eprintln!("prae-virsh: {line}");
        }
    }
    if !console
        && let Some(uri) = direct_line(args)
        && let Ok(name) = define_directly(uri.as_deref(), command, &r.xml)
    {
        if !quiet {
            // virsh's message, then the blank line virsh ends every non-quiet command with.
            let done = if command == "create" {
                "created"
            } else {
                "defined"
            };
            println!("Domain '{name}' {done} from {path}\n");
        }
        return 0;
    }
    let dir = match tempfile::Builder::new().prefix("prae-virsh.").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("prae-virsh: cannot create a temporary directory: {e}");
            return 1;
        }
    };
    let file_name = std::path::Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "domain.xml".into());
    let tmp = dir.path().join(file_name);
    if let Err(e) = std::fs::write(&tmp, r.xml.as_bytes()) {
        eprintln!("prae-virsh: {}: {e}", tmp.display());
        return 1;
    }
    let tmp_str = tmp.to_string_lossy().into_owned();
    let mut new_args = args.to_vec();
    new_args[file_index] = if inline {
        format!("--file={tmp_str}")
    } else {
        tmp_str.clone()
    };
    let mut cmd = Command::new(virsh_program());
    cmd.args(&new_args);
    if console {
        // Interactive: the console needs the terminal; output is not rewritten.
        return match cmd.status() {
            Ok(s) => exit_code(s),
            Err(e) => {
                eprintln!("prae-virsh: cannot run virsh {command}: {e}");
                127
            }
        };
    }
    let out = match cmd.stdin(Stdio::inherit()).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("prae-virsh: cannot run virsh {command}: {e}");
            return 127;
        }
    };
    let fix = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp_str, &path);
    let _ = std::io::stdout().write_all(fix(&out.stdout).as_bytes());
    let _ = std::io::stderr().write_all(fix(&out.stderr).as_bytes());
    exit_code(out.status)
}

/// For a command line prae can run without virsh (`[-q] [-c URI] define|create FILE`, no other
/// option), the URI virsh would connect to (`None`: libvirt's default); `None` otherwise.
fn direct_line(args: &[String]) -> Option<Option<String>> {
    let mut uri = None;
    let mut i = 0;
    while let Some(a) = args.get(i).map(String::as_str) {
        match a {
            "-q" | "--quiet" => i += 1,
            "-c" | "--connect" => {
                uri = Some(args.get(i + 1)?.clone());
                i += 2;
            }
            _ if a.starts_with('-') => return None,
            _ => break,
        }
    }
    let rest = args.get(i + 1..)?;
    let simple = match rest {
        [f] => !f.starts_with('-') || f.starts_with("--file="),
        [o, f] => o == "--file" && !f.starts_with('-'),
        _ => false,
    };
    if !simple {
        return None;
    }
    // virsh's own default connection, as virsh reads it.
    Some(uri.or_else(|| {
        std::env::var("VIRSH_DEFAULT_CONNECT_URI")
            .ok()
            .filter(|u| !u.is_empty())
    }))
}

/// Defines (or creates) the domain through libvirt in this process; returns its name. Any
/// failure (connection, libvirt's refusal) is left to virsh, which then reports it in its own
/// words: a failed define or create changes nothing, so running it again is safe.
fn define_directly(uri: Option<&str>, command: &str, xml: &str) -> Result<String, crate::Error> {
    use crate::hypervisor::{Hypervisor, Libvirt};
    // No event loop: this connection lives for one call.
    let h = Libvirt::open_without_events(uri)?;
    if command == "create" {
        h.create(xml)
    } else {
        h.define(xml)
    }
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn passes_through_everything_but_define_and_create() {
        for line in [
            "list --all",
            "-c test:///default dominfo test",
            "frobnicate",
            "",
            "-c test:///default",
            "define",
            "-c define list",
        ] {
            assert_eq!(plan(&v(line)), Plan::PassThrough, "{line}");
        }
    }

    #[test]
    fn finds_the_file_of_define_and_create() {
        let p = plan(&v("-c qemu:///system -q define --validate dom.xml"));
        assert_eq!(
            p,
            Plan::Intercept {
                command: "define".into(),
                file_index: 5,
                inline: false,
                quiet: true,
                console: false
            }
        );
        let p = plan(&v("create --pass-fds 3,4 --file dom.xml --paused"));
        assert!(matches!(
            p,
            Plan::Intercept {
                file_index: 4,
                inline: false,
                ..
            }
        ));
        let p = plan(&v(
            "--connect test:///default create --file=dom.xml --console",
        ));
        assert!(matches!(
            p,
            Plan::Intercept {
                file_index: 3,
                inline: true,
                console: true,
                ..
            }
        ));
    }
}
