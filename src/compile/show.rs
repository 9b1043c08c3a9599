//! Compiled expressions, triggers and steps written back in the language's own syntax, for
//! people: `flowc graph` labels, trace lines, diffs.
//!
//! Owns: the text form of IR pieces. Must not: be parsed back (it is for reading; the IR in
//! JSON is the machine form) or change meaning (it prints what the engine runs).

use super::ir::*;
use std::fmt::Write as _;

/// `HH:MM` of a minute of the day.
pub fn clock(minute_of_day: u16) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

fn path(root: Root, fields: &[String]) -> String {
    let mut text = String::from(match root {
        Root::Contact => "contact",
        Root::Trigger => "trigger",
        Root::Event => "event",
    });
    for field in fields {
        text.push('.');
        text.push_str(field);
    }
    text
}

fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div => 5,
    }
}

fn operator(op: BinOp) -> &'static str {
    match op {
        BinOp::Or => "or",
        BinOp::And => "and",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
    }
}

impl CompiledProject {
    /// An expression in source syntax, parenthesised only where precedence needs it.
    pub fn show_expr(&self, expr: &Expr) -> String {
        let mut out = String::new();
        self.write_expr(&mut out, expr, 0);
        out
    }

    fn write_expr(&self, out: &mut String, expr: &Expr, outer: u8) {
        match expr {
            Expr::Null => out.push_str("null"),
            Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Expr::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Expr::String(s) => {
                let _ = write!(out, "{}", serde_json::Value::String(s.clone()));
            }
            Expr::Duration(d) => {
                let _ = write!(out, "{d}");
            }
            Expr::Time(t) => out.push_str(&clock(*t)),
            Expr::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.write_expr(out, item, 0);
                }
                out.push(']');
            }
            Expr::Path { root, fields } => out.push_str(&path(*root, fields)),
            Expr::Exists { root, fields } => {
                let _ = write!(out, "exists({})", path(*root, fields));
            }
            Expr::Segment(id) => out.push_str(
                self.segments
                    .get(id.index())
                    .map_or("?", |s| s.name.as_str()),
            ),
            Expr::CanReceive(channel) => {
                let _ = write!(out, "can_receive({})", channel.keyword());
            }
            Expr::Count {
                event,
                filter,
                within,
            } => {
                let _ = write!(out, "count({}", self.event_name(*event));
                if let Some(filter) = filter {
                    out.push_str(" where ");
                    self.write_expr(out, filter, 0);
                }
                if let Some(within) = within {
                    let _ = write!(out, " within {within}");
                }
                out.push(')');
            }
            Expr::Sum {
                event,
                property,
                within,
            } => {
                let _ = write!(
                    out,
                    "sum({}.{}",
                    self.event_name(*event),
                    property.join(".")
                );
                if let Some(within) = within {
                    let _ = write!(out, " within {within}");
                }
                out.push(')');
            }
            Expr::Last { event, property } => {
                let _ = write!(
                    out,
                    "last({}.{})",
                    self.event_name(*event),
                    property.join(".")
                );
            }
            Expr::Since(event) => {
                let _ = write!(out, "since({})", self.event_name(*event));
            }
            Expr::Not(inner) => {
                out.push_str("not ");
                self.write_expr(out, inner, 6);
            }
            Expr::Neg(inner) => {
                out.push('-');
                self.write_expr(out, inner, 6);
            }
            Expr::Binary { op, lhs, rhs } => {
                let own = precedence(*op);
                let parens = own < outer;
                if parens {
                    out.push('(');
                }
                self.write_expr(out, lhs, own);
                let _ = write!(out, " {} ", operator(*op));
                self.write_expr(out, rhs, own + 1);
                if parens {
                    out.push(')');
                }
            }
            Expr::In { needle, list } => {
                let parens = outer > 3;
                if parens {
                    out.push('(');
                }
                self.write_expr(out, needle, 4);
                out.push_str(" in ");
                self.write_expr(out, list, 4);
                if parens {
                    out.push(')');
                }
            }
        }
    }

    /// `order_completed where trigger.total > 50`
    pub fn show_event_match(&self, event: &EventMatch) -> String {
        let mut text = self.event_name(event.event).to_string();
        if let Some(filter) = &event.filter {
            text.push_str(" where ");
            text.push_str(&self.show_expr(filter));
        }
        text
    }

    /// A trigger as written after `when`.
    pub fn show_trigger(&self, trigger: &Trigger) -> String {
        match trigger {
            Trigger::Event(event) => self.show_event_match(event),
            Trigger::Entering(segment) => format!(
                "entering {}",
                self.segments
                    .get(segment.index())
                    .map_or("?", |s| s.name.as_str())
            ),
            Trigger::Every { every, at, segment } => {
                let mut text = format!("every {every}");
                if let Some(at) = at {
                    let _ = write!(text, " at {}", clock(*at));
                }
                let _ = write!(
                    text,
                    " for {}",
                    self.segments
                        .get(segment.index())
                        .map_or("?", |s| s.name.as_str())
                );
                text
            }
            Trigger::Anniversary { field, at } => {
                format!(
                    "anniversary of contact.{} at {}",
                    field.join("."),
                    clock(*at)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> CompiledProject {
        CompiledProject {
            format_version: FORMAT_VERSION,
            default_timezone: "UTC".into(),
            events: vec!["order_completed".into()],
            segments: Vec::new(),
            messages: Vec::new(),
            flows: Vec::new(),
            policy: CompiledPolicy::default(),
            schemas: Vec::new(),
            history: Vec::new(),
        }
    }

    #[test]
    fn parenthesises_only_where_precedence_needs_it() {
        let p = project();
        let total = Expr::Path {
            root: Root::Trigger,
            fields: vec!["total".into()],
        };
        let gt = Expr::Binary {
            op: BinOp::Gt,
            lhs: Box::new(total.clone()),
            rhs: Box::new(Expr::Number(50.0)),
        };
        let or = Expr::Binary {
            op: BinOp::Or,
            lhs: Box::new(gt.clone()),
            rhs: Box::new(Expr::CanReceive(crate::syntax::ast::Channel::Sms)),
        };
        let and = Expr::Binary {
            op: BinOp::And,
            lhs: Box::new(or),
            rhs: Box::new(Expr::Not(Box::new(Expr::Count {
                event: EventId(0),
                filter: None,
                within: Some(Dur::Seconds(7 * 86_400)),
            }))),
        };
        assert_eq!(
            p.show_expr(&and),
            "(trigger.total > 50 or can_receive(sms)) and not count(order_completed within 1w)"
        );
        assert_eq!(p.show_expr(&gt), "trigger.total > 50");
    }
}
