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

/// Pseudo operation ids of the web routes, for [`FakeGithub::requests_for`].
pub const WEB_AUTHORIZE: &str = "web/oauth-authorize";
pub const WEB_ACCESS_TOKEN: &str = "web/oauth-access-token";
/// GitHub's lifetime of an authorization code.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// What github.com knows about OAuth apps, codes and user tokens.
#[derive(Default)]
struct WebOAuth {
    /// client id → (client secret, callback URLs).
    apps: HashMap<String, (String, Vec<String>)>,
    codes: HashMap<String, Grant>,
    /// user token → user.
    tokens: HashMap<String, FakeUser>,
    revoked: Vec<String>,
    /// login → id, so one login is one user for the whole run.
    users: HashMap<String, u64>,
    issued: u64,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    user: FakeUser,
    issued_at: Instant,
    used: bool,
}

/// A GitHub user of the web flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    pub login: String,
    pub id: u64,
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

/// Open connections live under the same lock as the stop flag, so that no
/// connection can be accepted after `stop` has shut the others down.
#[derive(Default)]
struct Lifecycle {
    stopping: bool,
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

impl Shared {
    // A panicking test or handler must not hide every later assertion behind
    // a poisoned lock; the state itself is always left consistent.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lifecycle(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `None` once stopping: the caller must drop the connection.
    fn register(&self, stream: TcpStream) -> Option<u64> {
        let mut lifecycle = self.lifecycle();
        if lifecycle.stopping {
            return None;
        }
        let id = lifecycle.next_id;
        lifecycle.next_id += 1;
        lifecycle.open.insert(id, stream);
        Some(id)
    }

