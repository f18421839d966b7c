//! A fake api.github.com for the end-to-end tests, driven by GitHub's own
//! OpenAPI description of the operations ghplane calls
//! (`tests/fixtures/github-rest-operations.json`).
//!
//! Every request is recorded, then checked the way GitHub checks it
//! (headers, path parameters, the body against the operation's schema). A
//! violation is answered as GitHub would answer it *and* kept as a
//! conformance failure, so a test that never looks at that answer still fails
//! in [`FakeGithub::assert_conformant`]. A request that no operation matches
//! gets a loud 599 rather than a plausible 404.
//!
//! **Extensions beyond the REST description**, each documented where it lives:
//! - *Web routes* ([`WEB_AUTHORIZE`], [`WEB_ACCESS_TOKEN`]): the two github.com
//!   endpoints of the OAuth web flow, `GET /login/oauth/authorize` and
//!   `POST /login/oauth/access_token`, served on the same port (point
//!   `GITHUB_WEB_BASE` here). They validate client id, client secret, code and
//!   redirect URI as GitHub does, for apps registered with
//!   [`FakeGithub::register_oauth_app`]; see [`Shared::answer_web`].
//! - The user tokens they issue answer `GET /user` as the user who signed in,
//!   and `DELETE /applications/{client_id}/grant` checks its Basic credentials
//!   against the registered apps and revokes the grant.
//! - *Hold and release* ([`FakeGithub::hold`]): the reply to the first request a matcher
//!   accepts waits until the test calls [`Hold::release`] (or drops the [`Hold`], or the
//!   fake stops), so a test can act while the worker is inside that GitHub call (kill the
//!   worker, race a second request). [`Hold::wait_arrived`] blocks until the request came:
//!   ```ignore
//!   let hold = fake.hold(|r| r.path == "/app/installations/42");
//!   // … make the worker call it …
//!   assert!(hold.wait_arrived(Duration::from_secs(30)));
//!   hold.release();
//!   ```
//! - *Conditional requests*: a GET operation whose description documents a
//!   `304` answers `200`s with an `ETag` (a hash of the body) and answers `304`
//!   with no body when `If-None-Match` names it, as GitHub does.
//!
//! The server is a small HTTP/1.1 implementation on `std::net` instead of
//! tiny_http, because [`Reply::dropped`] must close the connection without a
//! response: tiny_http keeps the socket open after an unanswered request (the
//! client only ever times out) and answers 500 if the request is dropped.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::schema;

mod checks;
mod oauth_web;
mod operations;
mod selftests;
mod server;

pub use checks::percent_decode;
use checks::*;
use oauth_web::*;
pub use oauth_web::{FakeUser, WEB_ACCESS_TOKEN};
pub use operations::example;
use operations::*;
pub use selftests::SELFTESTS;
use server::*;

/// A running fake GitHub on `127.0.0.1`; dropping it closes every connection
/// and stops its threads.
pub struct FakeGithub {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target up to any `?`, still percent-encoded.
    pub path: String,
    /// Everything after the `?`, still percent-encoded.
    pub query: String,
    /// Names are lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The `operationId` the method and path matched, if any.
    pub operation: Option<String>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; panics (naming the request) when it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{} {} sent a body that is not JSON ({error}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }
}

/// What the fake answers. Framing headers (`content-length`,
/// `transfer-encoding`, `connection`) are the server's and are not sent.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Close the connection without writing anything; `status`, `headers`
    /// and `body` are then unused.
    pub drop_connection: bool,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            body: body.to_string().into_bytes(),
            ..Reply::empty(status)
        }
        .header("content-type", "application/json; charset=utf-8")
    }

    /// A reply with no body, like GitHub's 204s.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            drop_connection: false,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long after recording the request before answering it.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// GitHub's `Link: <…>; rel="next"` when `next` names the next page (see [`next_page`]).
    pub fn link_next(self, next: Option<String>) -> Reply {
        match next {
            Some(url) => self.header("link", format!("<{url}>; rel=\"next\"")),
            None => self,
        }
    }

    pub fn dropped() -> Reply {
        Reply {
            drop_connection: true,
            ..Reply::empty(0)
        }
    }
}

