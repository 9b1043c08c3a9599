//! A project on disk: finding its `.flow` files, reading them, parsing them, pulling in the
//! stdlib modules they `use`, and the one namespace they share.
//!
//! Owns: the file layout rules of LANGUAGE.md 1, load errors (exit 2), and [`Symbols`], the
//! table from a declared name to its declaration that check and compile both read.
//! Must not: judge declarations (that is `check`) or lower them (that is `compile`).

use crate::diagnostic::{Code, Diagnostic};
use crate::stdlib;
use crate::syntax::{self, ast};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a source file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Project,
    Stdlib,
}

/// One source file: its text and, when it parsed, its syntax tree.
#[derive(Debug, Clone)]
pub struct SourceUnit {
    /// The path shown to users: relative to the project root, `stdlib/NAME.flow` for stdlib.
    pub path: PathBuf,
    pub text: String,
    pub origin: Origin,
    /// `None` when the file has a syntax error (reported in [`Project::diagnostics`]).
    pub ast: Option<ast::SourceFile>,
}

/// A loaded project: every file parsed, syntax errors collected.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder (the one that holds `flowc.toml`, `templates/`, `tests/`).
    pub root: PathBuf,
    /// Project files first (sorted by path), then the stdlib modules they use.
    pub units: Vec<SourceUnit>,
    /// Syntax errors and `use` errors found while loading.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a project could not be loaded at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{path}` does not exist")]
    NotFound { path: String },
    #[error("cannot read `{path}`: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid UTF-8 text (byte {offset}); save it as UTF-8")]
    NotUtf8 { path: String, offset: usize },
    #[error("`{path}` holds no `.flow` files; put flows in `{path}/flows/` or run `flowc init`")]
    Empty { path: String },
}

/// The project above a `flows/` folder (`folder` may be `""` or `.`, the current folder): its
/// parent, when that holds the project's `flowc.toml` or `templates/` and the folder itself
/// does not. `flowc check x.flow` and `flowc check .` run inside `flows/` see the project's
/// templates, as `flowc check flows/x.flow` does.
fn project_above(folder: &Path) -> Option<PathBuf> {
    let here = folder.as_os_str().is_empty() || folder == Path::new(".");
    let name = if here {
        std::env::current_dir().ok()?.file_name()?.to_os_string()
    } else {
        folder.file_name()?.to_os_string()
    };
    if name != "flows" || folder.join("flowc.toml").is_file() || folder.join("templates").is_dir() {
        return None;
    }
    let project = match folder.parent() {
        Some(project) if !here => project.to_path_buf(),
        _ => PathBuf::from(".."),
    };
    (project.join("flowc.toml").is_file() || project.join("templates").is_dir()).then_some(project)
}

/// For a single file outside a `flows/` folder: the nearest folder at or above `folder` that
/// holds `flowc.toml` (the project root), so that its path is shown relative to the project
/// as for `flowc check DIR`. Looks at `folder`'s own ancestors, then above the working
/// directory (`..`, `../..`, ...).
fn config_above(folder: &Path, file: &Path) -> Option<PathBuf> {
    let lexical = folder.ancestors().map(Path::to_path_buf);
    let above = if folder.is_absolute() {
        Vec::new()
    } else {
        (1..=8)
            .map(|n| (0..n).map(|_| "..").collect::<PathBuf>())
            .collect()
    };
    lexical.chain(above).find(|candidate| {
        candidate.join("flowc.toml").is_file()
            && relative_by_absolute(file, candidate).is_some_and(|r| !r.as_os_str().is_empty())
    })
}

/// `file` relative to `root` by their absolute forms (`b.flow` in `../` is `other/b.flow`).
fn relative_by_absolute(file: &Path, root: &Path) -> Option<PathBuf> {
    let here = |p: &Path| match p.as_os_str().is_empty() {
        true => PathBuf::from("."),
        false => p.to_path_buf(),
    };
    let file = std::path::absolute(here(file)).ok()?;
    let root = std::path::absolute(here(root)).ok()?;
    let file = normalise(&file);
    let root = normalise(&root);
    file.strip_prefix(&root).ok().map(Path::to_path_buf)
}

