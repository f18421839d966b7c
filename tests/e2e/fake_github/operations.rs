//! The REST operations of GitHub's description (`tests/fixtures/github-rest-operations.json`):
//! routing a method and path to one, its example answer and its conditional GETs.

use super::*;

pub(super) struct Operation {
    pub(super) id: String,
    pub(super) method: String,
    pub(super) segments: Vec<Segment>,
    pub(super) integer_params: Vec<String>,
    pub(super) docs: String,
    pub(super) request_body: Option<Value>,
    pub(super) success_status: u16,
    pub(super) success_body: Option<Value>,
    /// The description documents a `304`: the operation serves conditional GETs.
    pub(super) conditional: bool,
}

pub(super) enum Segment {
    Literal(String),
    Param(String),
}

impl Operation {
    pub(super) fn parse(id: &str, operation: &Value) -> Operation {
        let field = |name: &str| {
            operation[name]
                .as_str()
                .unwrap_or_else(|| panic!("operation {id} has no {name}"))
        };
        let segments = field("path")
            .trim_start_matches('/')
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_string()),
                    None => Segment::Literal(segment.to_string()),
                },
            )
            .collect();
        let integer_params = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path" && p["schema"]["type"] == "integer")
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        // GitHub answers with its lowest documented success code; later ones
        // (202 for create-deployment) describe rarer outcomes.
        let (success_status, success) = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(code, response)| Some((code.parse::<u16>().ok()?, response)))
            .filter(|(code, _)| (200..300).contains(code))
            .min_by_key(|(code, _)| *code)
            .unwrap_or_else(|| panic!("operation {id} documents no 2xx response"));
        let success_body = success["examples"]
            .as_object()
            .and_then(|examples| examples.get("default").or_else(|| examples.values().next()))
            .cloned();
        Operation {
            id: id.to_string(),
            method: field("method").to_string(),
            segments,
            integer_params,
            docs: field("docs").to_string(),
            request_body: Some(operation["requestBody"].clone()).filter(|body| !body.is_null()),
            success_status,
            success_body,
            conditional: operation["responses"].get("304").is_some(),
        }
    }

    /// The path parameters, if `segments` (the request path split on `/`)
    /// fits this operation's template.
    pub(super) fn bind<'a>(&'a self, segments: &[&'a str]) -> Option<Vec<(&'a str, &'a str)>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (template, actual) in self.segments.iter().zip(segments) {
            match template {
                Segment::Literal(literal) if literal == actual => {}
                Segment::Param(name) if !actual.is_empty() => params.push((name.as_str(), *actual)),
                _ => return None,
            }
        }
        Some(params)
    }

    pub(super) fn literal_segments(&self) -> usize {
        self.segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count()
    }

    pub(super) fn example(&self) -> Reply {
        match &self.success_body {
            Some(body) => Reply::json(self.success_status, body.clone()),
            None => Reply::empty(self.success_status),
        }
    }

    pub(super) fn github_error(&self, status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": self.docs, "status": status.to_string() }),
        )
    }
}

pub(super) fn operations() -> &'static [Operation] {
    static OPERATIONS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPERATIONS.get_or_init(|| {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github-rest-operations.json"
        ));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("fake GitHub: reading {}: {error}", path.display()));
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("fake GitHub: parsing {}: {error}", path.display()));
        document["operations"]
            .as_object()
            .unwrap_or_else(|| panic!("fake GitHub: {} has no operations", path.display()))
            .iter()
            .map(|(id, operation)| Operation::parse(id, operation))
            .collect()
    })
}

/// GitHub's own success example for an operation (what the fake answers by default), for
/// dynamic handlers that answer the same shape with other values.
#[track_caller]
pub fn example(operation_id: &str) -> Value {
    assert_known_operation(operation_id);
    let op = operations()
        .iter()
        .find(|o| o.id == operation_id)
        .expect("known operation");
    op.success_body.clone().unwrap_or(Value::Null)
}

#[track_caller]
pub(super) fn assert_known_operation(id: &str) {
    assert!(
        operations().iter().any(|operation| operation.id == id),
        "fake GitHub: no operation {id:?} in github-rest-operations.json"
    );
}

pub(super) fn web_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// Like GitHub's router, a literal segment beats a parameter when two
/// templates fit the same path.
pub(super) fn route<'a>(
    method: &str,
    path: &'a str,
) -> Option<(&'static Operation, Vec<(&'a str, &'a str)>)> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    operations()
        .iter()
        .filter(|operation| operation.method.eq_ignore_ascii_case(method))
        .filter_map(|operation| Some((operation, operation.bind(&segments)?)))
        .max_by_key(|(operation, _)| operation.literal_segments())
}

/// GitHub's conditional GETs: a `200` of an operation that documents `304` carries an
/// `ETag` (a hash of its body), and a request whose `If-None-Match` names it gets `304`.
pub(super) fn conditional(operation: &Operation, request: &RecordedRequest, reply: Reply) -> Reply {
    if !operation.conditional || request.method != "GET" || reply.status != 200 {
        return reply;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hasher::write(&mut hasher, &reply.body);
    let etag = format!("W/\"{:016x}\"", std::hash::Hasher::finish(&hasher));
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let matches = request
        .header("if-none-match")
        .is_some_and(|h| h.split(',').any(|t| strip(t) == strip(&etag)));
    if matches {
        return Reply::empty(304).header("etag", etag);
    }
    reply.header("etag", etag)
}