impl FakeGithub {
    pub fn start() -> FakeGithub {
        // Load the fixture here so that a missing file fails the test that
        // started the fake, not a server thread at the first request.
        operations();
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake GitHub: binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake GitHub: local address");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fake-github".into())
                .spawn(move || accept_connections(&listener, &shared))
                .expect("fake GitHub: spawning the accept thread")
        };
        FakeGithub {
            shared,
            addr,
            acceptor: Some(acceptor),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    pub fn requests_for(&self, operation_id: &str) -> Vec<RecordedRequest> {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|request| request.operation.as_deref() == Some(operation_id))
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// Scripted faults: the next `times` requests matching the operation
    /// (optionally only those whose path equals `path`) get `reply` instead of
    /// the example. `times: None` repeats until [`FakeGithub::clear_scripts`].
    /// Faults apply in the order scripted, and only to requests that pass the
    /// conformance checks (GitHub validates before anything can go wrong).
    #[track_caller]
    pub fn fault(
        &self,
        operation_id: &str,
        path: Option<&str>,
        reply: Reply,
        times: Option<usize>,
    ) {
        assert_known_operation(operation_id);
        if times == Some(0) {
            return;
        }
        self.shared.state().faults.push(Fault {
            operation: operation_id.to_string(),
            path: path.map(str::to_string),
            reply,
            remaining: times,
        });
    }

    /// A dynamic handler for an operation, replacing any earlier one; when it
    /// returns `None` the operation's example is used. Scripted faults win.
    #[track_caller]
    pub fn handle(
        &self,
        operation_id: &str,
        f: impl Fn(&RecordedRequest) -> Option<Reply> + Send + Sync + 'static,
    ) {
        assert_known_operation(operation_id);
        self.shared
            .state()
            .handlers
            .insert(operation_id.to_string(), Arc::new(f));
    }

    /// Registers an OAuth app (a GitHub App's client id and secret) for the web routes, with
    /// its callback URLs (GitHub accepts a `redirect_uri` on the same host and port whose
    /// path is within a callback URL's path; without one it uses the first).
    pub fn register_oauth_app(&self, client_id: &str, client_secret: &str, callbacks: &[&str]) {
        self.shared.state().web.apps.insert(
            client_id.to_string(),
            (
                client_secret.to_string(),
                callbacks.iter().map(|c| c.to_string()).collect(),
            ),
        );
    }

    /// The user a token issued by the web routes belongs to.
    pub fn oauth_user(&self, token: &str) -> Option<FakeUser> {
        self.shared.state().web.tokens.get(token).cloned()
    }

    /// Every user token the web routes issued to `login`.
    pub fn oauth_tokens_of(&self, login: &str) -> Vec<String> {
        self.shared
            .state()
            .web
            .tokens
            .iter()
            .filter(|(_, user)| user.login == login)
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// True once `DELETE /applications/{client_id}/grant` revoked the token's grant.
    pub fn oauth_revoked(&self, token: &str) -> bool {
        self.shared.state().web.revoked.iter().any(|t| t == token)
    }

    /// An extension outside the REST description: a route of GitHub's web side (e.g. the
    /// App Manifest form at `/settings/apps/new`), matched on method and a path template
    /// (`{name}` is one segment) before the REST operations. Recorded as operation
    /// `web <template>`; a handler's `Err` is a conformance failure answered with 422.
    pub fn web(
        &self,
        method: &str,
        template: &str,
        f: impl Fn(&RecordedRequest) -> Result<Reply, String> + Send + Sync + 'static,
    ) {
        let mut state = self.shared.state();
        state
            .web_routes
            .retain(|(m, t, _)| !(m == method && t == template));
        state
            .web_routes
            .push((method.to_owned(), template.to_owned(), Arc::new(f)));
    }

    /// A documented extension outside GitHub's REST description (an OIDC issuer, the
    /// Actions ID-token endpoint): `method` + exact `path` (query ignored) answered by `f`
    /// before any operation routing, recorded with `operation` `x:<name>`. Stays for the
    /// whole run; registering the same method and path again replaces it.
    pub fn extra_route(
        &self,
        name: &str,
        method: &str,
        path: &str,
        f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) {
        let mut state = self.shared.state();
        state
            .extras
            .retain(|e| !(e.method == method && e.path == path));
        state.extras.push(Extra {
            name: format!("x:{name}"),
            method: method.to_string(),
            path: path.to_string(),
            handler: Arc::new(f),
        });
    }

    /// Holds the reply to the first request (recorded and answered as usual) that `matcher`
    /// accepts until [`Hold::release`]; see the module's documentation.
    pub fn hold(&self, matcher: impl Fn(&RecordedRequest) -> bool + Send + Sync + 'static) -> Hold {
        let state = Arc::new(HoldState {
            matcher: Box::new(matcher),
            flags: Mutex::new((false, false)),
            changed: Condvar::new(),
        });
        self.shared.state().holds.push(Arc::clone(&state));
        Hold { state }
    }

    /// Removes every fault and handler; recorded requests and failures stay.
    pub fn clear_scripts(&self) {
        let mut state = self.shared.state();
        state.faults.clear();
        state.handlers.clear();
        state.web_routes.clear();
    }

    pub fn conformance_failures(&self) -> Vec<String> {
        self.shared.state().failures.clone()
    }

    pub fn take_conformance_failures(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.state().failures)
    }

    #[track_caller]
    pub fn assert_conformant(&self) {
        let failures = self.conformance_failures();
        assert!(
            failures.is_empty(),
            "fake GitHub received {} request(s) GitHub would not accept:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.shared.stop();
        // `accept` has no timeout; a connection of our own wakes it to notice.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    lifecycle: Mutex<Lifecycle>,
    /// Signalled once `lifecycle.stopping` is set, to cut delays short.
    stopping: Condvar,
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    failures: Vec<String>,
    faults: Vec<Fault>,
    handlers: HashMap<String, Handler>,
    extras: Vec<Extra>,
    web_routes: Vec<(String, String, WebHandler)>,
    web: WebOAuth,
    holds: Vec<Arc<HoldState>>,
}

/// A held reply: see [`FakeGithub::hold`].
pub struct Hold {
    state: Arc<HoldState>,
}

struct HoldState {
    matcher: Box<dyn Fn(&RecordedRequest) -> bool + Send + Sync>,
    /// (arrived, released)
    flags: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl HoldState {
    fn flags(&self) -> MutexGuard<'_, (bool, bool)> {
        self.flags.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hold {
    /// Blocks until the held request arrived; false after `timeout` without it.
    pub fn wait_arrived(&self, timeout: Duration) -> bool {
        let flags = self.state.flags();
        let (flags, _) = self
            .state
            .changed
            .wait_timeout_while(flags, timeout, |f| !f.0)
            .unwrap_or_else(PoisonError::into_inner);
        flags.0
    }

    /// Lets the held reply go (a no-op when it was released already).
    pub fn release(&self) {
        self.state.flags().1 = true;
        self.state.changed.notify_all();
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

struct Extra {
    name: String,
    method: String,
    path: String,
    handler: Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>,
}

type Handler = Arc<dyn Fn(&RecordedRequest) -> Option<Reply> + Send + Sync>;
/// `Err(reason)`: a request GitHub's web side would refuse; kept as a conformance failure.
type WebHandler = Arc<dyn Fn(&RecordedRequest) -> Result<Reply, String> + Send + Sync>;

struct Fault {
    operation: String,
    path: Option<String>,
    reply: Reply,
    remaining: Option<usize>,
}

impl Shared {
    fn answer(&self, mut request: RecordedRequest) -> Reply {
        let extra = {
            let state = self.state();
            state
                .extras
                .iter()
                .find(|e| e.method == request.method && e.path == request.path)
                .map(|e| (e.name.clone(), e.handler.clone()))
        };
        if let Some((name, handler)) = extra {
            request.operation = Some(name);
            self.state().requests.push(request.clone());
            return handler(&request);
        }
        let web = self
            .state()
            .web_routes
            .iter()
            .find_map(|(method, template, handler)| {
                (method.eq_ignore_ascii_case(&request.method)
                    && web_matches(template, &request.path))
                .then(|| (template.clone(), handler.clone()))
            });
        if let Some((template, handler)) = web {
            request.operation = Some(format!("web {template}"));
            self.state().requests.push(request.clone());
            return handler(&request).unwrap_or_else(|reason| {
                self.state()
                    .failures
                    .push(format!("web {template} ({}): {reason}", request.path));
                Reply::json(422, json!({ "message": reason }))
            });
        }
        if let Some(reply) = self.answer_web(&mut request) {
            return reply;
        }
        let Some((operation, params)) = route(&request.method, &request.path) else {
            let reason = format!("no operation matches {} {}", request.method, request.path);
            let mut state = self.state();
            state.failures.push(format!("unmatched request: {reason}"));
            state.requests.push(request);
            let message = format!(
                "fake GitHub: {reason}; is the operation missing from github-rest-operations.json?"
            );
            return Reply::json(599, json!({ "message": message }));
        };
        request.operation = Some(operation.id.clone());
        let mut problems = check_request(operation, &params, &request);
        if operation.id == GRANT_OPERATION {
            problems.extend(self.check_app_credentials(operation, &params, &request));
        }
        {
            let mut state = self.state();
            state.failures.extend(problems.iter().map(|problem| {
                format!(
                    "{} ({} {}): {}",
                    operation.id, request.method, request.path, problem.reason
                )
            }));
            state.requests.push(request.clone());
        }
        if let Some(rejection) = problems.into_iter().find_map(|problem| problem.rejection) {
            return rejection;
        }
        if let Some(reply) = self.take_fault(&operation.id, &request.path) {
            return reply;
        }
        // Cloned out so the handler runs without the lock held.
        let handler = self.state().handlers.get(&operation.id).cloned();
        let reply = match handler.and_then(|handler| handler(&request)) {
            Some(reply) => reply,
            None => self
                .web_token_answer(operation, &request)
                .unwrap_or_else(|| operation.example()),
        };
        conditional(operation, &request, reply)
    }

    fn take_fault(&self, operation: &str, path: &str) -> Option<Reply> {
        let mut state = self.state();
        let index = state.faults.iter().position(|fault| {
            fault.operation == operation && fault.path.as_deref().is_none_or(|p| p == path)
        })?;
        let fault = &mut state.faults[index];
        let reply = fault.reply.clone();
        let exhausted = match &mut fault.remaining {
            Some(remaining) => {
                *remaining -= 1;
                *remaining == 0
            }
            None => false,
        };
        if exhausted {
            state.faults.remove(index);
        }
        Some(reply)
    }
}

/// GitHub's page-number pagination for a listing of `total` entries: the 0-based range of
/// entries on the requested page (`page`, `per_page` with `default_per_page`), and the
/// absolute URL of the next page when there is one, for [`Reply::link_next`]. GitHub names
/// the next page in `Link` and clients must follow it rather than guess from page lengths.
pub fn next_page(
    req: &RecordedRequest,
    total: usize,
    default_per_page: usize,
) -> (std::ops::Range<usize>, Option<String>) {
    let page: usize = req
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: usize = req
        .query_param("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default_per_page);
    let start = ((page - 1) * per_page).min(total);
    let end = (start + per_page).min(total);
    let next = (end < total).then(|| {
        let others: Vec<&str> = req
            .query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .collect();
        let host = req.header("host").unwrap_or("127.0.0.1");
        let mut query = others.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!("http://{host}{}?{query}page={}", req.path, page + 1)
    });
    (start..end, next)
}
