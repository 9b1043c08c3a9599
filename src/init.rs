//! `flowc init DIR`: writes a working starter project.
//!
//! Owns: the starter project (its files are embedded from `src/init/starter/`: a commented
//! `flowc.toml`, a few flows on the stdlib, their email templates, flow tests, a sample of
//! events and a `.gitignore`) and the rule that `init` never overwrites anything: the target
//! must be missing or an empty folder.
//! Must not: check, compile or run the project (the starter is kept passing `flowc check` and
//! `flowc test` by the test suite, not at run time).

use crate::cli::{InitArgs, EXIT_CANNOT_RUN, EXIT_OK};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `(path in the new project, contents)` of every starter file.
pub const FILES: &[(&str, &str)] = &[
    ("flowc.toml", include_str!("init/starter/flowc.toml")),
    (".gitignore", include_str!("init/starter/gitignore")),
    ("README.md", include_str!("init/starter/README.md")),
    (
        "flows/shop.flow",
        include_str!("init/starter/flows/shop.flow"),
    ),
    (
        "flows/welcome.flow",
        include_str!("init/starter/flows/welcome.flow"),
    ),
    (
        "flows/cart.flow",
        include_str!("init/starter/flows/cart.flow"),
    ),
    (
        "flows/orders.flow",
        include_str!("init/starter/flows/orders.flow"),
    ),
    (
        "templates/confirm.html",
        include_str!("init/starter/templates/confirm.html"),
    ),
    (
        "templates/welcome.html",
        include_str!("init/starter/templates/welcome.html"),
    ),
    (
        "templates/cart.html",
        include_str!("init/starter/templates/cart.html"),
    ),
    (
        "templates/order_confirmation.html",
        include_str!("init/starter/templates/order_confirmation.html"),
    ),
    (
        "templates/cross_sell.html",
        include_str!("init/starter/templates/cross_sell.html"),
    ),
    (
        "tests/welcome.flowtest",
        include_str!("init/starter/tests/welcome.flowtest"),
    ),
    (
        "tests/cart.flowtest",
        include_str!("init/starter/tests/cart.flowtest"),
    ),
    (
        "tests/orders.flowtest",
        include_str!("init/starter/tests/orders.flowtest"),
    ),
    (
        "events/sample.jsonl",
        include_str!("init/starter/events/sample.jsonl"),
    ),
];

/// Why the starter project could not be written (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("`{path}` is not empty")]
    NotEmpty { path: String },
    #[error("`{path}` is a file, not a folder")]
    NotAFolder { path: String },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl InitError {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            InitError::NotEmpty { .. } => {
                "`flowc init` never overwrites files: name a new folder, or an empty one"
            }
            InitError::NotAFolder { .. } => "name a new folder, such as `flowc init my-shop`",
            InitError::Write { .. } => "check the permissions of the folder and the free space",
        }
    }
}

/// Runs `flowc init DIR`.
pub fn command(args: &InitArgs) -> u8 {
    match write_starter(&args.dir) {
        Ok(written) => {
            let shown = args.dir.display();
            println!(
                "created a flowc project in `{shown}` ({} files):",
                written.len()
            );
            for file in &written {
                println!("  {}", file.display());
            }
            println!();
            println!("next:");
            println!("  flowc check {shown}");
            println!("  flowc test {shown}");
            println!("  flowc simulate {shown} --events {shown}/events/sample.jsonl");
            EXIT_OK
        }
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!("  = help: {}", error.help());
            EXIT_CANNOT_RUN
        }
    }
}

/// Writes the starter project into `dir` (created if missing; it must be empty otherwise) and
/// returns the paths written, relative to `dir`. Files are created with `create_new`, so an
/// existing file is never overwritten, even one that appears while `init` runs.
pub fn write_starter(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let shown = dir.display().to_string();
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err(InitError::NotAFolder { path: shown }),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(|source| InitError::Write {
                path: shown.clone(),
                source,
            })?;
            if entries.next().is_some() {
                return Err(InitError::NotEmpty { path: shown });
            }
        }
        Err(_) => {}
    }
    let mut written = Vec::with_capacity(FILES.len());
    for (relative, contents) in FILES {
        let path = dir.join(relative);
        let error = |source| InitError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(error)?;
        file.write_all(contents.as_bytes()).map_err(error)?;
        written.push(PathBuf::from(relative));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `src/init/starter/` is embedded, and nothing else.
    #[test]
    fn every_starter_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/init/starter");
        let mut on_disk: Vec<String> = walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let relative = e.path().strip_prefix(&root).unwrap().display().to_string();
                if relative == "gitignore" {
                    ".gitignore".to_string()
                } else {
                    relative
                }
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn refuses_a_non_empty_folder_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let error = write_starter(dir.path()).unwrap_err();
        assert!(matches!(error, InitError::NotEmpty { .. }), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        let error = write_starter(&dir.path().join("notes.txt")).unwrap_err();
        assert!(matches!(error, InitError::NotAFolder { .. }), "{error}");
    }

    #[test]
    fn writes_every_file_into_a_new_or_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_starter(dir.path()).unwrap();
        assert_eq!(written.len(), FILES.len());
        for (relative, contents) in FILES {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(relative)).unwrap(),
                *contents
            );
        }
        let nested = dir.path().join("a/b");
        assert_eq!(write_starter(&nested).unwrap().len(), FILES.len());
    }
}
