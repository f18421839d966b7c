//! An HTTP client for the worker that checks every response it receives against the
//! worker's own `/openapi.json`: an undocumented status or a body that does not match its
//! schema fails the test that made the call.

use std::time::Duration;

use serde_json::Value;

use crate::schema::validate_with_root;
use crate::worker::ADMIN_TOKEN;

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The stable `error.code` of an error response.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub struct Api {
    pub base: String,
    agent: ureq::Agent,
    openapi: Value,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api::with_agent(base, ureq::AgentBuilder::new())
    }

    /// A client built on `agent` (e.g. one that trusts a test CA for an https worker).
    pub fn with_agent(base: &str, agent: ureq::AgentBuilder) -> Api {
        // Redirects are answers to check, not to follow. No pooled connections: workerd may
        // close a keep-alive connection after answering before it read the request body (a
        // 429 or 401 refused early), and ureq reuses a pooled one for a POST without a retry,
        // which failed a CI run with `Unexpected EOF`. Local connections cost nothing.
        let agent = agent
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .max_idle_connections(0)
            .build();
        let openapi = agent
            .get(&format!("{base}/openapi.json"))
            .call()
            .expect("GET /openapi.json")
            .into_json()
            .expect("openapi.json is JSON");
        Api {
            base: base.to_owned(),
            agent,
            openapi,
        }
    }

    pub fn openapi(&self) -> &Value {
        &self.openapi
    }

    /// Sends a request and checks the answer against the OpenAPI document.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let resp = self.send_unchecked(method, path, headers, body);
        self.check_documented(method, path, &resp);
        check_no_secrets(method, path, &resp);
        resp
    }

    /// Sends a request without checking the answer: for answers the runtime gives before the
    /// worker sees the request (e.g. 431 for an oversized header).
    pub fn send_unchecked(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error {e}"))
    }

    /// Like [`Api::send_unchecked`], with a transport failure as an `Err`.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, String> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_owned())))
            .collect();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("read body");
        Ok(Resp {
            status,
            headers,
            body: bytes,
        })
    }

    /// An admin call with the right token and a JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let mut headers = vec![("authorization", auth.as_str())];
        if bytes.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.send(method, path, &headers, bytes.as_deref())
    }

    fn check_documented(&self, method: &str, path: &str, resp: &Resp) {
        let path = path.split('?').next().unwrap_or(path);
        // The worker routes `//v1/token` as `/v1/token` (fullsend's clients send it).
        let trimmed = path.trim_start_matches('/');
        let path = if path.starts_with("//") {
            &path[path.len() - trimmed.len() - 1..]
        } else {
            path
        };
        let paths = self.openapi["paths"].as_object().expect("paths");
        let item = paths
            .iter()
            .find(|(template, _)| template_matches(template, path))
            .map(|(_, v)| v);
        let responses = self.openapi["components"]["responses"].clone();
        // A CORS preflight of a known path is answered at the edge: 204, no body.
        if method == "OPTIONS" && item.is_some() {
            assert_eq!(resp.status, 204, "OPTIONS {path}: a preflight answers 204");
            assert!(
                resp.body.is_empty(),
                "OPTIONS {path}: a preflight has no body"
            );
            return;
        }
        let documented = match item {
            None => {
                assert_eq!(resp.status, 404, "{method} {path}: an unknown path must answer 404");
                responses["NotFound"].clone()
            }
            Some(item) => match item.get(method.to_ascii_lowercase()) {
                None => {
                    assert_eq!(resp.status, 405, "{method} {path}: a known path with another method must be 405");
                    responses["MethodNotAllowed"].clone()
                }
                Some(op) => op["responses"]
                    .get(resp.status.to_string())
                    .or_else(|| op["responses"].get("default"))
                    .unwrap_or_else(|| {
                        panic!("{method} {path} answered {} which its OpenAPI operation does not document: {}", resp.status, resp.text())
                    })
                    .clone(),
            },
        };
        if let Some(schema) = documented.pointer("/content/application~1json/schema") {
            let errors = validate_with_root(&self.openapi, schema, &resp.json());
            assert!(
                errors.is_empty(),
                "{method} {path} → {}: body does not match OpenAPI: {errors:?}\n{}",
                resp.status,
                resp.text()
            );
        }
    }
}

fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// No response of the whole suite may carry a private key, a webhook or client secret; tokens
/// and service keys only where handing one out is the route's purpose.
fn check_no_secrets(method: &str, path: &str, resp: &Resp) {
    let text = resp.text();
    // Key material, not the PEM label (error messages and the API description name the label).
    let key_body: String = crate::config::PRIVATE_KEY
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let always = [
        key_body.as_str(),
        crate::config::WEBHOOK_SECRET,
        crate::identity::CLIENT_SECRET,
        crate::identity::APP_WEBHOOK_SECRET,
        crate::worker::ENCRYPTION_KEY,
        crate::worker::ADMIN_TOKEN,
    ];
    for secret in always {
        assert!(
            !text.contains(secret),
            "{method} {path} answered with a secret in its body"
        );
    }
    // `POST /` is the token mint's alias of `/v1/token`.
    let hands_out_token = path.ends_with("/token")
        || path.contains("/credentials")
        || (method == "POST" && path == "/");
    if !hands_out_token {
        assert!(
            !text.contains(crate::github_handlers::TOKEN_PREFIX),
            "{method} {path} answered with a token"
        );
    }
    // Service keys are shown once: on creation, and in an installer's status right after
    // its tenant was enrolled.
    let hands_out_key = (method == "POST" && path.ends_with("/service-keys"))
        || (method == "GET" && path.starts_with("/api/installers/"));
    if !hands_out_key {
        // A real key continues with the installation id (the API description only names the prefix).
        let key = text
            .match_indices("ghpsk_")
            .any(|(i, _)| text[i + 6..].starts_with(|c: char| c.is_ascii_digit()));
        assert!(!key, "{method} {path} answered with a service key");
    }
}
