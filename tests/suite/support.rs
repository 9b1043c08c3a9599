//! What several test areas share: the repository's paths and running the real `flowc` binary.
//! Each area keeps its own helpers for its own boundary; only what is the same everywhere
//! lives here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A path inside the repository.
pub fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs the binary with `args` in `dir` (no colour); returns (exit code, stdout, stderr).
pub fn flowc_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
    command.args(args).current_dir(dir);
    run(&mut command)
}

/// Runs the binary with `args` in the repository's root (no colour).
pub fn flowc(args: &[&str]) -> (i32, String, String) {
    flowc_in(&repo(""), args)
}

/// Runs a prepared command without colour; returns (exit code, stdout, stderr).
pub fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.env("NO_COLOR", "1").output().expect("run flowc");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