    fn close(&self, id: u64) {
        if let Some(stream) = self.lifecycle().open.remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn stop(&self) {
        let mut lifecycle = self.lifecycle();
        lifecycle.stopping = true;
        for stream in lifecycle.open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.stopping.notify_all();
    }

    /// The first pending hold that matches `request`, marked arrived and no longer pending.
    fn take_hold(&self, request: &RecordedRequest) -> Option<Arc<HoldState>> {
        let mut state = self.state();
        let index = state.holds.iter().position(|h| (h.matcher)(request))?;
        let hold = state.holds.remove(index);
        drop(state);
        hold.flags().0 = true;
        hold.changed.notify_all();
        Some(hold)
    }

    /// Waits for the hold's release, checking for the fake's stop; false if it stopped.
    fn wait_released(&self, hold: &HoldState) -> bool {
        loop {
            {
                let flags = hold.flags();
                let (flags, _) = hold
                    .changed
                    .wait_timeout_while(flags, Duration::from_millis(100), |f| !f.1)
                    .unwrap_or_else(PoisonError::into_inner);
                if flags.1 {
                    return true;
                }
            }
            if self.lifecycle().stopping {
                return false;
            }
        }
    }

    /// Sleeps for `delay` unless the fake stops first; false if it stopped.
    fn pause(&self, delay: Duration) -> bool {
        let lifecycle = self.lifecycle();
        let (lifecycle, _) = self
            .stopping
            .wait_timeout_while(lifecycle, delay, |lifecycle| !lifecycle.stopping)
            .unwrap_or_else(PoisonError::into_inner);
        !lifecycle.stopping
    }

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
    fn answer_web(&self, request: &mut RecordedRequest) -> Option<Reply> {
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
    fn web_token_answer(&self, operation: &Operation, request: &RecordedRequest) -> Option<Reply> {
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
    fn check_app_credentials(
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

struct Operation {
    id: String,
    method: String,
    segments: Vec<Segment>,
    integer_params: Vec<String>,
    docs: String,
    request_body: Option<Value>,
    success_status: u16,
    success_body: Option<Value>,
    /// The description documents a `304`: the operation serves conditional GETs.
    conditional: bool,
}

enum Segment {
    Literal(String),
    Param(String),
}

impl Operation {
    fn parse(id: &str, operation: &Value) -> Operation {
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
    fn bind<'a>(&'a self, segments: &[&'a str]) -> Option<Vec<(&'a str, &'a str)>> {
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

    fn literal_segments(&self) -> usize {
        self.segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count()
    }

    fn example(&self) -> Reply {
        match &self.success_body {
            Some(body) => Reply::json(self.success_status, body.clone()),
            None => Reply::empty(self.success_status),
        }
    }

    fn github_error(&self, status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": self.docs, "status": status.to_string() }),
        )
    }
}

fn operations() -> &'static [Operation] {
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
fn assert_known_operation(id: &str) {
    assert!(
        operations().iter().any(|operation| operation.id == id),
        "fake GitHub: no operation {id:?} in github-rest-operations.json"
    );
}

fn web_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// Like GitHub's router, a literal segment beats a parameter when two
/// templates fit the same path.
fn route<'a>(method: &str, path: &'a str) -> Option<(&'static Operation, Vec<(&'a str, &'a str)>)> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    operations()
        .iter()
        .filter(|operation| operation.method.eq_ignore_ascii_case(method))
        .filter_map(|operation| Some((operation, operation.bind(&segments)?)))
        .max_by_key(|(operation, _)| operation.literal_segments())
}

const API_VERSION: &str = "2022-11-28";

const GRANT_OPERATION: &str = "apps/delete-authorization";

fn bearer(request: &RecordedRequest) -> Option<String> {
    let header = request.header("authorization")?;
    let (scheme, token) = header.split_once(' ')?;
    ["bearer", "token"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        .then(|| token.trim().to_string())
}

/// GitHub's conditional GETs: a `200` of an operation that documents `304` carries an
/// `ETag` (a hash of its body), and a request whose `If-None-Match` names it gets `304`.
fn conditional(operation: &Operation, request: &RecordedRequest, reply: Reply) -> Reply {
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

/// Form (`a=b&c=d`) or JSON object parameters, as the access token endpoint reads them.
fn web_params(request: &RecordedRequest) -> Result<HashMap<String, String>, String> {
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

fn web_reply(request: &RecordedRequest, fields: &[(&str, Value)]) -> Reply {
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

fn web_error(request: &RecordedRequest, error: &str, description: &str) -> Reply {
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
fn redirect_allowed(callbacks: &[String], redirect_uri: &str) -> bool {
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

fn authorize(web: &mut WebOAuth, request: &RecordedRequest) -> (Reply, Option<String>) {
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

fn access_token(web: &mut WebOAuth, request: &RecordedRequest) -> (Reply, Option<String>) {
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

fn percent_encode(text: &str) -> String {
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

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The one operation GitHub serves without credentials: the manifest code
/// in the path is the secret.
const UNAUTHENTICATED_OPERATION: &str = "apps/create-from-manifest";

struct Problem {
    reason: String,
    /// GitHub's answer when it refuses the request; `None` when GitHub would
    /// serve it anyway but a well-behaved client should not send it.
    rejection: Option<Reply>,
}

/// Problems in the order GitHub checks for them, so the first rejection is
/// the answer GitHub would give.
fn check_request(
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

fn has_known_scheme(credentials: &str) -> bool {
    let Some((scheme, token)) = credentials.split_once(' ') else {
        return false;
    };
    ["bearer", "token", "basic"]
        .iter()
        .any(|known| scheme.eq_ignore_ascii_case(known))
        && !token.trim().is_empty()
}

pub(crate) fn percent_decode(text: &str) -> String {
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

fn accept_connections(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        // A failed accept concerns only that client; keep serving the rest.
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let Some(id) = shared.register(handle) else {
            break;
        };
        let shared = Arc::clone(shared);
        connections.retain(|connection| !connection.is_finished());
        connections.push(thread::spawn(move || {
            serve_connection(&shared, stream);
            shared.close(id);
        }));
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Serves requests on one keep-alive connection, one at a time (HTTP/1.1
/// answers in order); concurrency comes from one thread per connection.
fn serve_connection(shared: &Shared, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let (request, keep_alive) = match read_request(&mut reader, &mut writer) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(error) => {
                // A client that hangs up mid-request is not a protocol error.
                if error.kind() == io::ErrorKind::InvalidData {
                    shared
                        .state()
                        .failures
                        .push(format!("malformed HTTP request: {error}"));
                    let reply = Reply::json(400, json!({ "message": error.to_string() }));
                    let _ = write_response(&mut writer, &reply, false, false);
                }
                return;
            }
        };
        let head_only = request.method == "HEAD";
        let hold = shared.take_hold(&request);
        let reply = shared.answer(request);
        if let Some(hold) = hold {
            if !shared.wait_released(&hold) {
                return;
            }
        }
        if reply.drop_connection || !shared.pause(reply.delay) {
            return;
        }
        if write_response(&mut writer, &reply, keep_alive, head_only).is_err() || !keep_alive {
            return;
        }
    }
}

// Bounds that no real request comes near; they only stop garbage from
// exhausting memory.
const MAX_LINE: u64 = 64 * 1024;
const MAX_HEADERS: usize = 200;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// `Ok(None)` when the client closed the connection between requests.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<(RecordedRequest, bool)>> {
    let request_line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            // RFC 9112 asks servers to ignore blank lines before a request.
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(invalid(format!("unsupported version in {request_line:?}")));
    }

    let mut headers = Vec::new();
    loop {
        let line =
            read_line(reader)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.to_ascii_lowercase())
    };

    let connection = find("connection").unwrap_or_default();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    if find("expect").as_deref() == Some("100-continue") {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if find("transfer-encoding").is_some_and(|coding| coding.contains("chunked")) {
        read_chunked(reader)?
    } else if let Some(length) = find("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        if length > MAX_BODY {
            return Err(invalid(format!("content-length {length} is too large")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };

    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = RecordedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
        operation: None,
    };
    Ok(Some((request, keep_alive)))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = required_line(reader)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailer fields carry nothing GitHub reads; skip to the end.
            while !required_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body is too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !required_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".into()));
        }
    }
}

/// A line without its CRLF (or bare LF); `None` at end of stream.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if read as u64 == MAX_LINE {
            invalid("line too long".into())
        } else {
            io::ErrorKind::UnexpectedEof.into()
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn required_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    read_line(reader)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn write_response(
    writer: &mut TcpStream,
    reply: &Reply,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    // RFC 9110 forbids a body, and so a content-length, on these.
    let bodiless = matches!(reply.status, 100..=199 | 204 | 304);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        reason_phrase(reply.status)
    );
    for (name, value) in &reply.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|framing| name.eq_ignore_ascii_case(framing));
        if !framing {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !bodiless {
        head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
    }
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !bodiless && !head_only {
        bytes.extend_from_slice(&reply.body);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        599 => "Unmatched Request",
        _ => "Unknown",
    }
}

/// The fake's own tests, for the e2e binary to run as trials; they need no
/// worker, only the fixture.
pub const SELFTESTS: &[(&str, fn())] = &[
    (
        "fake_github::conforming_request_gets_the_example",
        selftest_conforming_request_gets_the_example,
    ),
    (
        "fake_github::invalid_bodies_are_rejected",
        selftest_invalid_bodies_are_rejected,
    ),
    (
        "fake_github::integer_path_params_are_checked",
        selftest_integer_path_params_are_checked,
    ),
    (
        "fake_github::unmatched_routes_are_loud",
        selftest_unmatched_routes_are_loud,
    ),
    (
        "fake_github::headers_are_checked",
        selftest_headers_are_checked,
    ),
    (
        "fake_github::chunked_bodies_are_read",
        selftest_chunked_bodies_are_read,
    ),
    (
        "fake_github::faults_apply_the_given_times",
        selftest_faults_apply_the_given_times,
    ),
    (
        "fake_github::delays_do_not_block_others",
        selftest_delays_do_not_block_others,
    ),
    (
        "fake_github::dropped_connections_fail_the_client",
        selftest_dropped_connections_fail_the_client,
    ),
    (
        "fake_github::handlers_answer_dynamically",
        selftest_handlers_answer_dynamically,
    ),
    (
        "fake_github::drop_stops_the_server",
        selftest_drop_stops_the_server,
    ),
    ("fake_github::schema_validation", selftest_schema_validation),
    (
        "fake_github::oauth_web_routes_act_like_github",
        selftest_oauth_web_routes_act_like_github,
    ),
    (
        "fake_github::conditional_gets_answer_304",
        selftest_conditional_gets_answer_304,
    ),
];

pub fn selftest_oauth_web_routes_act_like_github() {
    let fake = FakeGithub::start();
    let callback = "http://127.0.0.1:1/api/integrations/github/callback";
    fake.register_oauth_app("Iv1.self", "s3cret", &[callback]);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let authorize = |query: &str| {
        let r = agent
            .get(&format!(
                "{}/login/oauth/authorize?{query}",
                fake.base_url()
            ))
            .call();
        match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                (r.status(), r.header("location").unwrap_or("").to_string())
            }
            Err(e) => panic!("{e}"),
        }
    };
    let (status, location) = authorize(&format!(
        "client_id=Iv1.self&redirect_uri={}&state=a.b&login=mona",
        percent_encode(callback)
    ));
    assert_eq!(status, 302);
    assert!(
        location.starts_with(&format!("{callback}?code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=a.b"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    fake.assert_conformant();

    let exchange = |body: String, accept: &str| {
        let r = ureq::post(&format!("{}/login/oauth/access_token", fake.base_url()))
            .set("accept", accept)
            .set("content-type", "application/x-www-form-urlencoded")
            .send_string(&body)
            .expect("a 200, even for errors");
        assert_eq!(r.status(), 200);
        r.into_string().unwrap()
    };
    let form = |code: &str, secret: &str| {
        format!(
            "client_id=Iv1.self&client_secret={secret}&code={code}&redirect_uri={}",
            percent_encode(callback)
        )
    };
    let answer: Value =
        serde_json::from_str(&exchange(form(&code, "s3cret"), "application/json")).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with("ghu_") && answer["refresh_token"].is_string(),
        "{answer}"
    );
    assert_eq!(fake.oauth_user(&token).unwrap().login, "mona");
    let again: Value =
        serde_json::from_str(&exchange(form(&code, "s3cret"), "application/json")).unwrap();
    assert_eq!(
        again["error"], "bad_verification_code",
        "a code is single use"
    );
    assert!(exchange(form("nope", "s3cret"), "*/*").starts_with("error=bad_verification_code"));
    fake.assert_conformant();

    let wrong: Value =
        serde_json::from_str(&exchange(form(&code, "wrong"), "application/json")).unwrap();
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    assert_eq!(fake.take_conformance_failures().len(), 1);
    let (status, _) =
        authorize("client_id=Iv1.self&redirect_uri=https%3A%2F%2Fevil.test%2Fcb&state=x");
    assert_eq!(status, 400);
    assert_eq!(fake.take_conformance_failures().len(), 1);
    let (status, _) = authorize("client_id=unknown&state=x");
    assert_eq!(status, 404);
    assert_eq!(fake.take_conformance_failures().len(), 1);

    let me = conforming(&fake, "GET", "/user").set("authorization", &format!("Bearer {token}"));
    let (status, user) = outcome(me.call());
    assert_eq!((status, user["login"].as_str()), (200, Some("mona")));
    let revoke = |basic: &str| {
        outcome(
            conforming(&fake, "DELETE", "/applications/Iv1.self/grant")
                .set("authorization", &format!("Basic {basic}"))
                .send_json(json!({ "access_token": token })),
        )
        .0
    };
    assert_eq!(revoke("SXYxLnNlbGY6d3Jvbmc="), 404, "Iv1.self:wrong");
    assert_eq!(fake.take_conformance_failures().len(), 1);
    assert_eq!(revoke("SXYxLnNlbGY6czNjcmV0"), 204, "Iv1.self:s3cret");
    assert!(fake.oauth_revoked(&token));
    let me = conforming(&fake, "GET", "/user").set("authorization", &format!("Bearer {token}"));
    assert_eq!(outcome(me.call()).0, 401);
    fake.assert_conformant();
}

pub fn selftest_conditional_gets_answer_304() {
    let fake = FakeGithub::start();
    let first = conforming(&fake, "GET", "/user/installations")
        .call()
        .unwrap();
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = conforming(&fake, "GET", "/user/installations")
        .set("if-none-match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.into_string().unwrap(), "");
    let other = conforming(&fake, "GET", "/user/installations")
        .set("if-none-match", "W/\"0\"")
        .call()
        .unwrap();
    assert_eq!(other.status(), 200);
    // Operations that document no 304 have no ETag.
    let app = conforming(&fake, "GET", "/app").call().unwrap();
    assert!(app.header("etag").is_none());
    fake.assert_conformant();
}

const TOKEN_OPERATION: &str = "apps/create-installation-access-token";
const EXAMPLE_TOKEN: &str = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";

pub fn selftest_conforming_request_gets_the_example() {
    let fake = FakeGithub::start();
    let (status, body) = outcome(
        conforming(
            &fake,
            "POST",
            "/app/installations/1/access_tokens?note=a%20b+c",
        )
        .send_json(json!({ "repositories": ["a"], "permissions": { "contents": "read" } })),
    );
    assert_eq!(status, 201);
    assert_eq!(body["token"], EXAMPLE_TOKEN);
    fake.assert_conformant();

    let recorded = fake.requests_for(TOKEN_OPERATION);
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.operation.as_deref(), Some(TOKEN_OPERATION));
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/app/installations/1/access_tokens")
    );
    assert_eq!(request.query_param("note").as_deref(), Some("a b c"));
    assert_eq!(request.header("User-Agent"), Some("ghplane-selftest"));
    assert_eq!(request.json()["permissions"]["contents"], "read");

    // An operation documented with a bare 204 answers with no body.
    let (status, body) = outcome(conforming(&fake, "DELETE", "/installation/token").call());
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(fake.requests().len(), 2);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    fake.assert_conformant();
}

pub fn selftest_invalid_bodies_are_rejected() {
    let fake = FakeGithub::start();
    let token_path = "/app/installations/1/access_tokens";
    let cases = [
        (
            json!({ "repositories": [1] }),
            "$.repositories[0]: expected type string, got integer",
        ),
        (
            json!({ "permissions": { "contents": "admin" } }),
            r#"$.permissions.contents: expected one of ["read","write"]"#,
        ),
    ];
    for (body, error) in cases {
        let (status, answer) = outcome(conforming(&fake, "POST", token_path).send_json(body));
        assert_eq!(status, 422);
        let message = answer["message"].as_str().expect("a message");
        assert!(
            message.starts_with("Invalid request.\n\n") && message.contains(error),
            "{message}"
        );
        assert_eq!(answer["status"], "422");
        let failures = fake.take_conformance_failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].contains(TOKEN_OPERATION) && failures[0].contains(error),
            "{failures:?}"
        );
    }

    let (status, answer) = outcome(
        conforming(&fake, "POST", token_path)
            .set("content-type", "application/json")
            .send_string("{"),
    );
    assert_eq!(
        (status, answer["message"].as_str()),
        (400, Some("Problems parsing JSON"))
    );
    assert_eq!(fake.take_conformance_failures().len(), 1);

    let (status, _) = outcome(conforming(&fake, "POST", "/repos/o/r/deployments").call());
    assert_eq!(status, 422);
    let failures = fake.take_conformance_failures();
    assert!(
        failures[0].contains(r#"missing required property "ref""#),
        "{failures:?}"
    );

    // GitHub ignores a body it does not expect, but a client should not send one.
    let (status, _) =
        outcome(conforming(&fake, "PUT", "/app/installations/1/suspended").send_json(json!({})));
    assert_eq!(status, 204);
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains("takes none"),
        "{failures:?}"
    );
}

pub fn selftest_integer_path_params_are_checked() {
    let fake = FakeGithub::start();
    let (status, _) = outcome(
        conforming(&fake, "POST", "/app/installations/abc/access_tokens").send_json(json!({})),
    );
    assert_eq!(status, 404);
    let failures = fake.conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains("installation_id must be an integer"),
        "{failures:?}"
    );
}

pub fn selftest_unmatched_routes_are_loud() {
    let fake = FakeGithub::start();
    let (status, answer) = outcome(conforming(&fake, "GET", "/nope?x=1").call());
    assert_eq!(status, 599);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("GET /nope"),
        "{answer}"
    );
    // The path exists, but not for this method.
    let (status, _) = outcome(conforming(&fake, "PATCH", "/app/installations/1").call());
    assert_eq!(status, 599);
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 2 && failures[0].starts_with("unmatched request"),
        "{failures:?}"
    );
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.operation.is_none()));
}

pub fn selftest_headers_are_checked() {
    let fake = FakeGithub::start();
    let (status, answer) = raw_exchange(
        &fake,
        "GET /app HTTP/1.1\r\nhost: fake\r\naccept: application/json\r\nauthorization: Bearer raw\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("User-Agent"),
        "{answer}"
    );
    assert_single_failure(&fake, "no user-agent");

    let without_auth = ureq::get(&format!("{}/app", fake.base_url()))
        .set("user-agent", "ghplane-selftest")
        .set("accept", "application/vnd.github+json");
    let (status, answer) = outcome(without_auth.call());
    assert_eq!(
        (status, answer["message"].as_str()),
        (401, Some("Requires authentication"))
    );
    assert_single_failure(&fake, "no authorization");

    // ureq appends `x-` headers: this sends the right version and a wrong one.
    let (status, _) = outcome(
        conforming(&fake, "GET", "/app")
            .set("x-github-api-version", "2021-01-01")
            .call(),
    );
    assert_eq!(status, 400);
    assert_single_failure(&fake, "x-github-api-version");

    // GitHub serves these, so the answer is normal; only the record fails.
    let (status, _) = outcome(conforming(&fake, "GET", "/app").set("accept", "*/*").call());
    assert_eq!(status, 200);
    assert_single_failure(&fake, "accept");
    let (status, _) = outcome(
        conforming(&fake, "POST", "/app/installations/1/access_tokens")
            .set("content-type", "text/plain")
            .send_string("{}"),
    );
    assert_eq!(status, 201);
    assert_single_failure(&fake, "content-type");

    // The manifest conversion is the one call made before there are credentials.
    let manifest = ureq::post(&format!(
        "{}/app-manifests/code123/conversions",
        fake.base_url()
    ))
    .set("user-agent", "ghplane-selftest")
    .set("accept", "application/vnd.github+json");
    let (status, _) = outcome(manifest.call());
    assert_eq!(status, 201);
    fake.assert_conformant();
}

pub fn selftest_chunked_bodies_are_read() {
    let fake = FakeGithub::start();
    let body = r#"{"repositories":["a"]}"#;
    let (first, rest) = body.split_at(5);
    let request = format!(
        "POST /app/installations/1/access_tokens HTTP/1.1\r\nhost: fake\r\nuser-agent: raw\r\n\
         accept: application/vnd.github+json\r\nauthorization: Bearer raw\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x};ext=1\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
        first.len(),
        rest.len(),
    );
    let (status, answer) = raw_exchange(&fake, &request);
    assert_eq!(
        (status, answer["token"].as_str()),
        (201, Some(EXAMPLE_TOKEN))
    );
    assert_eq!(fake.requests()[0].body, body.as_bytes());
    fake.assert_conformant();
}

pub fn selftest_faults_apply_the_given_times() {
    let fake = FakeGithub::start();
    let error = Reply::json(502, json!({ "message": "Server Error" })).header("retry-after", "1");
    fake.fault(TOKEN_OPERATION, None, error, Some(1));
    assert_eq!(request_token(&fake, 1).0, 502);
    assert_eq!(request_token(&fake, 1).0, 201);

    fake.fault(
        TOKEN_OPERATION,
        Some("/app/installations/2/access_tokens"),
        Reply::json(404, json!({ "message": "Not Found" })),
        None,
    );
    assert_eq!(request_token(&fake, 1).0, 201);
    assert_eq!(request_token(&fake, 2).0, 404);
    assert_eq!(request_token(&fake, 2).0, 404);
    fake.clear_scripts();
    assert_eq!(request_token(&fake, 2).0, 201);
    fake.assert_conformant();
}

pub fn selftest_delays_do_not_block_others() {
    let fake = FakeGithub::start();
    // Long enough that the undelayed request is surely answered first on a loaded machine.
    let delay = Duration::from_secs(5);
    let slow_reply = Reply::json(201, json!({ "token": "slow" })).delay(delay);
    fake.fault(
        TOKEN_OPERATION,
        Some("/app/installations/1/access_tokens"),
        slow_reply,
        Some(1),
    );
    thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let started = Instant::now();
            (request_token(&fake, 1), started.elapsed())
        });
        wait_until(|| fake.requests().len() == 1);
        let (status, answer) = request_token(&fake, 2);
        assert_eq!(
            (status, answer["token"].as_str()),
            (201, Some(EXAMPLE_TOKEN))
        );
        assert!(
            !slow.is_finished(),
            "the delayed reply came before the undelayed one"
        );
        let ((status, answer), elapsed) = slow.join().expect("the slow client");
        assert_eq!((status, answer["token"].as_str()), (201, Some("slow")));
        assert!(elapsed >= delay, "answered after {elapsed:?}");
    });
    fake.assert_conformant();
}

pub fn selftest_dropped_connections_fail_the_client() {
    let fake = FakeGithub::start();
    fake.fault(TOKEN_OPERATION, None, Reply::dropped(), Some(1));
    let result =
        conforming(&fake, "POST", "/app/installations/1/access_tokens").send_json(json!({}));
    let result = status_or_transport_error(result);
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(request_token(&fake, 1).0, 201);
    assert_eq!(fake.requests_for(TOKEN_OPERATION).len(), 2);
    fake.assert_conformant();
}

pub fn selftest_handlers_answer_dynamically() {
    let fake = FakeGithub::start();
    let minted = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&minted);
    fake.handle(TOKEN_OPERATION, move |request| {
        if request.path.contains("/2/") {
            return None;
        }
        let mut count = counter.lock().unwrap_or_else(PoisonError::into_inner);
        *count += 1;
        Some(Reply::json(
            201,
            json!({ "token": format!("ghs_minted_{count}"), "expires_at": "2099-01-01T00:00:00Z" }),
        ))
    });
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_1");
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_2");
    assert_eq!(request_token(&fake, 2).1["token"], EXAMPLE_TOKEN);
    fake.fault(TOKEN_OPERATION, None, Reply::json(500, json!({})), Some(1));
    assert_eq!(request_token(&fake, 1).0, 500);
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_3");
    assert_eq!(*minted.lock().unwrap_or_else(PoisonError::into_inner), 3);
    fake.assert_conformant();
}

