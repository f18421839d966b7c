//! A small JSON Schema validator: just the keywords that GitHub's request
//! schemas and ghplane's OpenAPI 3.1 document use.
//!
//! Keywords it does not know are ignored rather than rejected, so a schema
//! is never stricter here than in a real validator. `pattern` follows the
//! same rule: it is checked with a built-in matcher for the common ECMA-262
//! subset (classes, groups, alternation, quantifiers, anchors), and a pattern
//! using anything beyond that (lookaround, backreferences, `\b`) is skipped.

use serde_json::Value;

/// Validates `value` against `schema`; `$ref`s cannot be resolved (there is
/// no root document), so each one is reported as an error.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    validate_with_root(&Value::Null, schema, value)
}

/// Validates `value` against `schema`, resolving `$ref: "#/…"` as a JSON
/// pointer into `root` (e.g. an OpenAPI document). Each error names the JSON
/// path of the offending value: `$.permissions.contents: expected one of …`.
pub fn validate_with_root(root: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut validator = Validator {
        root,
        errors: Vec::new(),
    };
    validator.check(schema, value, "$", 0);
    validator.errors
}

/// Deeper than any real document nests; only a `$ref` cycle that never
/// descends into the value gets here, and it must not overflow the stack.
const MAX_DEPTH: usize = 128;

struct Validator<'a> {
    root: &'a Value,
    errors: Vec<String>,
}

