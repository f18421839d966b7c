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
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
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
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_owned())))
            .collect();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("read body");
        let resp = Resp {
            status,
            headers,
            body: bytes,
        };
        self.check_documented(method, path, &resp);
        resp
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
