//! A throwaway recursive-descent parser for the subset of the flow language the engine tests
//! use, so that the engine can be tested before `syntax::parse` lands. Newlines are treated as
//! spaces (the test flows never need them to end a statement). Delete once the real parser is
//! merged.

use flowc::syntax::ast::*;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Dur(u64, DurationUnit),
    Pct(f64),
    Time(u8, u8),
    Punct(&'static str),
}

fn unit(word: &str) -> Option<DurationUnit> {
    Some(match word {
        "s" | "second" | "seconds" => DurationUnit::Seconds,
        "min" | "minute" | "minutes" => DurationUnit::Minutes,
        "h" | "hour" | "hours" => DurationUnit::Hours,
        "d" | "day" | "days" => DurationUnit::Days,
        "w" | "week" | "weeks" => DurationUnit::Weeks,
        "mo" | "month" | "months" => DurationUnit::Months,
        "y" | "year" | "years" => DurationUnit::Years,
        _ => return None,
    })
}

fn lex(text: &str) -> Vec<(Tok, Span)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_whitespace() || c == b';' {
            i += 1;
            continue;
        }
        if c == b'"' {
            i += 1;
            let mut s = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    s.push(match b[i] {
                        b'n' => '\n',
                        b't' => '\t',
                        o => o as char,
                    });
                    i += 1;
                    continue;
                }
                let ch = text[i..].chars().next().unwrap();
                s.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
            out.push((Tok::Str(s), Span::new(start, i)));
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            let num = &text[start..i];
            if i < b.len() && b[i] == b':' && i + 2 < b.len() && b[i + 1].is_ascii_digit() {
                let h: u8 = num.parse().unwrap();
                let m: u8 = text[i + 1..i + 3].parse().unwrap();
                i += 3;
                out.push((Tok::Time(h, m), Span::new(start, i)));
                continue;
            }
            if i < b.len() && b[i] == b'%' {
                i += 1;
                out.push((Tok::Pct(num.parse().unwrap()), Span::new(start, i)));
                continue;
            }
            let ws = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i > ws {
                let u = unit(&text[ws..i]).expect("duration unit");
                out.push((Tok::Dur(num.parse().unwrap(), u), Span::new(start, i)));
                continue;
            }
            out.push((Tok::Num(num.parse().unwrap()), Span::new(start, i)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(text[start..i].to_string()), Span::new(start, i)));
            continue;
        }
        let two = if i + 1 < b.len() { &text[i..i + 2] } else { "" };
        let p: &'static str = match two {
            "==" => "==",
            "!=" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            ".." => "..",
            _ => match c {
                b'{' => "{",
                b'}' => "}",
                b'(' => "(",
                b')' => ")",
                b'[' => "[",
                b']' => "]",
                b',' => ",",
                b':' => ":",
                b'.' => ".",
                b'=' => "=",
                b'<' => "<",
                b'>' => ">",
                b'+' => "+",
                b'-' => "-",
                b'*' => "*",
                b'/' => "/",
                b'?' => "?",
                other => panic!("unexpected {}", other as char),
            },
        };
        i += p.len();
        out.push((Tok::Punct(p), Span::new(start, i)));
    }
    out
}

