//! Helpers shared by the integration tests that run the `nnc` binary.

use std::process::Command;

/// Runs `nnc args…`: (exit code, stdout, stderr).
pub fn nnc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