impl<'a> Validator<'a> {
    fn check(&mut self, schema: &Value, value: &Value, path: &str, depth: usize) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.error(path, "no value is allowed here".into()),
            Value::Object(schema) => schema,
            _ => return,
        };
        if depth > MAX_DEPTH {
            return self.error(path, "schema nests too deeply (a $ref cycle?)".into());
        }

        // OpenAPI 3.0's `nullable` widens every other keyword to accept null.
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }

        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, value, path, depth + 1),
                None => self.error(path, format!("cannot resolve $ref {reference:?}")),
            }
        }

        if let Some(expected) = schema.get("type") {
            let allowed: Vec<&str> = match expected {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
                // Everything below would only restate the type mismatch.
                return self.error(
                    path,
                    format!(
                        "expected type {}, got {}",
                        allowed.join(" or "),
                        type_name(value)
                    ),
                );
            }
        }

        if let Some(Value::Array(options)) = schema.get("enum") {
            if !options.contains(value) {
                self.error(
                    path,
                    format!(
                        "expected one of {}, got {value}",
                        Value::from(options.clone())
                    ),
                );
            }
        }
        if let Some(constant) = schema.get("const") {
            if constant != value {
                self.error(path, format!("expected {constant}, got {value}"));
            }
        }

        match value {
            Value::String(s) => self.check_string(schema, s, path),
            Value::Number(n) => self.check_number(schema, n.as_f64().unwrap_or(f64::NAN), path),
            Value::Array(items) => self.check_array(schema, items, path, depth),
            Value::Object(members) => self.check_object(schema, members, path, depth),
            Value::Null | Value::Bool(_) => {}
        }

        self.check_combinators(schema, value, path, depth);
    }

    fn check_string(&mut self, schema: &serde_json::Map<String, Value>, s: &str, path: &str) {
        let length = s.chars().count();
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (length as u64) < min {
                self.error(
                    path,
                    format!("expected at least {min} characters, got {length}"),
                );
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if length as u64 > max {
                self.error(
                    path,
                    format!("expected at most {max} characters, got {length}"),
                );
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if let Some(regex) = Regex::new(pattern) {
                if !regex.is_match(s) {
                    self.error(path, format!("{s:?} does not match pattern {pattern:?}"));
                }
            }
        }
    }

    fn check_number(&mut self, schema: &serde_json::Map<String, Value>, n: f64, path: &str) {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                self.error(path, format!("expected at least {min}, got {n}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                self.error(path, format!("expected at most {max}, got {n}"));
            }
        }
    }

    fn check_array(
        &mut self,
        schema: &serde_json::Map<String, Value>,
        items: &[Value],
        path: &str,
        depth: usize,
    ) {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if count < min {
                self.error(path, format!("expected at least {min} items, got {count}"));
            }
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if count > max {
                self.error(path, format!("expected at most {max} items, got {count}"));
            }
        }
        // An array-valued `items` is the old tuple form; nothing here uses it.
        if let Some(item_schema) = schema.get("items").filter(|s| !s.is_array()) {
            for (index, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{path}[{index}]"), depth + 1);
            }
        }
    }

    fn check_object(
        &mut self,
        schema: &serde_json::Map<String, Value>,
        members: &serde_json::Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !members.contains_key(name) {
                    self.error(path, format!("missing required property {name:?}"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (name, member) in members {
            let member_path = child_path(path, name);
            match properties.and_then(|p| p.get(name)) {
                Some(property_schema) => {
                    self.check(property_schema, member, &member_path, depth + 1)
                }
                None => match additional {
                    Some(Value::Bool(false)) => {
                        self.error(&member_path, "property is not allowed here".into())
                    }
                    Some(extra_schema) => self.check(extra_schema, member, &member_path, depth + 1),
                    None => {}
                },
            }
        }
    }

    fn check_combinators(
        &mut self,
        schema: &serde_json::Map<String, Value>,
        value: &Value,
        path: &str,
        depth: usize,
    ) {
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for sub in all {
                self.check(sub, value, path, depth + 1);
            }
        }
        if let Some(Value::Array(any)) = schema.get("anyOf") {
            let failures = self.branch_failures(any, value, path, depth);
            if failures.iter().all(|errors| !errors.is_empty()) {
                self.error(
                    path,
                    format!("matches none of anyOf: {}", summarize(&failures)),
                );
            }
        }
        if let Some(Value::Array(one)) = schema.get("oneOf") {
            let failures = self.branch_failures(one, value, path, depth);
            match failures.iter().filter(|errors| errors.is_empty()).count() {
                1 => {}
                0 => self.error(
                    path,
                    format!("matches none of oneOf: {}", summarize(&failures)),
                ),
                n => self.error(
                    path,
                    format!("matches {n} branches of oneOf, expected exactly one"),
                ),
            }
        }
    }

    /// Each branch's errors, gathered apart so that a failing branch of an
    /// `anyOf`/`oneOf` is not itself reported when another branch passes.
    fn branch_failures(
        &self,
        branches: &[Value],
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Vec<Vec<String>> {
        branches
            .iter()
            .map(|branch| {
                let mut sub = Validator {
                    root: self.root,
                    errors: Vec::new(),
                };
                sub.check(branch, value, path, depth + 1);
                sub.errors
            })
            .collect()
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        self.root.pointer(reference.strip_prefix('#')?)
    }

    fn error(&mut self, path: &str, message: String) {
        self.errors.push(format!("{path}: {message}"));
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        // An unknown type name is an unknown keyword value: ignore it.
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if has_type(value, "integer") => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child_path(parent: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{name}")
    } else {
        format!("{parent}[{name:?}]")
    }
}

fn summarize(failures: &[Vec<String>]) -> String {
    failures
        .iter()
        .enumerate()
        .map(|(index, errors)| format!("[{index}] {}", errors.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A compiled `pattern`, run as a Thompson NFA so that matching is linear in
/// the input and never recurses, whatever the pattern or string.
struct Regex {
    program: Vec<Inst>,
}

enum Inst {
    Char(char),
    /// `.`: anything but a line terminator, as in ECMA-262.
    Any,
    Class(Class),
    Split(usize, usize),
    Jump(usize),
    Start,
    End,
    Match,
}

#[derive(Clone)]
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Clone)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

/// Pieces of a parsed pattern: alternatives of sequences of repeated atoms.
type Alternatives = Vec<Vec<Piece>>;

struct Piece {
    atom: Atom,
    min: usize,
    max: Option<usize>,
}

enum Atom {
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Group(Alternatives),
}

/// Counted repetition copies its atom, so a pattern like `(a{1,100}){1,100}`
/// would be huge; past this size the pattern is treated as unsupported.
const MAX_PROGRAM: usize = 20_000;

impl Regex {
    /// `None` when the pattern uses syntax outside the supported subset.
    fn new(pattern: &str) -> Option<Regex> {
        let mut parser = Parser {
            chars: pattern.chars().collect(),
            at: 0,
        };
        let alternatives = parser.alternatives()?;
        if parser.at != parser.chars.len() {
            return None;
        }
        let mut program = Vec::new();
        emit_alternatives(&alternatives, &mut program)?;
        program.push(Inst::Match);
        Some(Regex { program })
    }

    /// JSON Schema patterns are unanchored: a match anywhere counts.
    fn is_match(&self, input: &str) -> bool {
        let input: Vec<char> = input.chars().collect();
        let mut threads = Threads::new(self.program.len());
        for at in 0..=input.len() {
            self.add_thread(&mut threads, 0, at, input.len());
            if threads
                .pcs
                .iter()
                .any(|&pc| matches!(self.program[pc], Inst::Match))
            {
                return true;
            }
            let Some(&c) = input.get(at) else { break };
            let mut next = Threads::new(self.program.len());
            for &pc in &threads.pcs {
                let advances = match &self.program[pc] {
                    Inst::Char(expected) => *expected == c,
                    Inst::Any => !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}'),
                    Inst::Class(class) => class.matches(c),
                    _ => false,
                };
                if advances {
                    self.add_thread(&mut next, pc + 1, at + 1, input.len());
                }
            }
            threads = next;
        }
        false
    }

    /// Follows jumps, splits and anchors from `pc`, keeping the instructions
    /// that consume a character (or accept).
    fn add_thread(&self, threads: &mut Threads, pc: usize, at: usize, len: usize) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if std::mem::replace(&mut threads.seen[pc], true) {
                continue;
            }
            match self.program[pc] {
                Inst::Jump(target) => stack.push(target),
                Inst::Split(first, second) => stack.extend([second, first]),
                Inst::Start if at == 0 => stack.push(pc + 1),
                Inst::End if at == len => stack.push(pc + 1),
                Inst::Start | Inst::End => {}
                _ => threads.pcs.push(pc),
            }
        }
    }
}

struct Threads {
    pcs: Vec<usize>,
    seen: Vec<bool>,
}

impl Threads {
    fn new(size: usize) -> Threads {
        Threads {
            pcs: Vec::new(),
            seen: vec![false; size],
        }
    }
}

impl Class {
    fn matches(&self, c: char) -> bool {
        let found = self.items.iter().any(|item| match *item {
            ClassItem::Range(low, high) => (low..=high).contains(&c),
            ClassItem::Digit(negated) => c.is_ascii_digit() != negated,
            ClassItem::Word(negated) => (c.is_ascii_alphanumeric() || c == '_') != negated,
            ClassItem::Space(negated) => c.is_whitespace() != negated,
        });
        found != self.negated
    }
}

fn emit_alternatives(alternatives: &Alternatives, program: &mut Vec<Inst>) -> Option<()> {
    let mut jumps_to_end = Vec::new();
    for (index, sequence) in alternatives.iter().enumerate() {
        let is_last = index + 1 == alternatives.len();
        let split = program.len();
        if !is_last {
            program.push(Inst::Split(split + 1, 0));
        }
        for piece in sequence {
            emit_piece(piece, program)?;
        }
        if !is_last {
            jumps_to_end.push(program.len());
            program.push(Inst::Jump(0));
            program[split] = Inst::Split(split + 1, program.len());
        }
    }
    let end = program.len();
    for jump in jumps_to_end {
        program[jump] = Inst::Jump(end);
    }
    (program.len() <= MAX_PROGRAM).then_some(())
}

fn emit_piece(piece: &Piece, program: &mut Vec<Inst>) -> Option<()> {
    for _ in 0..piece.min {
        emit_atom(&piece.atom, program)?;
    }
    match piece.max {
        Some(max) => {
            for _ in piece.min..max {
                let split = program.len();
                program.push(Inst::Split(split + 1, 0));
                emit_atom(&piece.atom, program)?;
                program[split] = Inst::Split(split + 1, program.len());
            }
        }
        None => {
            let split = program.len();
            program.push(Inst::Split(split + 1, 0));
            emit_atom(&piece.atom, program)?;
            program.push(Inst::Jump(split));
            program[split] = Inst::Split(split + 1, program.len());
        }
    }
    (program.len() <= MAX_PROGRAM).then_some(())
}

fn emit_atom(atom: &Atom, program: &mut Vec<Inst>) -> Option<()> {
    match atom {
        Atom::Char(c) => program.push(Inst::Char(*c)),
        Atom::Any => program.push(Inst::Any),
        Atom::Class(class) => program.push(Inst::Class(class.clone())),
        Atom::Start => program.push(Inst::Start),
        Atom::End => program.push(Inst::End),
        Atom::Group(alternatives) => emit_alternatives(alternatives, program)?,
    }
    (program.len() <= MAX_PROGRAM).then_some(())
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.at += 1;
        }
        found
    }

    fn alternatives(&mut self) -> Option<Alternatives> {
        let mut alternatives = vec![self.sequence()?];
        while self.eat('|') {
            alternatives.push(self.sequence()?);
        }
        Some(alternatives)
    }

    fn sequence(&mut self) -> Option<Vec<Piece>> {
        let mut pieces = Vec::new();
        while !matches!(self.peek(), None | Some('|' | ')')) {
            let atom = self.atom()?;
            let (min, max) = self.quantifier()?;
            pieces.push(Piece { atom, min, max });
        }
        Some(pieces)
    }

    fn atom(&mut self) -> Option<Atom> {
        Some(match self.next()? {
            '(' => {
                if self.eat('?') && !self.eat(':') {
                    return None; // lookaround and named groups
                }
                let group = self.alternatives()?;
                self.eat(')').then_some(Atom::Group(group))?
            }
            '[' => Atom::Class(self.class()?),
            '.' => Atom::Any,
            '^' => Atom::Start,
            '$' => Atom::End,
            '\\' => match self.escape()? {
                Escaped::Char(c) => Atom::Char(c),
                Escaped::Item(item) => Atom::Class(Class {
                    negated: false,
                    items: vec![item],
                }),
            },
            '*' | '+' | '?' | '{' | ')' | ']' | '}' => return None,
            c => Atom::Char(c),
        })
    }

    fn quantifier(&mut self) -> Option<(usize, Option<usize>)> {
        let bounds = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.at += 1;
                let min = self.number()?;
                let max = if self.eat(',') {
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number()?)
                    }
                } else {
                    Some(min)
                };
                if !self.eat('}') || max.is_some_and(|max| max < min) {
                    return None;
                }
                self.eat('?'); // Laziness cannot change whether a match exists.
                return Some((min, max));
            }
            _ => return Some((1, Some(1))),
        };
        self.at += 1;
        self.eat('?');
        Some(bounds)
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        self.chars[start..self.at]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn class(&mut self) -> Option<Class> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        loop {
            let low = match self.next()? {
                ']' => return Some(Class { negated, items }),
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Item(item) => {
                        items.push(item);
                        continue;
                    }
                },
                c => c,
            };
            let is_range = self.peek() == Some('-') && self.chars.get(self.at + 1) != Some(&']');
            if !is_range {
                items.push(ClassItem::Range(low, low));
                continue;
            }
            self.at += 1;
            let high = match self.next()? {
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Item(_) => return None,
                },
                c => c,
            };
            if high < low {
                return None;
            }
            items.push(ClassItem::Range(low, high));
        }
    }

    fn escape(&mut self) -> Option<Escaped> {
        Some(match self.next()? {
            'd' => Escaped::Item(ClassItem::Digit(false)),
            'D' => Escaped::Item(ClassItem::Digit(true)),
            'w' => Escaped::Item(ClassItem::Word(false)),
            'W' => Escaped::Item(ClassItem::Word(true)),
            's' => Escaped::Item(ClassItem::Space(false)),
            'S' => Escaped::Item(ClassItem::Space(true)),
            'n' => Escaped::Char('\n'),
            'r' => Escaped::Char('\r'),
            't' => Escaped::Char('\t'),
            'u' => {
                let hex: String = self.chars.get(self.at..self.at + 4)?.iter().collect();
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                self.at += 4;
                Escaped::Char(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?)
            }
            // Any other escaped letter or digit is a feature we lack (`\b`,
            // backreferences); escaped punctuation is that character.
            c if c.is_ascii_alphanumeric() => return None,
            c => Escaped::Char(c),
        })
    }
}

enum Escaped {
    Char(char),
    Item(ClassItem),
}