pub fn selftest_drop_stops_the_server() {
    let fake = FakeGithub::start();
    fake.fault(
        TOKEN_OPERATION,
        None,
        Reply::json(201, json!({})).delay(Duration::from_secs(60)),
        None,
    );
    let stuck = conforming(&fake, "POST", "/app/installations/1/access_tokens");
    let client = thread::spawn(move || status_or_transport_error(stuck.send_json(json!({}))));
    let _idle = TcpStream::connect(fake.addr).expect("connecting");
    wait_until(|| fake.requests().len() == 1);

    let started = Instant::now();
    drop(fake);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        started.elapsed()
    );
    let result = client.join().expect("the stuck client");
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    // Not checked: that connecting to the old port now fails. Self-tests running in parallel
    // bind port 0 too, and may be given that port again.
}

pub fn selftest_schema_validation() {
    use schema::{validate, validate_with_root};

    let one_of = json!({ "oneOf": [{ "type": "string" }, { "type": "number" }] });
    assert!(validate(&one_of, &json!("0")).is_empty());
    assert!(validate(&one_of, &json!(1)).is_empty());
    let errors = validate(&one_of, &json!(true));
    assert!(
        errors.len() == 1 && errors[0].starts_with("$: matches none of oneOf"),
        "{errors:?}"
    );
    // Every integer is a number too, so this oneOf is ambiguous for 1.
    let overlapping = json!({ "oneOf": [{ "type": "integer" }, { "type": "number" }] });
    assert_eq!(
        validate(&overlapping, &json!(1)),
        ["$: matches 2 branches of oneOf, expected exactly one"]
    );
    assert!(validate(&overlapping, &json!(1.5)).is_empty());
    assert!(validate(
        &json!({ "anyOf": [{ "type": "integer" }, { "type": "number" }] }),
        &json!(1)
    )
    .is_empty());
    assert_eq!(
        validate(
            &json!({ "allOf": [{ "minimum": 2 }, { "const": 3 }] }),
            &json!(1)
        ),
        ["$: expected at least 2, got 1", "$: expected 3, got 1"]
    );

    assert!(validate(&json!({ "type": "string", "nullable": true }), &Value::Null).is_empty());
    assert!(validate(&json!({ "type": ["string", "null"] }), &Value::Null).is_empty());
    assert_eq!(
        validate(&json!({ "type": "string" }), &Value::Null),
        ["$: expected type string, got null"]
    );

    let closed =
        json!({ "properties": { "a": { "type": "string" } }, "additionalProperties": false });
    assert_eq!(
        validate(&closed, &json!({ "a": "x", "b-c": 1 })),
        [r#"$["b-c"]: property is not allowed here"#]
    );
    let typed = json!({ "additionalProperties": { "type": "integer" } });
    assert_eq!(
        validate(&typed, &json!({ "n": 1, "m": "x" })),
        ["$.m: expected type integer, got string"]
    );
    assert_eq!(
        validate(&json!({ "enum": ["read", "write"] }), &json!("admin")),
        [r#"$: expected one of ["read","write"], got "admin""#]
    );

    let root = json!({ "components": { "schemas": {
        "Slug": { "type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "minLength": 2, "maxLength": 5 },
        "Page": { "type": "object", "required": ["items"], "properties": {
            "items": { "type": "array", "maxItems": 3, "items": { "$ref": "#/components/schemas/Slug" } },
            "count": { "type": "integer", "minimum": 0, "maximum": 10 },
        } },
    } } });
    let page = json!({ "$ref": "#/components/schemas/Page" });
    assert!(validate_with_root(&root, &page, &json!({ "items": ["ab-c"], "count": 3 })).is_empty());
    let errors = validate_with_root(
        &root,
        &page,
        &json!({ "items": ["Ab", "toolong", "x", "a"], "count": 11 }),
    );
    let expected = [
        "$.count: expected at most 10, got 11",
        "$.items: expected at most 3 items, got 4",
        r#"$.items[0]: "Ab" does not match pattern "^[a-z0-9]+(-[a-z0-9]+)*$""#,
        "$.items[1]: expected at most 5 characters, got 7",
        "$.items[2]: expected at least 2 characters, got 1",
        "$.items[3]: expected at least 2 characters, got 1",
    ];
    assert_eq!(errors, expected);
    assert_eq!(
        validate_with_root(&root, &page, &json!({})),
        [r#"$: missing required property "items""#]
    );
    assert_eq!(
        validate(&page, &json!({})),
        [r##"$: cannot resolve $ref "#/components/schemas/Page""##]
    );

    let matches = |pattern: &str, text: &str| {
        validate(&json!({ "pattern": pattern }), &json!(text)).is_empty()
    };
    assert!(matches(r"^\d{3}-\d{4}$", "555-1234") && !matches(r"^\d{3}-\d{4}$", "5555-1234"));
    assert!(matches("colou?r", "my colour!") && !matches("^colou?r$", "my color"));
    assert!(matches("^(a|bc)+$", "abca") && !matches("^(a|bc)+$", "abd"));
    assert!(
        matches(r"^[^/\s]+/[\w.-]{1,100}$", "octo/hello.world")
            && !matches(r"^[^/\s]+/[\w.-]+$", "a b/c")
    );
    assert!(matches("^(a*)*$", "aaaa") && !matches("^(a*)*b$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"));
    // Syntax beyond the supported subset is ignored, never a false failure.
    assert!(matches(r"^(?=x)\bq", "anything"));

    // The fixture's own schemas, as GitHub would apply them.
    let webhook = &operations()
        .iter()
        .find(|operation| operation.id == "repos/create-webhook")
        .and_then(|operation| operation.request_body.clone())
        .expect("create-webhook takes a body");
    assert!(validate(
        webhook,
        &json!({ "config": { "url": "https://x", "insecure_ssl": 0 }, "events": ["push"] })
    )
    .is_empty());
    assert_eq!(
        validate(webhook, &json!({ "nope": 1 })),
        ["$.nope: property is not allowed here"]
    );
}

fn conforming(fake: &FakeGithub, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}{path}", fake.base_url()))
        .set("user-agent", "ghplane-selftest")
        .set("accept", "application/vnd.github+json")
        .set("x-github-api-version", API_VERSION)
        .set("authorization", "Bearer selftest")
}

fn request_token(fake: &FakeGithub, installation: u32) -> (u16, Value) {
    let path = format!("/app/installations/{installation}/access_tokens");
    outcome(
        conforming(fake, "POST", &path).send_json(json!({ "permissions": { "contents": "read" } })),
    )
}

/// Status and JSON body (`Null` when empty) of any HTTP answer; panics on a
/// transport error.
fn outcome(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("transport error: {error}"),
    };
    let status = response.status();
    let text = response.into_string().expect("reading the body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error} in {text:?}"))
    };
    (status, body)
}

/// The status of an HTTP answer, or the error when there was none.
fn status_or_transport_error(result: Result<ureq::Response, ureq::Error>) -> Result<u16, String> {
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(response.status()),
        Err(error) => Err(error.to_string()),
    }
}

/// Sends bytes no HTTP client library would (no user-agent, chunks of our
/// choosing); `request` must ask for `connection: close`.
fn raw_exchange(fake: &FakeGithub, request: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(fake.addr).expect("connecting");
    stream.write_all(request.as_bytes()).expect("sending");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receiving");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[track_caller]
fn assert_single_failure(fake: &FakeGithub, reason: &str) {
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains(reason),
        "expected one {reason:?} failure: {failures:?}"
    );
}

#[track_caller]
fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        thread::sleep(Duration::from_millis(10));
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
