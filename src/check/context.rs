//! What every rule reads and writes: the project, its namespace, and the list of problems.
//!
//! Owns: [`Context`] (the project, [`Symbols`], event schemas, the diagnostics found so far,
//! and the names that were used, for the unused-declaration warnings) and [`Scope`] (the
//! parameters visible in a segment or flow template body).
//! Must not: decide anything itself; rules do.

use crate::diagnostic::{Code, Diagnostic};
use crate::project::{Origin, Project, SourceUnit, Symbols};
use crate::syntax::ast::{self, Span};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The shared state of one check run.
pub struct Context<'p> {
    pub project: &'p Project,
    pub symbols: Symbols<'p>,
    /// Event name → its schema (the first declaration of the name).
    pub schemas: BTreeMap<&'p str, &'p ast::EventDecl>,
    pub diagnostics: Vec<Diagnostic>,
    /// Segments and messages referenced anywhere (W0002, W0003).
    pub used_segments: HashSet<String>,
    pub used_messages: HashSet<String>,
    /// Message → the `trigger.NAME` its templates read (`message_properties`).
    pub trigger_reads: HashMap<String, Vec<TriggerRead>>,
    /// Message → the `event.NAME` its templates read (`message_events`).
    pub event_reads: HashMap<String, Vec<TriggerRead>>,
    /// `(message, property)` of `event.` reads already reported (`message_events`).
    pub reported_event_reads: HashSet<(String, String)>,
    /// Flows whose trigger events are known by name, with the messages they send.
    pub flow_sends: Vec<FlowSends>,
}

/// One `{{ trigger.NAME }}` (or `{{ event.NAME }}`) in a message template.
#[derive(Debug, Clone)]
pub struct TriggerRead {
    pub property: String,
    /// Where in the `.flow` file (the string, or the `file(...)` that holds the template).
    pub span: Span,
    /// The template file and its line, for a `file(...)` body.
    pub in_file: Option<(String, usize)>,
}

/// A flow (or instantiation) that starts on named events and sends named messages.
#[derive(Debug, Clone)]
pub struct FlowSends {
    pub flow: String,
    pub events: Vec<String>,
    pub messages: Vec<String>,
}

impl<'p> Context<'p> {
    pub fn new(project: &'p Project) -> Self {
        let symbols = project.symbols();
        let mut schemas = BTreeMap::new();
        for (_, item) in project.items() {
            if let ast::Item::Event(decl) = item {
                schemas.entry(decl.name.name.as_str()).or_insert(decl);
            }
        }
        Context {
            project,
            symbols,
            schemas,
            diagnostics: Vec::new(),
            used_segments: HashSet::new(),
            used_messages: HashSet::new(),
            trigger_reads: HashMap::new(),
            event_reads: HashMap::new(),
            reported_event_reads: HashSet::new(),
            flow_sends: Vec::new(),
        }
    }

    /// Adds a diagnostic about `unit`.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// A new diagnostic about `span` in `unit`, to be finished with `with_label`/`with_help`
    /// and given to [`Context::report`].
    pub fn at(unit: &SourceUnit, code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, unit.path.clone(), span, message)
    }

    /// The segment declaration named `name`.
    pub fn segment(&self, name: &str) -> Option<(&'p SourceUnit, &'p ast::SegmentDecl)> {
        let declared = self.symbols.segments.get(name)?;
        match declared.item {
            ast::Item::Segment(d) => Some((declared.unit, d)),
            _ => None,
        }
    }

    pub fn message(&self, name: &str) -> Option<&'p ast::MessageDecl> {
        match self.symbols.messages.get(name)?.item {
            ast::Item::Message(d) => Some(d),
            _ => None,
        }
    }

    pub fn template(&self, name: &str) -> Option<(&'p SourceUnit, &'p ast::FlowTemplateDecl)> {
        let declared = self.symbols.templates.get(name)?;
        match declared.item {
            ast::Item::FlowTemplate(d) => Some((declared.unit, d)),
            _ => None,
        }
    }

    /// The help for an unknown name that is declared as something else: what it is first (a
    /// flow named in `send` is a flow, whatever message is spelt close to it), then the hint.
    pub fn kind_first(&self, name: &str, expected: &str, hint: Option<String>) -> Option<String> {
        match (self.kind_of(name), hint) {
            (Some(kind), Some(hint)) => Some(format!("`{name}` is {kind}, not {expected}; {hint}")),
            (Some(kind), None) => Some(format!("`{name}` is {kind}, not {expected}")),
            (None, hint) => hint,
        }
    }

    /// What kind of declaration `name` is, if it is declared at all ("a message").
    pub fn kind_of(&self, name: &str) -> Option<&'static str> {
        if self.symbols.segments.contains_key(name) {
            Some("a segment")
        } else if self.symbols.messages.contains_key(name) {
            Some("a message")
        } else if self.symbols.templates.contains_key(name) {
            Some("a flow template")
        } else if self.symbols.flows.contains_key(name) {
            Some("a flow")
        } else if self.symbols.events.contains_key(name) {
            Some("an event")
        } else {
            None
        }
    }
}

/// Whether a unit belongs to the user's project (not the stdlib).
pub fn is_project(unit: &SourceUnit) -> bool {
    unit.origin == Origin::Project
}

/// The parameters visible in a segment or flow template body (empty in a plain flow).
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    pub params: &'a [ast::Param],
}

impl<'a> Scope<'a> {
    pub fn new(params: &'a [ast::Param]) -> Self {
        Scope { params }
    }
    pub fn param(&self, name: &str) -> Option<&'a ast::Param> {
        self.params.iter().find(|p| p.name.name == name)
    }
    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        self.params.iter().map(|p| p.name.name.as_str())
    }
}

/// The stdlib module that declares `name`, if one does (for "add `use stdlib/...`" help).
pub fn stdlib_home(name: &str) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<(&'static str, Vec<String>)>> =
        std::sync::OnceLock::new();
    let modules = NAMES.get_or_init(|| {
        crate::stdlib::MODULES
            .iter()
            .map(|(module, text)| {
                let names = crate::syntax::parse(text)
                    .map(|file| {
                        file.items
                            .iter()
                            .filter_map(|i| i.name().map(|n| n.name.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                (*module, names)
            })
            .collect()
    });
    modules
        .iter()
        .find(|(_, names)| names.iter().any(|n| n == name))
        .map(|(module, _)| *module)
}

/// "`x` is declared in `stdlib/m`: add `use stdlib/m` at the top of the file".
pub fn stdlib_help(name: &str) -> Option<String> {
    stdlib_home(name).map(|module| {
        format!("`{name}` is declared in `stdlib/{module}`: add `use stdlib/{module}` at the top of the file")
    })
}

/// `"did you mean `x`?"` for the closest candidate, if one is close.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    crate::suggest::closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}
