//! github.com's side of the OAuth web flow (`/login/oauth/authorize`,
//! `/login/oauth/access_token`), the user tokens it issues and the grants the app revokes.

use super::*;

/// Labels of the built-in github.com web routes (the `web:` scheme of [`Match::label`]), for
/// [`FakeGithub::requests_for`].
pub const WEB_AUTHORIZE: &str = "web:GET /login/oauth/authorize";
pub const WEB_ACCESS_TOKEN: &str = "web:POST /login/oauth/access_token";
/// GitHub's lifetime of an authorization code.
pub(super) const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// What github.com knows about OAuth apps, codes and user tokens.
#[derive(Default)]
pub(super) struct WebOAuth {
    /// client id → (client secret, callback URLs).
    pub(super) apps: HashMap<String, (String, Vec<String>)>,
    pub(super) codes: HashMap<String, Grant>,
    /// user token → user.
    pub(super) tokens: HashMap<String, FakeUser>,
    pub(super) revoked: Vec<String>,
    /// login → id, so one login is one user for the whole run.
    pub(super) users: HashMap<String, u64>,
    pub(super) issued: u64,
}

pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) user: FakeUser,
    pub(super) issued_at: Instant,
    pub(super) used: bool,
}

/// A GitHub user of the web flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    pub login: String,
    pub id: u64,
}

impl Shared {
    /// The web routes (github.com, not the REST API): `None` for any other request.
    ///
    /// `GET /login/oauth/authorize?client_id&redirect_uri&state[&login]` signs in as
    /// `login` (a new user id per new login; `octocat` without one) and redirects to the
    /// redirect URI with `code` and `state`, as GitHub does once the user approves. An
    /// unknown client or a redirect URI outside the app's callback URLs is GitHub's error
    /// page (404 / 400) and a conformance failure.
    ///
    /// `POST /login/oauth/access_token` takes a form or JSON body (`client_id`,
    /// `client_secret`, `code`, `redirect_uri`) and answers JSON when `Accept` asks for it,
    /// form-encoded otherwise; every refusal is a **200** with `error`, like GitHub's:
    /// `bad_verification_code` for an unknown, used or expired code (a normal outcome),
    /// `incorrect_client_credentials` and `redirect_uri_mismatch` (conformance failures:
    /// ghplane must never send those).
    pub(super) fn answer_web(&self, request: &mut RecordedRequest) -> Option<Reply> {
        let operation = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/login/oauth/authorize") => WEB_AUTHORIZE,
            ("POST", "/login/oauth/access_token") => WEB_ACCESS_TOKEN,
            _ => return None,
        };
        request.operation = Some(operation.to_string());
        let mut state = self.state();
        state.requests.push(request.clone());
        let (reply, failure) = if operation == WEB_AUTHORIZE {
            authorize(&mut state.web, request)
        } else {
            access_token(&mut state.web, request)
        };
        if let Some(failure) = failure {
            state.failures.push(format!(
                "{operation} ({} {}): {failure}",
                request.method, request.path
            ));
        }
        Some(reply)
    }

    /// `GET /user` with a token the web routes issued: that user (401 once revoked).
    pub(super) fn web_token_answer(
        &self,
        operation: &Operation,
        request: &RecordedRequest,
    ) -> Option<Reply> {
        if operation.id != "users/get-authenticated" {
            return None;
        }
        let token = bearer(request)?;
        let state = self.state();
        if state.web.revoked.contains(&token) {
            return Some(operation.github_error(401, "Bad credentials"));
        }
        let user = state.web.tokens.get(&token)?.clone();
        let mut body = operation.success_body.clone()?;
        body["login"] = json!(user.login);
        body["id"] = json!(user.id);
        body["html_url"] = json!(format!("https://github.com/{}", user.login));
        Some(Reply::json(200, body))
    }

    /// `DELETE /applications/{client_id}/grant` is Basic-authenticated as the app; GitHub
    /// answers 404 when the credentials are not that app's. A known token's grant is revoked.
    pub(super) fn check_app_credentials(
        &self,
        operation: &Operation,
        params: &[(&str, &str)],
        request: &RecordedRequest,
    ) -> Vec<Problem> {
        let client_id = params
            .iter()
            .find(|(name, _)| *name == "client_id")
            .map(|(_, v)| percent_decode(v))
            .unwrap_or_default();
        let credentials = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| base64_decode(b.trim()))
            .and_then(|b| String::from_utf8(b).ok());
        let mut state = self.state();
        let ok = credentials
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .is_some_and(|(id, secret)| {
                id == client_id
                    && state
                        .web
                        .apps
                        .get(id)
                        .is_some_and(|(known, _)| known == secret)
            });
        if !ok {
            return vec![Problem {
                reason: "not Basic-authenticated with the app's client id and secret".into(),
                rejection: Some(operation.github_error(404, "Not Found")),
            }];
        }
        if let Some(token) = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["access_token"].as_str().map(str::to_string))
        {
            if state.web.tokens.contains_key(&token) {
                state.web.revoked.push(token);
            }
        }
        Vec::new()
    }
}
pub(super) fn bearer(request: &RecordedRequest) -> Option<String> {
    let header = request.header("authorization")?;
    let (scheme, token) = header.split_once(' ')?;
    ["bearer", "token"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        .then(|| token.trim().to_string())
}

/// Form (`a=b&c=d`) or JSON object parameters, as the access token endpoint reads them.
pub(super) fn web_params(request: &RecordedRequest) -> Result<HashMap<String, String>, String> {
    let content_type = request.header("content-type").unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(String::from_utf8_lossy(&request.body)
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()),
        "application/json" => match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => Ok(map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect()),
            _ => Err("body is not a JSON object".into()),
        },
        other => Err(format!("content-type {other:?} is neither form nor JSON")),
    }
}