struct P {
    toks: Vec<(Tok, Span)>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.0)
    }
    fn span(&self) -> Span {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or_default()
    }
    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x == w)
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == p)
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self, w: &str) {
        assert!(
            self.eat_word(w),
            "expected `{w}` at {:?}, found {:?}",
            self.span(),
            self.peek()
        );
    }
    fn punct(&mut self, p: &str) {
        assert!(
            self.eat_punct(p),
            "expected `{p}` at {:?}, found {:?}",
            self.span(),
            self.peek()
        );
    }
    fn ident(&mut self) -> Ident {
        let span = self.span();
        match self.next() {
            Tok::Ident(name) => Ident { name, span },
            other => panic!("expected a name at {span:?}, found {other:?}"),
        }
    }
    fn string(&mut self) -> StringLit {
        let span = self.span();
        match self.next() {
            Tok::Str(value) => StringLit { value, span },
            other => panic!("expected a string, found {other:?}"),
        }
    }
    fn duration_expr(&mut self) -> DurationExpr {
        let span = self.span();
        match self.next() {
            Tok::Dur(amount, unit) => DurationExpr::Literal(Duration { amount, unit, span }),
            Tok::Num(n) => {
                let u = self.ident();
                DurationExpr::Literal(Duration {
                    amount: n as u64,
                    unit: unit(&u.name).expect("unit"),
                    span,
                })
            }
            Tok::Ident(w) if w == "day" => DurationExpr::Literal(Duration {
                amount: 1,
                unit: DurationUnit::Days,
                span,
            }),
            Tok::Ident(w) if w == "week" => DurationExpr::Literal(Duration {
                amount: 1,
                unit: DurationUnit::Weeks,
                span,
            }),
            Tok::Ident(name) => DurationExpr::Param(Ident { name, span }),
            other => panic!("expected a duration, found {other:?}"),
        }
    }
    fn time(&mut self) -> TimeOfDay {
        let span = self.span();
        match self.next() {
            Tok::Time(hour, minute) => TimeOfDay { hour, minute, span },
            other => panic!("expected a time, found {other:?}"),
        }
    }
    fn percent(&mut self) -> Percent {
        let span = self.span();
        match self.next() {
            Tok::Pct(value) => Percent { value, span },
            other => panic!("expected a percentage, found {other:?}"),
        }
    }
    fn path_from(&mut self, root: Ident) -> Path {
        let mut fields = Vec::new();
        while self.eat_punct(".") {
            fields.push(self.ident());
        }
        let span = root.span;
        Path { root, fields, span }
    }
    fn args(&mut self) -> Vec<Arg> {
        let mut args = Vec::new();
        self.punct("(");
        while !self.eat_punct(")") {
            let span = self.span();
            let name = if matches!(self.peek(), Some(Tok::Ident(_)))
                && matches!(self.peek_at(1), Some(Tok::Punct(":")))
            {
                let n = self.ident();
                self.punct(":");
                Some(n)
            } else {
                None
            };
            let value = self.expr();
            args.push(Arg { name, value, span });
            self.eat_punct(",");
        }
        args
    }
    fn params(&mut self) -> Vec<Param> {
        let mut params = Vec::new();
        if !self.eat_punct("(") {
            return params;
        }
        while !self.eat_punct(")") {
            let span = self.span();
            let name = self.ident();
            self.punct(":");
            let ty_span = self.span();
            let ty = match self.ident().name.as_str() {
                "duration" => ParamType::Duration,
                "number" => ParamType::Number,
                "string" => ParamType::String,
                "bool" => ParamType::Bool,
                "message" => ParamType::Message,
                "segment" => ParamType::Segment,
                "event" => ParamType::Event,
                other => panic!("param type {other}"),
            };
            params.push(Param {
                name,
                ty,
                ty_span,
                span,
            });
            self.eat_punct(",");
        }
        params
    }

    // expressions
    fn expr(&mut self) -> Expr {
        self.binary(1)
    }
    fn binop(&self) -> Option<BinaryOp> {
        Some(match self.peek()? {
            Tok::Ident(w) if w == "or" => BinaryOp::Or,
            Tok::Ident(w) if w == "and" => BinaryOp::And,
            Tok::Punct("==") => BinaryOp::Eq,
            Tok::Punct("!=") => BinaryOp::Ne,
            Tok::Punct("<") => BinaryOp::Lt,
            Tok::Punct("<=") => BinaryOp::Le,
            Tok::Punct(">") => BinaryOp::Gt,
            Tok::Punct(">=") => BinaryOp::Ge,
            Tok::Punct("+") => BinaryOp::Add,
            Tok::Punct("-") => BinaryOp::Sub,
            Tok::Punct("*") => BinaryOp::Mul,
            Tok::Punct("/") => BinaryOp::Div,
            _ => return None,
        })
    }
    fn binary(&mut self, min: u8) -> Expr {
        let mut lhs = if min <= 3 && self.is_word("not") {
            let span = self.span();
            self.pos += 1;
            let operand = self.binary(4);
            Expr {
                kind: ExprKind::Unary {
                    op: UnaryOp::Not,
                    operand: Box::new(operand),
                },
                span,
            }
        } else {
            self.postfix()
        };
        loop {
            if min <= 4 && self.is_word("in") {
                self.pos += 1;
                let list = self.postfix();
                let span = lhs.span;
                lhs = Expr {
                    kind: ExprKind::In {
                        needle: Box::new(lhs),
                        list: Box::new(list),
                    },
                    span,
                };
                continue;
            }
            let Some(op) = self.binop() else { break };
            let prec = op.precedence();
            if prec < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1);
            let span = lhs.span;
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        lhs
    }
    fn within(&mut self) -> Option<DurationExpr> {
        self.eat_word("within").then(|| self.duration_expr())
    }
    fn postfix(&mut self) -> Expr {
        let span = self.span();
        let kind = match self.next() {
            Tok::Num(n) => ExprKind::Number(n),
            Tok::Str(s) => ExprKind::String(s),
            Tok::Dur(amount, unit) => ExprKind::Duration(Duration { amount, unit, span }),
            Tok::Pct(p) => ExprKind::Percent(p),
            Tok::Time(hour, minute) => ExprKind::Time(TimeOfDay { hour, minute, span }),
            Tok::Punct("(") => {
                let e = self.expr();
                self.punct(")");
                return e;
            }
            Tok::Punct("-") => {
                let operand = self.postfix();
                ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand: Box::new(operand),
                }
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                while !self.eat_punct("]") {
                    items.push(self.expr());
                    self.eat_punct(",");
                }
                ExprKind::List(items)
            }
            Tok::Ident(name) => {
                let ident = Ident {
                    name: name.clone(),
                    span,
                };
                match name.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "null" => ExprKind::Null,
                    "exists" => {
                        self.punct("(");
                        let root = self.ident();
                        let p = self.path_from(root);
                        self.punct(")");
                        ExprKind::Exists(p)
                    }
                    "can_receive" => {
                        self.punct("(");
                        let channel_span = self.span();
                        let c = self.ident();
                        self.punct(")");
                        ExprKind::CanReceive {
                            channel: Channel::from_keyword(&c.name).expect("channel"),
                            channel_span,
                        }
                    }
                    "count" => {
                        self.punct("(");
                        let event = self.ident();
                        let filter = self.eat_word("where").then(|| Box::new(self.binary(1)));
                        let within = self.within();
                        self.punct(")");
                        ExprKind::Count {
                            event,
                            filter,
                            within,
                        }
                    }
                    "sum" | "last" => {
                        self.punct("(");
                        let event = self.ident();
                        let mut property = Vec::new();
                        while self.eat_punct(".") {
                            property.push(self.ident());
                        }
                        let within = if name == "sum" { self.within() } else { None };
                        self.punct(")");
                        if name == "sum" {
                            ExprKind::Sum {
                                event,
                                property,
                                within,
                            }
                        } else {
                            ExprKind::Last { event, property }
                        }
                    }
                    "since" => {
                        self.punct("(");
                        let event = self.ident();
                        self.punct(")");
                        ExprKind::Since { event }
                    }
                    _ if self.is_punct(".") => ExprKind::Path(self.path_from(ident)),
                    _ if self.is_punct("(") => {
                        let args = self.args();
                        ExprKind::SegmentCall { name: ident, args }
                    }
                    _ => ExprKind::Name(ident),
                }
            }
            other => panic!("unexpected {other:?} at {span:?}"),
        };
        Expr { kind, span }
    }

    // flows
    fn matcher(&mut self) -> EventMatcher {
        let span = self.span();
        let event = self.ident();
        let filter = self.eat_word("where").then(|| self.expr());
        EventMatcher {
            event,
            filter,
            span,
        }
    }
    fn quiet(&mut self) -> QuietHours {
        self.word("quiet");
        self.word("hours");
        let start = self.time();
        self.punct("..");
        let end = self.time();
        QuietHours { start, end }
    }
    fn segment_ref(&mut self) -> SegmentRef {
        let span = self.span();
        let name = self.ident();
        let args = if self.is_punct("(") {
            self.args()
        } else {
            Vec::new()
        };
        SegmentRef { name, args, span }
    }
    fn header(&mut self) -> Option<HeaderLine> {
        let span = self.span();
        let kind = if self.eat_word("when") {
            if self.eat_word("entering") {
                HeaderKind::WhenEntering {
                    segment: self.segment_ref(),
                }
            } else if self.eat_word("every") {
                let every = self.duration_expr();
                let at = self.eat_word("at").then(|| self.time());
                self.word("for");
                HeaderKind::WhenEvery {
                    every,
                    at,
                    segment: self.segment_ref(),
                }
            } else if self.eat_word("anniversary") {
                self.word("of");
                let root = self.ident();
                let field = self.path_from(root);
                let at = self.eat_word("at").then(|| self.time());
                HeaderKind::WhenAnniversary { field, at }
            } else {
                let m = self.matcher();
                HeaderKind::WhenEvent {
                    event: m.event,
                    filter: m.filter,
                }
            }
        } else if self.is_word("only") {
            self.pos += 1;
            self.word("if");
            HeaderKind::OnlyIf(self.expr())
        } else if self.eat_word("reentry") {
            HeaderKind::Reentry(if self.eat_word("never") {
                Reentry::Never
            } else if self.eat_word("always") {
                Reentry::Always
            } else {
                self.word("after");
                Reentry::After(self.duration_expr())
            })
        } else if self.is_word("exit") {
            self.pos += 1;
            if self.eat_word("on") {
                let m = self.matcher();
                HeaderKind::ExitOn {
                    event: m.event,
                    filter: m.filter,
                }
            } else {
                self.word("if");
                HeaderKind::ExitIf(self.expr())
            }
        } else if self.is_word("quiet") {
            HeaderKind::QuietHours(self.quiet())
        } else if self.eat_word("goal") {
            let m = self.matcher();
            self.word("within");
            HeaderKind::Goal {
                event: m.event,
                filter: m.filter,
                within: self.duration_expr(),
            }
        } else if self.eat_word("holdout") {
            HeaderKind::Holdout(self.percent())
        } else {
            return None;
        };
        Some(HeaderLine { kind, span })
    }
    fn block(&mut self) -> Block {
        let span = self.span();
        self.punct("{");
        let mut steps = Vec::new();
        while !self.eat_punct("}") {
            steps.push(self.step());
        }
        Block { steps, span }
    }
    fn step(&mut self) -> Step {
        let span = self.span();
        let kind = match self.ident().name.as_str() {
            "send" => StepKind::Send {
                message: self.ident(),
            },
            "wait" => {
                if self.eat_word("until") {
                    StepKind::WaitUntil { time: self.time() }
                } else if self.eat_word("for") {
                    let mut events = vec![self.matcher()];
                    while self.eat_word("or") {
                        events.push(self.matcher());
                    }
                    self.word("up");
                    self.word("to");
                    let timeout = self.duration_expr();
                    let body = if self.is_punct("{") {
                        if matches!(self.peek_at(1), Some(Tok::Ident(w)) if w == "on") {
                            self.punct("{");
                            let mut arms = Vec::new();
                            while self.eat_word("on") {
                                let aspan = self.span();
                                let event = self.ident();
                                let block = self.block();
                                arms.push(OnArm {
                                    event,
                                    block,
                                    span: aspan,
                                });
                            }
                            self.punct("}");
                            WaitForBody::Arms(arms)
                        } else {
                            WaitForBody::Received(self.block())
                        }
                    } else {
                        WaitForBody::None
                    };
                    let otherwise = self.eat_word("else").then(|| self.block());
                    StepKind::WaitFor(WaitFor {
                        events,
                        timeout,
                        body,
                        otherwise,
                    })
                } else {
                    StepKind::Wait {
                        duration: self.duration_expr(),
                    }
                }
            }
            "if" => {
                let mut branches = vec![IfBranch {
                    condition: self.expr(),
                    block: self.block(),
                }];
                let mut otherwise = None;
                while self.eat_word("else") {
                    if self.eat_word("if") {
                        branches.push(IfBranch {
                            condition: self.expr(),
                            block: self.block(),
                        });
                    } else {
                        otherwise = Some(self.block());
                        break;
                    }
                }
                StepKind::If {
                    branches,
                    otherwise,
                }
            }
            "split" => {
                self.punct("{");
                let mut arms = Vec::new();
                while !self.eat_punct("}") {
                    let aspan = self.span();
                    let share = self.percent();
                    arms.push(SplitArm {
                        share,
                        block: self.block(),
                        span: aspan,
                    });
                }
                StepKind::Split { arms }
            }
            "set" => {
                let root = self.ident();
                let field = self.path_from(root);
                self.punct("=");
                StepKind::Set {
                    field,
                    value: self.expr(),
                }
            }
            "unsubscribe" => {
                let target_span = self.span();
                let w = self.ident();
                let target = if w.name == "all" {
                    UnsubscribeTarget::All
                } else {
                    UnsubscribeTarget::Channel(Channel::from_keyword(&w.name).expect("channel"))
                };
                StepKind::Unsubscribe {
                    target,
                    target_span,
                }
            }
            "stop" => StepKind::Stop,
            other => panic!("unknown step `{other}` at {span:?}"),
        };
        Step { kind, span }
    }
    fn flow_body(&mut self) -> FlowBody {
        let span = self.span();
        self.punct("{");
        let mut header = Vec::new();
        while let Some(h) = self.header() {
            header.push(h);
        }
        let mut steps = Vec::new();
        while !self.eat_punct("}") {
            steps.push(self.step());
        }
        FlowBody {
            header,
            steps,
            span,
        }
    }
    fn item(&mut self) -> Item {
        let span = self.span();
        match self.ident().name.as_str() {
            "segment" => {
                let name = self.ident();
                let params = self.params();
                self.punct("=");
                Item::Segment(SegmentDecl {
                    name,
                    params,
                    body: self.expr(),
                    span,
                })
            }
            "message" => {
                let name = self.ident();
                self.punct(":");
                let channel_span = self.span();
                let channel = Channel::from_keyword(&self.ident().name).expect("channel");
                let transactional = self.eat_word("transactional");
                self.punct("{");
                let mut fields = Vec::new();
                while !self.eat_punct("}") {
                    let fspan = self.span();
                    let fname = self.ident();
                    self.punct(":");
                    let value = if self.eat_word("file") {
                        self.punct("(");
                        let s = self.string();
                        self.punct(")");
                        FieldValue::File(s)
                    } else {
                        FieldValue::Text(self.string())
                    };
                    fields.push(MessageField {
                        name: fname,
                        value,
                        span: fspan,
                    });
                    self.eat_punct(",");
                }
                Item::Message(MessageDecl {
                    name,
                    channel,
                    channel_span,
                    transactional,
                    fields,
                    span,
                })
            }
            "flow" => {
                if self.eat_word("template") {
                    let name = self.ident();
                    let params = self.params();
                    Item::FlowTemplate(FlowTemplateDecl {
                        name,
                        params,
                        body: self.flow_body(),
                        span,
                    })
                } else {
                    let name = self.ident();
                    if self.eat_punct("=") {
                        let template = self.ident();
                        let args_span = self.span();
                        let args = self.args();
                        Item::FlowInstance(FlowInstanceDecl {
                            name,
                            template,
                            args,
                            args_span,
                            span,
                        })
                    } else {
                        Item::Flow(FlowDecl {
                            name,
                            body: self.flow_body(),
                            span,
                        })
                    }
                }
            }
            "policy" => {
                self.punct("{");
                let mut lines = Vec::new();
                while !self.eat_punct("}") {
                    let lspan = self.span();
                    let kind = if self.is_word("quiet") {
                        PolicyKind::QuietHours(self.quiet())
                    } else {
                        self.word("limit");
                        let channel_span = self.span();
                        let channel = Channel::from_keyword(&self.ident().name).expect("channel");
                        let count_span = self.span();
                        let count = match self.next() {
                            Tok::Num(n) => n as u32,
                            other => panic!("limit count {other:?}"),
                        };
                        self.word("per");
                        let per = match self.duration_expr() {
                            DurationExpr::Literal(d) => d,
                            DurationExpr::Param(_) => panic!("limit duration"),
                        };
                        PolicyKind::Limit {
                            channel,
                            channel_span,
                            count,
                            count_span,
                            per,
                        }
                    };
                    lines.push(PolicyLine { kind, span: lspan });
                }
                Item::Policy(PolicyDecl { lines, span })
            }
            "event" => {
                let name = self.ident();
                self.punct("{");
                let mut properties = Vec::new();
                while !self.eat_punct("}") {
                    let pspan = self.span();
                    let pname = self.ident();
                    self.punct(":");
                    let ty_span = self.span();
                    let ty = match self.ident().name.as_str() {
                        "string" => PropertyType::String,
                        "number" => PropertyType::Number,
                        "bool" => PropertyType::Bool,
                        "time" => PropertyType::Time,
                        "list" => PropertyType::List,
                        _ => PropertyType::Object,
                    };
                    let optional = self.eat_punct("?");
                    properties.push(PropertyDecl {
                        name: pname,
                        ty,
                        optional,
                        ty_span,
                        span: pspan,
                    });
                }
                Item::Event(EventDecl {
                    name,
                    properties,
                    span,
                })
            }
            other => panic!("unknown item `{other}`"),
        }
    }
}

pub fn parse(text: &str) -> SourceFile {
    let mut p = P {
        toks: lex(text),
        pos: 0,
    };
    let mut items = Vec::new();
    while p.peek().is_some() {
        items.push(p.item());
    }
    SourceFile {
        uses: Vec::new(),
        items,
        comments: Vec::new(),
    }
}
