//! `flowc fmt`: every `.flow` file in one canonical layout.
//!
//! Owns: the command (which files, `--check`, stdin, atomic writes, exit codes), the public
//! [`format_source`] entry point, and the proof obligations of a formatter: [`same_meaning`]
//! (the tree of the output equals the tree of the input, spans aside) and [`comment_texts`]
//! (every comment kept, in order). The layout rules live in [`layout`].
//! Must not: change meaning (the command re-parses its own output and refuses to write a file
//! whose tree would change), touch a file that does not parse, or judge a project (that is
//! `flowc check`).

pub mod layout;

use crate::cli::{FmtArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::diagnostic::line_column;
use crate::syntax::{self, ast::SourceFile, SyntaxError};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The canonical text of a `.flow` file, or its first syntax error.
///
/// ```
/// let text = "segment  vip=contact.plan==\"pro\"   # paying\n";
/// let formatted = flowc::fmt::format_source(text).unwrap();
/// assert_eq!(formatted, "segment vip = contact.plan == \"pro\"  # paying\n");
/// assert_eq!(flowc::fmt::format_source(&formatted).unwrap(), formatted);
/// ```
pub fn format_source(text: &str) -> Result<String, SyntaxError> {
    let file = syntax::parse(text)?;
    Ok(layout::layout(text, &file))
}

/// Whether two parsed files say the same thing: equal trees once every span (and the list of
/// comments) is left out. Parentheses are not nodes, so `(a and b) or c` and `a and b or c`
/// are the same; `2 days` and `2d` are the same duration.
pub fn same_meaning(a: &SourceFile, b: &SourceFile) -> bool {
    match (tree_without_spans(a), tree_without_spans(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The tree of a file as JSON without spans or comments (for [`same_meaning`] and for tests
/// that show a difference).
pub fn tree_without_spans(file: &SourceFile) -> Option<serde_json::Value> {
    let mut value = serde_json::to_value(file).ok()?;
    if let serde_json::Value::Object(map) = &mut value {
        map.remove("comments");
    }
    strip_spans(&mut value);
    Some(value)
}

fn strip_spans(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|key, _| key != "span" && !key.ends_with("_span"));
            map.values_mut().for_each(strip_spans);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_spans),
        _ => {}
    }
}

/// The text of every comment of a file in order, without trailing spaces (what `flowc fmt`
/// must keep).
pub fn comment_texts(file: &SourceFile) -> Vec<String> {
    file.comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect()
}

/// What formatting one text gave.
enum Outcome {
    Unchanged,
    Changed(String),
}

/// Formats `text` and proves the result: it parses, means the same, keeps every comment and
/// is stable. `Err` holds a message for the user.
fn format_checked(text: &str, name: &str) -> Result<Outcome, String> {
    let before = syntax::parse(text).map_err(|e| syntax_error(name, text, &e))?;
    let formatted = layout::layout(text, &before);
    if formatted == text {
        return Ok(Outcome::Unchanged);
    }
    let bug = |what: &str| {
        format!(
            "error: {name}: flowc fmt would {what}; the file is left unchanged \
             (this is a bug in flowc, please report it with this file)"
        )
    };
    let after = syntax::parse(&formatted).map_err(|_| bug("write text that does not parse"))?;
    if !same_meaning(&before, &after) {
        return Err(bug("change the meaning"));
    }
    if comment_texts(&before) != comment_texts(&after) {
        return Err(bug("lose or reorder a comment"));
    }
    if layout::layout(&formatted, &after) != formatted {
        return Err(bug("not reach a stable layout"));
    }
    Ok(Outcome::Changed(formatted))
}

/// `file:line:col: error: message` with the help line, as `flowc fmt` prints a syntax error.
fn syntax_error(name: &str, text: &str, error: &SyntaxError) -> String {
    let (line, column) = line_column(text, error.span.start);
    let mut message = format!("{name}:{line}:{column}: error: {}", error.message);
    if let Some(help) = &error.help {
        message.push_str(&format!("\n  help: {help}"));
    }
    message.push_str("\n  the file is left unchanged");
    message
}

/// `flowc fmt [PATHS] [--check]`.
pub fn command(args: &FmtArgs) -> u8 {
    let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    if stdin {
        if args.paths.len() > 1 {
            eprintln!("error: `-` (standard input) cannot be mixed with other paths");
            return EXIT_CANNOT_RUN;
        }
        return format_stdin(args.check);
    }
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for root in &roots {
        match collect_files(root) {
            Ok(found) => files.extend(found),
            Err(message) => {
                eprintln!("{message}");
                return EXIT_CANNOT_RUN;
            }
        }
    }
    files.sort();
    files.dedup();

    let mut code = EXIT_OK;
    let mut changed = 0usize;
    for file in &files {
        let name = file.display().to_string();
        let text = match read_text(file) {
            Ok(text) => text,
            Err(message) => {
                eprintln!("{message}");
                code = EXIT_CANNOT_RUN;
                continue;
            }
        };
        match format_checked(&text, &name) {
            Ok(Outcome::Unchanged) => {}
            Ok(Outcome::Changed(formatted)) => {
                changed += 1;
                if args.check {
                    println!("{name}: not formatted");
                    print!("{}", short_diff(&text, &formatted, &name));
                    code = code.max(EXIT_ERRORS);
                } else if let Err(error) = write_atomically(file, &formatted) {
                    eprintln!("error: cannot write `{name}`: {error}");
                    code = EXIT_CANNOT_RUN;
                } else {
                    eprintln!("formatted {name}");
                }
            }
            Err(message) => {
                eprintln!("{message}");
                code = code.max(EXIT_ERRORS);
            }
        }
    }
    if args.check && changed > 0 {
        eprintln!(
            "{changed} of {} file{} would be reformatted; run `flowc fmt` to fix",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
    }
    code
}

fn format_stdin(check: bool) -> u8 {
    let mut bytes = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("error: cannot read standard input: {error}");
        return EXIT_CANNOT_RUN;
    }
    let Ok(text) = String::from_utf8(bytes) else {
        eprintln!("error: standard input is not valid UTF-8 text");
        return EXIT_CANNOT_RUN;
    };
    let name = "<stdin>";
    let output = match format_checked(&text, name) {
        Ok(Outcome::Unchanged) => text.clone(),
        Ok(Outcome::Changed(formatted)) => formatted,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_ERRORS;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if check {
        if output == text {
            return EXIT_OK;
        }
        let _ = writeln!(stdout, "{name}: not formatted");
        let _ = write!(stdout, "{}", short_diff(&text, &output, name));
        return EXIT_ERRORS;
    }
    if stdout.write_all(output.as_bytes()).is_err() {
        return EXIT_CANNOT_RUN;
    }
    EXIT_OK
}

/// The files a path stands for: the file itself, or every `*.flow` under a folder (not in
/// `target/` or hidden folders such as `.git/`), in name order.
fn collect_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(root).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!("error: `{}` does not exist", root.display()),
        _ => format!("error: cannot read `{}`: {error}", root.display()),
    })?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            if entry.depth() == 0 || !entry.file_type().is_dir() {
                return true;
            }
            let name = entry.file_name().to_string_lossy();
            !(name.starts_with('.') || name == "target")
        });
    for entry in walker {
        let entry = entry.map_err(|error| format!("error: cannot read a folder: {error}"))?;
        let is_flow =
            entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "flow");
        if is_flow {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|error| format!("error: cannot read `{}`: {error}", path.display()))?;
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "error: `{}` is not valid UTF-8 text (byte {}); save it as UTF-8",
            path.display(),
            error.utf8_error().valid_up_to()
        )
    })
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`, so that a
/// crash never leaves half a file. The file keeps its permissions.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file.flow".into());
    let temp = dir.join(format!(".{file_name}.flowc-fmt-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&temp, meta.permissions())?;
        }
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A unified diff of at most 40 lines, with 2 lines of context.
fn short_diff(old: &str, new: &str, name: &str) -> String {
    const MAX_LINES: usize = 40;
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(name, &format!("{name} (formatted)"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for line in lines.iter().take(MAX_LINES) {
        out.push_str(line);
        out.push('\n');
    }
    if lines.len() > MAX_LINES {
        out.push_str(&format!("... ({} more lines)\n", lines.len() - MAX_LINES));
    }
    out
}