pub(super) fn web_reply(request: &RecordedRequest, fields: &[(&str, Value)]) -> Reply {
    let wants_json = request
        .header("accept")
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let body: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Reply::json(200, Value::Object(body))
    } else {
        let text = fields
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                format!("{k}={}", v.replace(' ', "+"))
            })
            .collect::<Vec<_>>()
            .join("&");
        Reply {
            body: text.into_bytes(),
            ..Reply::empty(200)
        }
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
    }
}

pub(super) fn web_error(request: &RecordedRequest, error: &str, description: &str) -> Reply {
    web_reply(
        request,
        &[
            ("error", json!(error)),
            ("error_description", json!(description)),
            (
                "error_uri",
                json!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"),
            ),
        ],
    )
}

/// GitHub's rule for a `redirect_uri`: same scheme, host and port as a callback URL, and a
/// path within its path.
pub(super) fn redirect_allowed(callbacks: &[String], redirect_uri: &str) -> bool {
    let split = |u: &str| -> Option<(String, String)> {
        let (scheme, rest) = u.split_once("://")?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let path = path.split(['?', '#']).next().unwrap_or("");
        Some((format!("{scheme}://{authority}"), format!("/{path}")))
    };
    let Some((origin, path)) = split(redirect_uri) else {
        return false;
    };
    callbacks.iter().filter_map(|c| split(c)).any(|(o, p)| {
        o == origin && (path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))))
    })
}

pub(super) fn authorize(web: &mut WebOAuth, request: &RecordedRequest) -> (Reply, Option<String>) {
    let client_id = request.query_param("client_id").unwrap_or_default();
    let Some((_, callbacks)) = web.apps.get(&client_id) else {
        return (
            Reply::empty(404),
            Some(format!("unknown client_id {client_id:?}")),
        );
    };
    let redirect_uri = match request.query_param("redirect_uri") {
        Some(uri) if redirect_allowed(callbacks, &uri) => uri,
        Some(uri) => {
            return (
                Reply::empty(400),
                Some(format!(
                    "redirect_uri {uri:?} is not within the app's callback URLs"
                )),
            )
        }
        None => match callbacks.first() {
            Some(first) => first.clone(),
            None => {
                return (
                    Reply::empty(400),
                    Some("the app has no callback URL".into()),
                )
            }
        },
    };
    let login = request
        .query_param("login")
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "octocat".into());
    let next_id = 20_000_000 + web.users.len() as u64;
    let id = *web
        .users
        .entry(login.clone())
        .or_insert(if login == "octocat" { 1 } else { next_id });
    web.issued += 1;
    let code = format!("fakecode{:08}", web.issued);
    web.codes.insert(
        code.clone(),
        Grant {
            client_id,
            redirect_uri: redirect_uri.clone(),
            user: FakeUser { login, id },
            issued_at: Instant::now(),
            used: false,
        },
    );
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect_uri}{separator}code={code}");
    if let Some(state) = request.query_param("state") {
        location.push_str(&format!("&state={}", percent_encode(&state)));
    }
    (Reply::empty(302).header("location", location), None)
}

pub(super) fn access_token(
    web: &mut WebOAuth,
    request: &RecordedRequest,
) -> (Reply, Option<String>) {
    let params = match web_params(request) {
        Ok(p) => p,
        Err(e) => return (Reply::empty(400), Some(e)),
    };
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let client_id = get("client_id");
    let Some((secret, _)) = web.apps.get(&client_id) else {
        return (
            Reply::empty(404),
            Some(format!("unknown client_id {client_id:?}")),
        );
    };
    if *secret != get("client_secret") {
        return (
            web_error(
                request,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            ),
            Some("incorrect client_secret".into()),
        );
    }
    let code = get("code");
    let grant = web
        .codes
        .get_mut(&code)
        .filter(|g| g.client_id == client_id && !g.used && g.issued_at.elapsed() < CODE_LIFETIME);
    let Some(grant) = grant else {
        return (
            web_error(
                request,
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            ),
            None,
        );
    };
    if let Some(uri) = params.get("redirect_uri") {
        if *uri != grant.redirect_uri {
            return (
                web_error(
                    request,
                    "redirect_uri_mismatch",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                ),
                Some(format!(
                    "redirect_uri {uri:?} differs from the authorize request's"
                )),
            );
        }
    }
    grant.used = true;
    let user = grant.user.clone();
    web.issued += 1;
    let token = format!("ghu_fake_{:08}", web.issued);
    let refresh = format!("ghr_fake_{:08}", web.issued);
    web.tokens.insert(token.clone(), user);
    let reply = web_reply(
        request,
        &[
            ("access_token", json!(token)),
            ("expires_in", json!(28800)),
            ("refresh_token", json!(refresh)),
            ("refresh_token_expires_in", json!(15811200)),
            ("scope", json!("")),
            ("token_type", json!("bearer")),
        ],
    );
    (reply, None)
}

pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
