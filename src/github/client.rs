//! The one GitHub REST client. Its base URL is `GITHUB_API_BASE` (the fake GitHub in tests),
//! it always sends the headers GitHub asks API clients for, and every failure comes back as a
//! typed [`GithubError`], never as a raw status.

use ghplane_core::github::error::GithubError;
use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use worker::{Date, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::settings;

pub const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("ghplane/", env!("CARGO_PKG_VERSION"));

/// Who a request speaks as. The token text never reaches a log line.
pub enum Credential<'a> {
    /// An App JWT (RS256), for `/app/...` endpoints.
    App(&'a str),
    /// An installation access token, for everything done on a tenant's behalf.
    Installation(&'a str),
}

pub struct GithubResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl GithubResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| GithubError::MalformedResponse(e.to_string()))
    }
}

pub struct GithubClient {
    base: String,
}

impl GithubClient {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let base = settings::require(env, settings::GITHUB_API_BASE)?;
        Ok(GithubClient {
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request. 2xx comes back as the response; anything else as a classified error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        body: Option<&Value>,
    ) -> Result<GithubResponse, GithubError> {
        let headers = Headers::new();
        let set = |k: &str, v: &str| {
            headers
                .set(k, v)
                .map_err(|_| GithubError::Network("bad header".into()))
        };
        set("accept", "application/vnd.github+json")?;
        set("x-github-api-version", API_VERSION)?;
        set("user-agent", USER_AGENT)?;
        let token = match credential {
            Credential::App(t) | Credential::Installation(t) => t,
        };
        set("authorization", &format!("Bearer {token}"))?;
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            set("content-type", "application/json")?;
            init.with_body(Some(b.to_string().into()));
        }
        init.with_headers(headers);
        let url = format!("{}{path}", self.base);
        let req =
            Request::new_with_init(&url, &init).map_err(|e| GithubError::Network(e.to_string()))?;
        let mut resp = Fetch::Request(req)
            .send()
            .await
            .map_err(|e| GithubError::Network(e.to_string()))?;
        let status = resp.status_code();
        let headers: Vec<(String, String)> = resp.headers().entries().collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| GithubError::Network(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(GithubResponse {
                status,
                headers,
                body,
            });
        }
        let now = (Date::now().as_millis() / 1000) as i64;
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Err(GithubError::classify(status, lookup, &body, now))
    }
}
