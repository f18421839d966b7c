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
//! **One override:** [`FakeGithub::on`] (`Match`, `Respond`, `Times`) scripts any answer: a
//! REST operation's, a github.com page's or an extension's; [`Match`] states the one
//! precedence rule and the one label scheme of the request log.
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

    /// Scripts an answer: the next `times` requests that `on` matches get what `respond` gives
    /// instead of the fake's own answer. The one override of the fake; see [`Match`] for what
    /// a script can match and the precedence rule.
    pub fn on(&self, on: Match, respond: impl Into<Respond>, times: Times) {
        let remaining = match times {
            Times::Once => Some(1),
            Times::N(0) => return,
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        self.shared.state().scripts.push(Script {
            on,
            respond: respond.into(),
            remaining,
        });
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

    /// Removes every script (of every kind of [`Match`]); recorded requests and failures stay.
    pub fn clear_scripts(&self) {
        self.shared.state().scripts.clear();
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
    /// Oldest first; answered newest first.
    scripts: Vec<Script>,
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

/// Which requests a script of [`FakeGithub::on`] answers.
///
/// **Precedence, one rule:** of the live scripts that match a request, the **newest** answers
/// (a test's script wins over a setup's); one whose [`Respond`] passes (`None`) hands the
/// request to the next older one, and when none answers the fake answers as GitHub would.
/// A request is matched against the kinds in the order it is routed:
/// 1. [`Match::Web`] and [`Match::Extra`] scripts: routes outside the REST description,
///    answered without GitHub's checks;
/// 2. the built-in github.com OAuth web routes ([`WEB_AUTHORIZE`], [`WEB_ACCESS_TOKEN`]);
/// 3. the REST operation the method and path route to: GitHub's checks first (a request
///    GitHub would refuse gets GitHub's refusal, never a script), then [`Match::Operation`]
///    scripts, then the fake's answer (GitHub's example, or the OAuth user of `GET /user`).
///    Every answer of an operation is GitHub's conditional GET when it documents `304`.
///
/// **Log label, one scheme:** a request is recorded ([`RecordedRequest::operation`],
/// [`FakeGithub::requests_for`]) under [`Match::label`] of what routed it: the operation id,
/// `web:<METHOD> <template>` or `x:<METHOD> <path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// A REST operation of GitHub's description by `operationId`; with a path, only requests
    /// to exactly that path (query ignored).
    Operation(String, Option<String>),
    /// A route of GitHub's web side outside the REST description (the App Manifest form at
    /// `POST /settings/apps/new`): method and path template (`{name}` is one segment).
    Web(String, String),
    /// An extension outside GitHub (an OIDC issuer, the Actions ID-token endpoint): method
    /// and exact path (query ignored).
    Extra(String, String),
}

impl Match {
    /// Every request of a REST operation.
    #[track_caller]
    pub fn operation(id: &str) -> Match {
        assert_known_operation(id);
        Match::Operation(id.to_owned(), None)
    }

    /// The requests of a REST operation to exactly `path` (a test's own installation or
    /// repository, so that parallel tests do not see each other's scripts).
    #[track_caller]
    pub fn operation_at(id: &str, path: &str) -> Match {
        assert_known_operation(id);
        Match::Operation(id.to_owned(), Some(path.to_owned()))
    }

    pub fn web(method: &str, template: &str) -> Match {
        Match::Web(method.to_owned(), template.to_owned())
    }

    pub fn extra(method: &str, path: &str) -> Match {
        Match::Extra(method.to_owned(), path.to_owned())
    }

    /// What requests it routes are recorded as (see the precedence rule above).
    pub fn label(&self) -> String {
        match self {
            Match::Operation(id, _) => id.clone(),
            Match::Web(method, template) => format!("web:{method} {template}"),
            Match::Extra(method, path) => format!("x:{method} {path}"),
        }
    }

    /// A route outside the REST description that `request` is to.
    fn routes(&self, request: &RecordedRequest) -> bool {
        match self {
            Match::Operation(..) => false,
            Match::Web(method, template) => {
                method.eq_ignore_ascii_case(&request.method) && web_matches(template, &request.path)
            }
            Match::Extra(method, path) => {
                method.eq_ignore_ascii_case(&request.method) && *path == request.path
            }
        }
    }

    fn is_operation(&self, id: &str, path: &str) -> bool {
        matches!(self, Match::Operation(op, at) if op == id && at.as_deref().is_none_or(|p| p == path))
    }
}

type Answer = dyn Fn(&RecordedRequest) -> Result<Option<Reply>, String> + Send + Sync;

/// What a script answers (see [`FakeGithub::on`]); a [`Reply`] converts into one.
#[derive(Clone)]
pub struct Respond(Arc<Answer>);

impl Respond {
    /// The same reply every time.
    pub fn reply(reply: Reply) -> Respond {
        Respond(Arc::new(move |_| Ok(Some(reply.clone()))))
    }

    /// Computed from the request; `None` passes it on (to older scripts, then the fake).
    pub fn with(f: impl Fn(&RecordedRequest) -> Option<Reply> + Send + Sync + 'static) -> Respond {
        Respond(Arc::new(move |request| Ok(f(request))))
    }

    /// Computed; `Err(reason)` is a request GitHub would refuse: kept as a conformance
    /// failure and answered `422 {"message": reason}`.
    pub fn checked(
        f: impl Fn(&RecordedRequest) -> Result<Reply, String> + Send + Sync + 'static,
    ) -> Respond {
        Respond(Arc::new(move |request| f(request).map(Some)))
    }

    /// These replies, one per request, in order; then it passes.
    pub fn in_turn(replies: impl IntoIterator<Item = Reply>) -> Respond {
        let queue = Mutex::new(
            replies
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        );
        Respond(Arc::new(move |_| {
            Ok(queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front())
        }))
    }
}

impl From<Reply> for Respond {
    fn from(reply: Reply) -> Respond {
        Respond::reply(reply)
    }
}

/// How many requests a script answers before it is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    Once,
    N(usize),
    /// Until [`FakeGithub::clear_scripts`].
    Always,
}

struct Script {
    on: Match,
    respond: Respond,
    /// Uses left (`None`: no limit); a script at `Some(0)` is removed once its last answer
    /// is out.
    remaining: Option<usize>,
}

impl Shared {
    fn answer(&self, mut request: RecordedRequest) -> Reply {
        if let Some((label, reply)) = self.scripted(&request, |on| on.routes(&request)) {
            request.operation = Some(label);
            self.state().requests.push(request);
            return reply;
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
        let reply =
            match self.scripted(&request, |on| on.is_operation(&operation.id, &request.path)) {
                Some((_, reply)) => reply,
                None => self
                    .web_token_answer(operation, &request)
                    .unwrap_or_else(|| operation.example()),
            };
        conditional(operation, &request, reply)
    }

    /// The answer of the newest live script that `matches` and does not pass, with the label
    /// of what it matched. A script's use is counted before it runs (so two requests at once
    /// cannot both take a script's last use) and given back when it passes; scripts run
    /// without the lock held (they may be slow or look at the fake).
    fn scripted(
        &self,
        request: &RecordedRequest,
        matches: impl Fn(&Match) -> bool,
    ) -> Option<(String, Reply)> {
        let candidates: Vec<(Match, Respond)> = self
            .state()
            .scripts
            .iter()
            .rev()
            .filter(|script| matches(&script.on))
            .map(|script| (script.on.clone(), script.respond.clone()))
            .collect();
        for (on, respond) in candidates {
            if !self.count_use(&respond, -1) {
                continue;
            }
            let reply = match (respond.0)(request) {
                Ok(None) => {
                    self.count_use(&respond, 1);
                    continue;
                }
                Ok(Some(reply)) => reply,
                Err(reason) => {
                    self.state().failures.push(format!(
                        "{} ({} {}): {reason}",
                        on.label(),
                        request.method,
                        request.path
                    ));
                    Reply::json(422, json!({ "message": reason }))
                }
            };
            let mut state = self.state();
            state.scripts.retain(|script| script.remaining != Some(0));
            return Some((on.label(), reply));
        }
        None
    }

    /// Takes (`-1`) or gives back (`1`) one use of the script `respond` belongs to; false when
    /// it has none left (or was cleared meanwhile).
    fn count_use(&self, respond: &Respond, delta: isize) -> bool {
        let mut state = self.state();
        let Some(script) = state
            .scripts
            .iter_mut()
            .find(|script| Arc::ptr_eq(&script.respond.0, &respond.0))
        else {
            return false;
        };
        match &mut script.remaining {
            None => true,
            Some(0) if delta < 0 => false,
            Some(n) => {
                *n = n.saturating_add_signed(delta);
                true
            }
        }
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
