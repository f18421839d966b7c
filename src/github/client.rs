//! The one GitHub REST client. Its base URL is `GITHUB_API_BASE` (the fake GitHub in tests),
//! it always sends the headers GitHub asks API clients for, it retries as
//! `ghplane_core::github::retry` decides, and every failure comes back as a typed
//! [`GithubError`], never a raw status.

use std::cell::Cell;
use std::time::Duration;

use ghplane_core::github::error::GithubError;
use ghplane_core::github::retry;
pub use ghplane_core::github::retry::is_jwt_clock_error;
use ghplane_core::time::parse_http_date;
use ghplane_core::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use worker::{Date, Delay, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::settings;

pub const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("ghplane/", env!("CARGO_PKG_VERSION"));

/// Whether a request may be sent twice without harm. Only these are retried after a 5xx or
/// a network failure (a rate-limited request was not processed, so any method retries then).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Yes,
    // Creating resources (repositories, deployments) must not be repeated blindly.
    No,
}

pub struct GithubResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub etag: Option<String>,
    /// The `Link` header: where the next page of a listing is (see `ghplane_core::github::pages`).
    pub link: Option<String>,
    /// A `304` to a conditional GET: the cached copy is current (and cost no rate limit).
    pub not_modified: bool,
}

impl GithubResponse {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| GithubError::MalformedResponse(e.to_string()))
    }
}

pub struct GithubClient {
    base: String,
    /// GitHub's clock from the last `Date` header seen, for re-signing a JWT it found skewed.
    server_time: Cell<Option<i64>>,
}

pub fn now_unix() -> i64 {
    (Date::now().as_millis() / 1000) as i64
}

impl GithubClient {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let base = settings::require(env, settings::GITHUB_API_BASE)?;
        Ok(GithubClient {
            base: base.trim_end_matches('/').to_owned(),
            server_time: Cell::new(None),
        })
    }

    /// The API base requests go to, without a trailing slash (what `Link`s are relative to).
    pub fn api_base(&self) -> &str {
        &self.base
    }

    pub fn server_time(&self) -> Option<i64> {
        self.server_time.get()
    }

    /// Sends a request with the token `bearer` (none when empty), retrying what GitHub's
    /// etiquette allows.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        idempotent: Idempotent,
    ) -> Result<GithubResponse, GithubError> {
        let authorization = if bearer.is_empty() {
            String::new()
        } else {
            format!("Bearer {bearer}")
        };
        self.send_with(method, path, &authorization, body, None, idempotent)
            .await
    }

    /// A GET revalidating a cached copy: with `etag`, GitHub answers `304` (`not_modified`)
    /// when nothing changed, which does not count against the rate limit.
    pub async fn get_conditional(
        &self,
        path: &str,
        bearer: &str,
        etag: Option<&str>,
    ) -> Result<GithubResponse, GithubError> {
        let authorization = format!("Bearer {bearer}");
        self.send_with(
            Method::Get,
            path,
            &authorization,
            None,
            etag,
            Idempotent::Yes,
        )
        .await
    }

    /// [`GithubClient::send`] with a whole `Authorization` value (e.g. Basic for the
    /// `/applications/{client_id}/…` endpoints) and an optional `If-None-Match`.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Option<&Value>,
        if_none_match: Option<&str>,
        idempotent: Idempotent,
    ) -> Result<GithubResponse, GithubError> {
        let mut retries = 0;
        loop {
            let result = self
                .send_once(method.clone(), path, authorization, body, if_none_match)
                .await;
            let wait = match &result {
                Err(e) => retry::next_wait_ms(e, idempotent == Idempotent::Yes, retries),
                Ok(_) => None,
            };
            match wait {
                Some(ms) => {
                    retries += 1;
                    Delay::from(Duration::from_millis(ms)).await;
                }
                None => return result,
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Option<&Value>,
        if_none_match: Option<&str>,
    ) -> Result<GithubResponse, GithubError> {
        let headers = Headers::new();
        let set = |k: &str, v: &str| {
            headers
                .set(k, v)
                .map_err(|_| GithubError::Network("invalid header value".into()))
        };
        set("accept", "application/vnd.github+json")?;
        set("x-github-api-version", API_VERSION)?;
        set("user-agent", USER_AGENT)?;
        // Empty for the one call GitHub takes without credentials (manifest conversion).
        if !authorization.is_empty() {
            set("authorization", authorization)?;
        }
        if let Some(etag) = if_none_match {
            set("if-none-match", etag)?;
        }
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
        let resp = Fetch::Request(req)
            .send()
            .await
            .map_err(|e| GithubError::Network(e.to_string()))?;
        let status = resp.status_code();
        let headers: Vec<(String, String)> = resp.headers().entries().collect();
        let body = crate::http::body_bytes(resp)
            .await
            .map_err(|e| GithubError::Network(e.to_string()))?;
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if let Some(t) = lookup("date").as_deref().and_then(parse_http_date) {
            self.server_time.set(Some(t));
        }
        let etag = lookup("etag");
        let link = lookup("link");
        if (200..300).contains(&status) || (status == 304 && if_none_match.is_some()) {
            return Ok(GithubResponse {
                status,
                body,
                etag,
                link,
                not_modified: status == 304,
            });
        }
        Err(GithubError::classify(status, lookup, &body, now_unix()))
    }
}
