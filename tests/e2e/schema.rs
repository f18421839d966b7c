//! A small JSON Schema validator: just the keywords that GitHub's request
//! schemas and ghplane's OpenAPI 3.1 document use.
//!
//! Keywords it does not know are ignored rather than rejected, so a schema
//! is never stricter here than in a real validator. `pattern` follows the
//! same rule: it is checked with the `regex` crate (linear time, whatever the
//! pattern), whose syntax covers the ECMA-262 subset real schemas use; a
//! pattern it cannot compile (lookaround, backreferences) is skipped.

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
            if let Ok(regex) = regex::Regex::new(pattern) {
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
