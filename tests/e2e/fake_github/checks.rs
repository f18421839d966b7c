//! The checks GitHub makes of a request before anything else (headers, credentials, path
//! parameters, the body against the operation's schema), in GitHub's order.

use super::*;

pub(super) const API_VERSION: &str = "2022-11-28";

pub(super) const GRANT_OPERATION: &str = "apps/delete-authorization";

/// The one operation GitHub serves without credentials: the manifest code
/// in the path is the secret.
pub(super) const UNAUTHENTICATED_OPERATION: &str = "apps/create-from-manifest";

pub(super) struct Problem {
    pub(super) reason: String,
    /// GitHub's answer when it refuses the request; `None` when GitHub would
    /// serve it anyway but a well-behaved client should not send it.
    pub(super) rejection: Option<Reply>,
}

/// Problems in the order GitHub checks for them, so the first rejection is
/// the answer GitHub would give.
pub(super) fn check_request(
    operation: &Operation,
    params: &[(&str, &str)],
    request: &RecordedRequest,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut reject = |reason: String, reply: Reply| {
        problems.push(Problem {
            reason,
            rejection: Some(reply),
        })
    };

    if request
        .header("user-agent")
        .is_none_or(|agent| agent.trim().is_empty())
    {
        reject(
            "no user-agent header".into(),
            operation.github_error(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            ),
        );
    }
    // Every copy counts: a client that sends the header twice is broken too.
    let versions = request
        .headers
        .iter()
        .filter(|(name, _)| name == "x-github-api-version");
    for (_, version) in versions {
        if version != API_VERSION {
            reject(
                format!("x-github-api-version is {version:?}, expected {API_VERSION:?}"),
                operation.github_error(400, &format!("API version {version} is not supported.")),
            );
        }
    }
    if operation.id != UNAUTHENTICATED_OPERATION {
        match request.header("authorization").map(str::trim) {
            None | Some("") => reject(
                "no authorization header".into(),
                operation.github_error(401, "Requires authentication"),
            ),
            Some(credentials) if !has_known_scheme(credentials) => reject(
                format!("authorization scheme of {credentials:?} is not Bearer, token or Basic"),
                operation.github_error(401, "Bad credentials"),
            ),
            Some(_) => {}
        }
    }
    for (name, value) in params {
        if operation.integer_params.iter().any(|p| p == name)
            && !value.bytes().all(|b| b.is_ascii_digit())
        {
            reject(
                format!("path parameter {name} must be an integer, got {value:?}"),
                operation.github_error(404, "Not Found"),
            );
        }
    }
    let has_body = !request.body.is_empty();
    let body = match &operation.request_body {
        Some(_) if has_body => match serde_json::from_slice::<Value>(&request.body) {
            Ok(body) => Some(body),
            Err(error) => {
                reject(
                    format!("request body is not JSON: {error}"),
                    operation.github_error(400, "Problems parsing JSON"),
                );
                None
            }
        },
        // Like GitHub, read an absent body as `{}`: fine unless something is `required`.
        Some(_) => Some(json!({})),
        None => None,
    };
    if let (Some(schema), Some(body)) = (&operation.request_body, body) {
        let errors = schema::validate(schema, &body);
        if !errors.is_empty() {
            let what = if has_body {
                "request body"
            } else {
                "missing request body"
            };
            reject(
                format!("{what} does not match the schema: {}", errors.join("; ")),
                operation.github_error(422, &format!("Invalid request.\n\n{}", errors.join("\n"))),
            );
        }
    }

    let accept = request.header("accept").unwrap_or("");
    if !accept.contains("application/vnd.github") && !accept.contains("application/json") {
        problems.push(Problem {
            reason: format!(
                "accept is {accept:?}, expected application/vnd.github+json or application/json"
            ),
            rejection: None,
        });
    }
    if has_body {
        if operation.request_body.is_none() {
            problems.push(Problem {
                reason: "sent a request body, but the operation takes none".into(),
                rejection: None,
            });
        }
        let content_type = request.header("content-type").unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            problems.push(Problem {
                reason: format!(
                    "body sent with content-type {content_type:?}, expected application/json"
                ),
                rejection: None,
            });
        }
    }
    problems
}

pub(super) fn has_known_scheme(credentials: &str) -> bool {
    let Some((scheme, token)) = credentials.split_once(' ') else {
        return false;
    };
    ["bearer", "token", "basic"]
        .iter()
        .any(|known| scheme.eq_ignore_ascii_case(known))
        && !token.trim().is_empty()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                at += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
