//! Running the host tools the harness drives (`ip`, `nft`, `kill`, the `perdura` CLI): one place
//! that turns a non-zero exit into a typed error carrying the command line and its stderr.

use std::io::Write;
use std::process::{Command, Stdio};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` timed out after {seconds}s")]
    Timeout { command: String, seconds: u64 },
    #[error("net id {net_id}: {detail}")]
    NetInUse { net_id: u8, detail: String },
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to completion, feeding it `stdin`; its stdout on success.
pub fn run_with_input(command: &mut Command, stdin: &str) -> Result<String, ExecError> {
    let line = describe(command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ExecError::Spawn {
            command: line.clone(),
            source,
        })?;
    if let Some(mut input) = child.stdin.take() {
        // A tool that exits without reading its input reports that through its status.
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|source| ExecError::Spawn {
            command: line.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(ExecError::Failed {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs `program args…` to completion; its stdout on success.
pub fn run(program: &str, args: &[&str]) -> Result<String, ExecError> {
    run_with_input(Command::new(program).args(args), "")
}

/// Like [`run`], but a failure is ignored (the result says whether it succeeded): for
/// best-effort teardown steps whose target may already be gone.
pub fn run_quietly(program: &str, args: &[&str]) -> bool {
    run(program, args).is_ok()
}

/// Whether the harness runs as root (the owner of `/proc/self`), which namespaces and nft need.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
