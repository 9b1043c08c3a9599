//! The small type system of expressions (LANGUAGE.md 5): what kind of value an expression
//! has, as far as the checker can tell before any event arrives.
//!
//! Owns: [`Ty`] and how the values of event schemas and parameters map to it.
//! Must not: evaluate anything (the engine does).

use crate::syntax::ast::{ParamType, PropertyType};

/// The type of an expression. `Unknown` is a JSON value whose type only the data decides
/// (`contact.plan`); it is compatible with every other type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Number,
    Duration,
    String,
    Bool,
    Time,
    List,
    Null,
    Unknown,
}

impl Ty {
    /// Words for a message: "a number", "a duration".
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Number => "a number",
            Ty::Duration => "a duration",
            Ty::String => "text",
            Ty::Bool => "a true/false value",
            Ty::Time => "a time of day",
            Ty::List => "a list",
            Ty::Null => "`null`",
            Ty::Unknown => "a value",
        }
    }

    /// Whether a value of this type may stand where `other` is expected.
    pub fn fits(self, other: Ty) -> bool {
        self == other
            || matches!(self, Ty::Unknown | Ty::Null)
            || matches!(other, Ty::Unknown | Ty::Null)
    }

    pub fn of_property(ty: PropertyType) -> Ty {
        match ty {
            PropertyType::String => Ty::String,
            PropertyType::Number => Ty::Number,
            PropertyType::Bool => Ty::Bool,
            PropertyType::List => Ty::List,
            // An RFC 3339 string, and an object: only the data says more.
            PropertyType::Time | PropertyType::Object => Ty::Unknown,
        }
    }

    /// The value type of a parameter (`None` for the name kinds: message, segment, event).
    pub fn of_param(ty: ParamType) -> Option<Ty> {
        match ty {
            ParamType::Duration => Some(Ty::Duration),
            ParamType::Number => Some(Ty::Number),
            ParamType::String => Some(Ty::String),
            ParamType::Bool | ParamType::Segment => Some(Ty::Bool),
            ParamType::Message | ParamType::Event => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ty;

    #[test]
    fn unknown_fits_everything() {
        assert!(Ty::Unknown.fits(Ty::Duration));
        assert!(Ty::Number.fits(Ty::Unknown));
        assert!(!Ty::Number.fits(Ty::Duration));
    }
}
