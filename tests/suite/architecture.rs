//! The invariants of docs/architecture.md, checked on the sources themselves.

use std::path::{Path, PathBuf};

fn rust_files(under: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(under);
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// The code lines of a file: comments (`//`, `//!`, `///`) removed, `#[cfg(test)]` modules kept
/// (tests of the engine must not read the clock either).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).expect("read source");
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            (!code.trim().is_empty()).then(|| (i + 1, code.to_string()))
        })
        .collect()
}

fn offenders(dirs: &[&str], needles: &[&str], except: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        for file in rust_files(dir) {
            let shown = file
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&file)
                .display()
                .to_string();
            if except.iter().any(|e| shown.starts_with(e)) {
                continue;
            }
            for (line, code) in code_lines(&file) {
                for needle in needles {
                    if code.contains(needle) {
                        found.push(format!("{shown}:{line}: `{needle}` in `{}`", code.trim()));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_core_never_reads_the_clock() {
    let found = offenders(
        &["src/engine", "src/compile", "src/check", "src/syntax"],
        &["Utc::now", "Local::now", "SystemTime", "Instant::now"],
        &[],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_engine_does_no_io() {
    let found = offenders(
        &["src/engine"],
        &[
            "std::fs",
            "std::net",
            "std::io",
            "println!",
            "eprintln!",
            "File::",
        ],
        &[],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_the_store_imports_sled() {
    // The crate's own module `store::sled` may be named; the sled crate may not.
    let found: Vec<String> = offenders(&["src"], &["sled::", "use sled"], &["src/store/sled.rs"])
        .into_iter()
        .filter(|line| {
            let code = line.split_once(" in `").map_or("", |(_, c)| c);
            code.replace("store::sled::", "").contains("sled::") || code.contains("use sled")
        })
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_channels_email_imports_lettre() {
    let found = offenders(
        &["src"],
        &["lettre::", "use lettre"],
        &["src/channels/email.rs"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_the_parser_knows_pest() {
    let found = offenders(
        &["src"],
        &["pest::", "use pest", "pest_derive"],
        &["src/syntax/parser.rs"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = rust_files("src")
        .into_iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no `//!` header: {missing:?}");
}