/// Removes `.` and resolves `..` lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Project {
    /// Loads a project folder (or a single `.flow` file).
    pub fn load(path: &Path) -> Result<Project, LoadError> {
        let display = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound {
                path: display.clone(),
            },
            _ => LoadError::Unreadable {
                path: display.clone(),
                source,
            },
        })?;
        let (root, files) = if meta.is_file() {
            let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let root = project_above(&folder)
                .or_else(|| config_above(&folder, path))
                .unwrap_or(folder);
            (root, vec![path.to_path_buf()])
        } else {
            let flows_dir = path.join("flows");
            if flows_dir.is_dir() {
                (path.to_path_buf(), find_flow_files(&flows_dir)?)
            } else {
                let root = project_above(path).unwrap_or_else(|| path.to_path_buf());
                (root, find_flow_files(path)?)
            }
        };
        if files.is_empty() {
            return Err(LoadError::Empty { path: display });
        }
        let mut sources = Vec::new();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|source| LoadError::Unreadable {
                path: file.display().to_string(),
                source,
            })?;
            // Relative to the project; else to the folder given (`flowc check .` in `flows/`).
            let relative = file
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .ok()
                .or_else(|| meta.is_file().then(|| relative_by_absolute(&file, &root))?)
                .or_else(|| file.strip_prefix(path).ok().map(Path::to_path_buf))
                .unwrap_or(file.clone());
            let text = String::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
                path: relative.display().to_string(),
                offset: e.utf8_error().valid_up_to(),
            })?;
            sources.push((relative, text));
        }
        Ok(Project::from_sources(root, sources))
    }

    /// Builds a project from in-memory sources (path relative to `root`, text).
    pub fn from_sources(root: PathBuf, sources: Vec<(PathBuf, String)>) -> Project {
        let mut project = Project {
            root,
            units: Vec::new(),
            diagnostics: Vec::new(),
        };
        for (path, text) in sources {
            project.add_unit(path, text, Origin::Project);
        }
        project.resolve_uses();
        project
    }

    fn add_unit(&mut self, path: PathBuf, text: String, origin: Origin) {
        let ast = match syntax::parse(&text) {
            Ok(file) => Some(file),
            Err(error) => {
                let code = match error.kind {
                    syntax::SyntaxErrorKind::OutOfRange => Code::BadValue,
                    syntax::SyntaxErrorKind::Grammar | syntax::SyntaxErrorKind::TooDeep => {
                        Code::Syntax
                    }
                };
                let mut diagnostic =
                    Diagnostic::error(code, path.clone(), error.span, error.message)
                        .with_label(error.label);
                diagnostic.help = error.help;
                diagnostic.related = error.related;
                self.diagnostics.push(diagnostic);
                None
            }
        };
        self.units.push(SourceUnit {
            path,
            text,
            origin,
            ast,
        });
    }

    /// Pulls in every stdlib module named by a `use`, transitively, once each.
    fn resolve_uses(&mut self) {
        let mut index = 0;
        while index < self.units.len() {
            let uses: Vec<(PathBuf, ast::Use)> = match &self.units[index].ast {
                Some(file) => file
                    .uses
                    .iter()
                    .map(|u| (self.units[index].path.clone(), u.clone()))
                    .collect(),
                None => Vec::new(),
            };
            for (from, use_) in uses {
                let name = &use_.module.name;
                let stdlib_path = PathBuf::from(format!("stdlib/{name}.flow"));
                if self.units.iter().any(|u| {
                    (u.origin == Origin::Stdlib && u.path == stdlib_path)
                        || self.is_stdlib_source(u, name)
                }) {
                    continue;
                }
                match stdlib::module(name) {
                    Some(text) => self.add_unit(stdlib_path, text.to_string(), Origin::Stdlib),
                    None => {
                        let names: Vec<&str> = stdlib::MODULES.iter().map(|(n, _)| *n).collect();
                        let mut d = Diagnostic::error(
                            Code::UnknownStdlibModule,
                            from,
                            use_.module.span,
                            format!("the stdlib has no module `{name}`"),
                        )
                        .with_label("unknown module");
                        d.help = Some(match crate::suggest::closest(name, names.iter().copied()) {
                            Some(best) => format!("did you mean `stdlib/{best}`?"),
                            None => format!("the stdlib modules are: {}", names.join(", ")),
                        });
                        self.diagnostics.push(d);
                    }
                }
            }
            index += 1;
        }
    }

    /// Whether a project file is the source of stdlib module `name` itself: `NAME.flow` in a
    /// folder called `stdlib` (checking flowc's own `stdlib/` folder, or a project that keeps a
    /// copy of it). Its declarations then serve `use stdlib/NAME`, instead of being declared a
    /// second time by the embedded copy.
    fn is_stdlib_source(&self, unit: &SourceUnit, name: &str) -> bool {
        if unit.origin != Origin::Project
            || unit.path.file_stem().and_then(|s| s.to_str()) != Some(name)
        {
            return false;
        }
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let file = root.join(&unit.path);
        let parent = file.parent().and_then(|p| p.file_name());
        parent.is_some_and(|p| p == "stdlib")
    }

    /// The text of a unit by its display path.
    pub fn unit(&self, path: &Path) -> Option<&SourceUnit> {
        self.units.iter().find(|u| u.path == path)
    }

    /// Every parsed declaration with the unit it came from.
    pub fn items(&self) -> impl Iterator<Item = (&SourceUnit, &ast::Item)> {
        self.units.iter().flat_map(|u| {
            u.ast
                .iter()
                .flat_map(move |f| f.items.iter().map(move |i| (u, i)))
        })
    }

    /// The shared namespace. Duplicates keep the first declaration (check reports the rest).
    pub fn symbols(&self) -> Symbols<'_> {
        let mut symbols = Symbols::default();
        for (unit, item) in self.items() {
            let decl = Declared { unit, item };
            match item {
                ast::Item::Segment(d) => {
                    symbols.segments.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::Message(d) => {
                    symbols.messages.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::Flow(d) => {
                    symbols.flows.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::FlowInstance(d) => {
                    symbols.flows.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::FlowTemplate(d) => {
                    symbols.templates.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::Event(d) => {
                    symbols.events.entry(d.name.name.clone()).or_insert(decl);
                }
                ast::Item::Policy(_) => {
                    if symbols.policy.is_none() {
                        symbols.policy = Some(decl);
                    }
                }
            }
        }
        symbols
    }
}

/// A declaration and the file it is in.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'p> {
    pub unit: &'p SourceUnit,
    pub item: &'p ast::Item,
}

/// Name → declaration, one map per kind. Names are unique across kinds in a project
/// (check reports a clash), so a name finds at most one declaration.
#[derive(Debug, Default)]
pub struct Symbols<'p> {
    pub segments: BTreeMap<String, Declared<'p>>,
    pub messages: BTreeMap<String, Declared<'p>>,
    /// Flows and template instantiations.
    pub flows: BTreeMap<String, Declared<'p>>,
    pub templates: BTreeMap<String, Declared<'p>>,
    /// Event schemas.
    pub events: BTreeMap<String, Declared<'p>>,
    pub policy: Option<Declared<'p>>,
}

fn find_flow_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| dir.display().to_string());
            LoadError::Unreadable {
                path,
                source: e.into(),
            }
        })?;
        let is_flow =
            entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "flow");
        if is_flow {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}
