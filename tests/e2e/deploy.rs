//! Push to deploy: GitHub sources on projects, one deployment per burst of pushes, the
//! signed deploy job, single-use credentials tickets and status reports, against the fake
//! GitHub and a fake deployer (a small HTTP server of each test's own).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ghplane_core::deploy::{report_signature, verify_signature, DeploymentRef};
use ghplane_core::projects::ProjectSlug;
use serde_json::{json, Value};

use crate::api::Resp;
use crate::fake_github::{Match, RecordedRequest, Times};
use crate::github_handlers::{github_repo, installation_of, set_installation_repos};
use crate::identity::{register_app, APP_WEBHOOK_SECRET};
use crate::webhooks::{delivery_id, fixture, installation_created, post, post_json};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    vars: |_| {
        vec![
            (
                "DEPLOY_DEBOUNCE_SECONDS".into(),
                DEBOUNCE_SECONDS.to_string(),
            ),
            ("DEPLOY_TIMEOUT_SECONDS".into(), TIMEOUT_SECONDS.to_string()),
            (
                "DEPLOY_TICKET_TTL_SECONDS".into(),
                TICKET_TTL_SECONDS.to_string(),
            ),
        ]
    },
    // Deploy credentials tickets and hook secrets.
    never_logged: &["ghpdt_", "ghpdh_"],
    never_logged_seen: || HOOK_SECRETS.lock().unwrap().clone(),
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "deploy::a_source_is_resolved_by_id_through_the_installation",
        a_source_is_resolved_by_id_through_the_installation,
    ),
    (
        "deploy::five_pushes_in_the_window_deploy_once_with_the_last_sha",
        five_pushes_in_the_window_deploy_once_with_the_last_sha,
    ),
    (
        "deploy::other_branches_tags_and_deletions_deploy_nothing_and_say_why",
        other_branches_tags_and_deletions_deploy_nothing_and_say_why,
    ),
    (
        "deploy::pushes_while_running_make_one_follow_up_with_the_newest_sha",
        pushes_while_running_make_one_follow_up_with_the_newest_sha,
    ),
    (
        "deploy::a_renamed_repo_still_deploys_under_its_new_name",
        a_renamed_repo_still_deploys_under_its_new_name,
    ),
    (
        "deploy::credentials_tickets_are_single_use_scoped_and_expire",
        credentials_tickets_are_single_use_scoped_and_expire,
    ),
    (
        "deploy::a_ticket_is_given_back_when_no_token_came_and_works_once_under_a_race",
        a_ticket_is_given_back_when_no_token_came_and_works_once_under_a_race,
    ),
    (
        "deploy::a_silent_deployer_times_out_and_the_next_push_deploys",
        a_silent_deployer_times_out_and_the_next_push_deploys,
    ),
    (
        "deploy::two_projects_on_two_branches_of_one_repo",
        two_projects_on_two_branches_of_one_repo,
    ),
    (
        "deploy::a_failing_hook_is_retried_then_failed_keeping_the_follow_up",
        a_failing_hook_is_retried_then_failed_keeping_the_follow_up,
    ),
    (
        "deploy::a_redeploy_deploys_the_branch_head_again_for_admins_only",
        a_redeploy_deploys_the_branch_head_again_for_admins_only,
    ),
];

/// `DEPLOY_DEBOUNCE_SECONDS` and `DEPLOY_TIMEOUT_SECONDS` of the shared worker. The window
/// is wide enough that a burst of pushes from one test thread stays inside it on a loaded
/// 2-core machine.
pub const DEBOUNCE_SECONDS: u64 = 5;
pub const TIMEOUT_SECONDS: u64 = 10;
/// `DEPLOY_TICKET_TTL_SECONDS` of the shared worker: long enough for every redemption the
/// tests make, short enough to watch one expire.
pub const TICKET_TTL_SECONDS: u64 = 30;

/// Hook secrets handed out during the run: none may show up in a log line.
pub static HOOK_SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

// ---------------------------------------------------------------------------------------
// The fake deployer.

pub struct HookCall {
    pub signature: String,
    pub body: Vec<u8>,
}

impl HookCall {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the job is JSON")
    }

    #[track_caller]
    fn assert_signed_with(&self, secret: &str) {
        assert!(
            verify_signature(secret.as_bytes(), &self.body, &self.signature),
            "the job's X-Ghplane-Signature-256 does not verify with the project's hook secret"
        );
    }
}

#[derive(Default)]
struct DeployerState {
    calls: Vec<HookCall>,
    /// Scripted answers (status, delay); 200 at once when none is left.
    replies: VecDeque<(u16, Duration)>,
}

pub(crate) struct Deployer {
    addr: SocketAddr,
    state: Arc<Mutex<DeployerState>>,
    stop: Arc<AtomicBool>,
    /// The count the last `stays_at` settled on, checked again when the test ends: a late
    /// duplicate dispatch after the quiet window would otherwise pass unseen.
    settled: Mutex<Option<usize>>,
}

impl Deployer {
    pub(crate) fn start() -> Deployer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("deployer: bind");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(DeployerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                thread::spawn(move || serve(stream, &st));
            }
        });
        Deployer {
            addr,
            state,
            stop,
            settled: Mutex::new(None),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.addr.port())
    }

    pub(crate) fn reply_with(&self, replies: &[(u16, u64)]) {
        self.state.lock().unwrap().replies = replies
            .iter()
            .map(|(s, ms)| (*s, Duration::from_millis(*ms)))
            .collect();
    }

    pub(crate) fn count(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    pub(crate) fn call(&self, n: usize) -> HookCall {
        let st = self.state.lock().unwrap();
        let c = &st.calls[n];
        HookCall {
            signature: c.signature.clone(),
            body: c.body.clone(),
        }
    }

    /// Waits until `n` jobs arrived.
    #[track_caller]
    pub(crate) fn wait_for(&self, n: usize, within: Duration) {
        *self.settled.lock().unwrap() = None;
        let deadline = Instant::now() + within;
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "the deployer got {} job(s), expected {n} within {within:?}",
                self.count()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stays at `n` jobs for `during`.
    #[track_caller]
    pub(crate) fn stays_at(&self, n: usize, during: Duration) {
        thread::sleep(during);
        assert_eq!(self.count(), n, "jobs delivered");
        *self.settled.lock().unwrap() = Some(n);
    }
}

impl Drop for Deployer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let (Some(n), false) = (*self.settled.lock().unwrap(), thread::panicking()) {
            assert_eq!(self.count(), n, "jobs delivered after the test settled");
        }
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<DeployerState>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = HashMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (status, delay) = {
        let mut st = state.lock().unwrap();
        st.calls.push(HookCall {
            signature: headers
                .get("x-ghplane-signature-256")
                .cloned()
                .unwrap_or_default(),
            body,
        });
        st.replies.pop_front().unwrap_or((200, Duration::ZERO))
    };
    thread::sleep(delay);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------
// Helpers.

pub(crate) struct Tenant {
    pub app: u64,
    pub installation: u64,
    pub repo_id: u64,
    pub full_name: String,
}

impl Tenant {
    fn name(&self) -> &str {
        self.full_name.split('/').nth(1).unwrap()
    }
}

/// A fresh app and installation (created by its webhook), reaching one fresh repository.
pub(crate) fn tenant(s: &Shared) -> Tenant {
    let app = unique_id();
    register_app(&s.api, app);
    let installation = unique_id();
    let repo_id = unique_id();
    let full_name = format!("tenant-{installation}/app-{repo_id}");
    let r = post_json(
        &s.api,
        app,
        "installation",
        &installation_created(app, installation, &[(repo_id, &full_name)]),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    set_installation_repos(
        installation,
        vec![github_repo(repo_id, &full_name, &format!("R_{repo_id}"))],
    );
    Tenant {
        app,
        installation,
        repo_id,
        full_name,
    }
}

/// A new project whose slug starts with `prefix` (a source links only to a project).
pub(crate) fn slug(s: &Shared, prefix: &str) -> String {
    let r = s.api.admin(
        "POST",
        "/projects",
        Some(&json!({"name": format!("{prefix}{}", unique_id())})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    assert!(slug.starts_with(prefix), "{slug}");
    slug
}

pub(crate) fn new_sha() -> String {
    format!("{:040x}", unique_id() * 7919)
}

fn source_body(t: &Tenant, branch: &str, hook: Option<&str>) -> Value {
    json!({"installationId": t.installation, "repoId": t.repo_id, "branch": branch, "deployHookUrl": hook})
}

/// Links `slug` to `branch` of the tenant's repository; returns the hook secret.
pub(crate) fn link(s: &Shared, t: &Tenant, slug: &str, branch: &str, hook: &str) -> String {
    let r = s.api.admin(
        "PUT",
        &format!("/projects/{slug}/source"),
        Some(&source_body(t, branch, Some(hook))),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["hookSecret"].as_str().unwrap().to_owned();
    HOOK_SECRETS.lock().unwrap().push(secret.clone());
    secret
}

/// A signed push of `t`'s repository (named `full_name`) through `installation`.
pub(crate) fn push_as(
    s: &Shared,
    t: &Tenant,
    installation: u64,
    repo_id: u64,
    git_ref: &str,
    after: &str,
) -> (String, Resp) {
    let deleted = after.bytes().all(|b| b == b'0');
    let mut body = fixture("push", "with-new-branch.payload.json");
    body["ref"] = json!(git_ref);
    body["after"] = json!(after);
    body["created"] = json!(false);
    body["deleted"] = json!(deleted);
    body["installation"] = json!({"id": installation});
    body["repository"]["id"] = json!(repo_id);
    body["repository"]["full_name"] = json!(t.full_name);
    body["pusher"]["name"] = json!("octo-pusher");
    if deleted {
        body["head_commit"] = Value::Null;
    } else {
        body["head_commit"]["id"] = json!(after);
        body["head_commit"]["message"] = json!(format!("commit {}", &after[32..]));
    }
    let delivery = delivery_id();
    let r = post(
        &s.api,
        t.app,
        APP_WEBHOOK_SECRET,
        "push",
        &delivery,
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    (delivery, r)
}

pub(crate) fn push(s: &Shared, t: &Tenant, branch: &str, after: &str) -> (String, Resp) {
    push_as(
        s,
        t,
        t.installation,
        t.repo_id,
        &format!("refs/heads/{branch}"),
        after,
    )
}

/// A status report signed as `docs/deploy-signing.md` says, at the current time.
pub fn report(s: &Shared, slug: &str, number: u64, secret: &str, state: &str) -> Resp {
    let body = json!({"state": state}).to_string();
    let timestamp = unix_now().to_string();
    let sig = report_signature(
        secret.as_bytes(),
        &timestamp,
        &deployment_ref(slug, number),
        body.as_bytes(),
    );
    send_report(s, &format!("{slug}.{number}"), &timestamp, &sig, &body)
}

/// Posts a report to `/api/deployments/{target}/status` exactly as given (a deployer's
/// captured request can be replayed this way).
pub fn send_report(s: &Shared, target: &str, timestamp: &str, sig: &str, body: &str) -> Resp {
    s.api.send(
        "POST",
        &format!("/api/deployments/{target}/status"),
        &[
            ("content-type", "application/json"),
            ("x-ghplane-timestamp", timestamp),
            ("x-ghplane-signature-256", sig),
        ],
        Some(body.as_bytes()),
    )
}

pub fn deployment_ref(slug: &str, number: u64) -> DeploymentRef {
    DeploymentRef {
        project: ProjectSlug::parse(slug).expect("a project slug"),
        number,
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

pub(crate) fn deployments(s: &Shared, slug: &str) -> Value {
    let r = s
        .api
        .admin("GET", &format!("/projects/{slug}/deployments"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

pub(crate) fn github_deployments(s: &Shared, full_name: &str) -> Vec<RecordedRequest> {
    let path = format!("/repos/{full_name}/deployments");
    s.fake
        .requests_for("repos/create-deployment")
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// The states mirrored to GitHub for one GitHub deployment, in order.
pub(crate) fn mirrored(s: &Shared, full_name: &str, github_id: u64) -> Vec<String> {
    let path = format!("/repos/{full_name}/deployments/{github_id}/statuses");
    s.fake
        .requests_for("repos/create-deployment-status")
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.json()["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[track_caller]
pub(crate) fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// The delivery log's reason for each delivery id.
pub(crate) fn reasons(s: &Shared, installation: u64) -> HashMap<String, (String, String)> {
    let r = s.api.admin(
        "GET",
        &format!("/api/installations/{installation}/deliveries?limit=100"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                (
                    d["outcome"].as_str().unwrap_or_default().to_owned(),
                    d["reason"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

fn path_of(url: &str) -> &str {
    &url[url.find("/api/").expect("an /api/ URL")..]
}

fn redeem(s: &Shared, path: &str, ticket: Option<&str>) -> Resp {
    let auth = ticket.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    s.api.send("POST", path, &headers, None)
}

pub(crate) fn window() -> Duration {
    Duration::from_secs(DEBOUNCE_SECONDS + 2)
}

pub(crate) fn soon() -> Duration {
    Duration::from_secs(DEBOUNCE_SECONDS + 15)
}

// ---------------------------------------------------------------------------------------
// Tests.

fn a_source_is_resolved_by_id_through_the_installation(s: &Shared) {
    let t = tenant(s);
    let p = slug(s, "src-");
    let put = |body: &Value| {
        s.api
            .admin("PUT", &format!("/projects/{p}/source"), Some(body))
    };
    let get = || s.api.admin("GET", &format!("/projects/{p}/source"), None);

    // A repository the installation's token does not reach: 422, nothing stored.
    let mut other = source_body(&t, "main", None);
    other["repoId"] = json!(unique_id());
    let r = put(&other);
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "source_repo_unreachable"),
        "{}",
        r.text()
    );
    let mut unknown = source_body(&t, "main", None);
    unknown["installationId"] = json!(unique_id());
    let r = put(&unknown);
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "source_installation_unknown")
    );
    assert_eq!(
        (get().status, get().code().as_str()),
        (404, "source_not_linked")
    );
    // Bad input never reaches GitHub.
    let r = put(&json!({"installationId": t.installation, "repoId": t.repo_id, "branch": "a..b"}));
    assert_eq!((r.status, r.code().as_str()), (400, "validation_failed"));
    let r = put(
        &json!({"installationId": t.installation, "repoId": t.repo_id, "branch": "main", "deployHookUrl": "http://example.com/"}),
    );
    assert_eq!(r.status, 400);
    let r = s.api.admin(
        "PUT",
        "/projects/Not_A_Slug/source",
        Some(&source_body(&t, "main", None)),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_id"));
    // A project that does not exist gets no source.
    let missing = format!("no-such-project-{}", unique_id());
    let r = s.api.admin(
        "PUT",
        &format!("/projects/{missing}/source"),
        Some(&source_body(&t, "main", None)),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "project_not_found"),
        "{}",
        r.text()
    );
    let r = s
        .api
        .admin("GET", &format!("/projects/{missing}/source"), None);
    assert_eq!((r.status, r.code().as_str()), (404, "project_not_found"));

    // Linked: ids and the current name stored, the secret shown once.
    let r = put(&source_body(&t, "main", None));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["repoId"], t.repo_id);
    assert_eq!(v["nodeId"], format!("R_{}", t.repo_id));
    assert_eq!(v["fullName"], t.full_name);
    assert_eq!(v["branch"], "main");
    assert_eq!(v["installationId"], t.installation);
    let secret = v["hookSecret"].as_str().unwrap().to_owned();
    HOOK_SECRETS.lock().unwrap().push(secret.clone());
    assert!(secret.starts_with("ghpdh_"));
    let g = get();
    assert_eq!(g.status, 200);
    assert!(g.json().get("hookSecret").is_none());
    assert_eq!(g.json()["fullName"], t.full_name);
    let r = put(&source_body(&t, "release", None));
    assert_eq!(r.status, 200);
    assert!(r.json().get("hookSecret").is_none());
    assert_eq!(get().json()["branch"], "release");

    // Unlinked: the index forgets it too, so a push finds no project.
    let r = s
        .api
        .admin("DELETE", &format!("/projects/{p}/source"), None);
    assert_eq!(r.status, 204);
    assert_eq!(get().status, 404);
    let r = s
        .api
        .admin("DELETE", &format!("/projects/{p}/source"), None);
    assert_eq!((r.status, r.code().as_str()), (404, "source_not_linked"));
    let (_, r) = push(s, &t, "release", &new_sha());
    assert_eq!(r.json()["reason"], "no_linked_project", "{}", r.text());
    assert_eq!(
        deployments(s, &p),
        json!({"deployments": [], "running": null, "pending": null, "jobs": []})
    );
}

fn five_pushes_in_the_window_deploy_once_with_the_last_sha(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "burst-");
    let secret = link(s, &t, &p, "main", &d.url());
    let shas: Vec<String> = (0..5).map(|_| new_sha()).collect();
    let mut last = (String::new(), String::new());
    for sha in &shas {
        let (delivery, r) = push(s, &t, "main", sha);
        assert_eq!(r.json()["status"], "accepted", "{}", r.text());
        last = (delivery, sha.clone());
    }
    let pending = deployments(s, &p);
    assert_eq!(pending["pending"]["sha"], shas[4]);
    // A redelivery of the last push is a duplicate.
    let dup = {
        let mut body = fixture("push", "with-new-branch.payload.json");
        body["installation"] = json!({"id": t.installation});
        body["repository"]["id"] = json!(t.repo_id);
        post(
            &s.api,
            t.app,
            APP_WEBHOOK_SECRET,
            "push",
            &last.0,
            &serde_json::to_vec(&body).unwrap(),
        )
    };
    assert_eq!(dup.json()["status"], "duplicate");

    d.wait_for(1, soon());
    d.stays_at(1, window());
    let call = d.call(0);
    call.assert_signed_with(&secret);
    let job = call.json();
    assert_eq!(job["type"], "ghplane.deploy");
    assert_eq!(job["project"], p);
    assert_eq!(job["deployment"]["id"], 1);
    assert_eq!(job["deployment"]["sha"], shas[4]);
    assert_eq!(job["deployment"]["ref"], "refs/heads/main");
    assert_eq!(job["deployment"]["trigger"]["deliveryId"], last.0);
    assert_eq!(job["deployment"]["trigger"]["pusher"], "octo-pusher");
    assert_eq!(job["repository"]["id"], t.repo_id);
    assert_eq!(job["repository"]["fullName"], t.full_name);
    let github_id = job["deployment"]["githubDeploymentId"].as_u64().unwrap();
    assert!(path_of(job["credentials"]["url"].as_str().unwrap())
        .ends_with(&format!("/api/deployments/{p}.1/credentials")));
    assert!(path_of(job["deployment"]["statusUrl"].as_str().unwrap())
        .ends_with(&format!("/api/deployments/{p}.1/status")));

    let gh = github_deployments(s, &t.full_name);
    assert_eq!(gh.len(), 1, "GitHub sees exactly one deployment");
    let created = gh[0].json();
    assert_eq!(created["ref"], shas[4]);
    assert_eq!(created["auto_merge"], false);
    assert_eq!(created["required_contexts"], json!([]));
    assert_eq!(created["environment"], s.worker.environment());

    let list = deployments(s, &p);
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(list["deployments"][0]["pushes"], 5);
    assert_eq!(list["running"], 1);

    // Reports are signed, mirrored to GitHub, and a final one frees the lock.
    let r = report(s, &p, 1, "wrong-secret", "success");
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_signature"));
    assert_eq!(report(s, &p, 1, &secret, "in_progress").status, 200);
    assert_eq!(report(s, &p, 1, &secret, "in_progress").status, 200);
    let r = report(s, &p, 1, &secret, "success");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deployment"]["state"], "success");
    let r = report(s, &p, 1, &secret, "failure");
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "deployment_not_running")
    );
    let r = report(s, &p, 9, &secret, "success");
    assert_eq!((r.status, r.code().as_str()), (404, "deployment_not_found"));
    eventually(Duration::from_secs(10), "statuses mirrored", || {
        mirrored(s, &t.full_name, github_id) == ["in_progress", "success"]
    });
    let list = deployments(s, &p);
    assert_eq!(list["running"], Value::Null);
    assert_eq!(list["deployments"][0]["outcome"], "succeeded");
}

fn other_branches_tags_and_deletions_deploy_nothing_and_say_why(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "skip-");
    link(s, &t, &p, "main", &d.url());
    // The same repository through another installation of the same app.
    let other = unique_id();
    let r = post_json(
        &s.api,
        t.app,
        "installation",
        &installation_created(t.app, other, &[(t.repo_id, &t.full_name)]),
    );
    assert_eq!(r.status, 202);

    let cases = [
        push(s, &t, "feature/x", &new_sha()),
        push_as(
            s,
            &t,
            t.installation,
            t.repo_id,
            "refs/tags/v1.0.0",
            &new_sha(),
        ),
        push(s, &t, "main", &"0".repeat(40)),
        push_as(
            s,
            &t,
            t.installation,
            unique_id(),
            "refs/heads/main",
            &new_sha(),
        ),
        push_as(s, &t, other, t.repo_id, "refs/heads/main", &new_sha()),
    ];
    let want = [
        "other_branch",
        "tag_push",
        "branch_deleted",
        "no_linked_project",
        "installation_mismatch",
    ];
    for ((_, r), reason) in cases.iter().zip(want) {
        assert_eq!(r.json()["status"], "ignored", "{}", r.text());
        assert_eq!(r.json()["reason"], reason);
    }
    let log = reasons(s, t.installation);
    for ((delivery, _), reason) in cases[..4].iter().zip(want) {
        assert_eq!(
            log[delivery],
            ("ignored".to_owned(), reason.to_owned()),
            "{delivery}"
        );
    }
    let log = reasons(s, other);
    assert_eq!(
        log[&cases[4].0],
        ("ignored".to_owned(), "installation_mismatch".to_owned())
    );
    d.stays_at(0, window());
    assert!(github_deployments(s, &t.full_name).is_empty());
    assert_eq!(deployments(s, &p)["deployments"], json!([]));
}

fn pushes_while_running_make_one_follow_up_with_the_newest_sha(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "follow-");
    let secret = link(s, &t, &p, "main", &d.url());
    let first = new_sha();
    push(s, &t, "main", &first);
    d.wait_for(1, soon());

    // One push while deployment 1 runs: it waits for the report.
    let second = new_sha();
    let (_, r) = push(s, &t, "main", &second);
    assert_eq!(r.json()["status"], "accepted");
    d.stays_at(1, window());
    assert_eq!(deployments(s, &p)["pending"]["sha"], second);
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
    d.wait_for(2, soon());
    let job = d.call(1).json();
    assert_eq!(
        (job["deployment"]["id"].as_u64(), &job["deployment"]["sha"]),
        (Some(2), &json!(second))
    );

    // Three pushes while deployment 2 runs: still one follow-up, with the newest sha.
    let more: Vec<String> = (0..3).map(|_| new_sha()).collect();
    for sha in &more {
        push(s, &t, "main", sha);
    }
    d.stays_at(2, window());
    assert_eq!(report(s, &p, 2, &secret, "success").status, 200);
    d.wait_for(3, soon());
    let job = d.call(2).json();
    assert_eq!(job["deployment"]["id"], 3);
    assert_eq!(job["deployment"]["sha"], more[2]);
    job["deployment"]["githubDeploymentId"].as_u64().unwrap();
    assert_eq!(report(s, &p, 3, &secret, "success").status, 200);
    d.stays_at(3, window());

    let list = deployments(s, &p);
    let ids: Vec<u64> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1], "newest first");
    assert_eq!(list["deployments"][0]["pushes"], 3);
    assert_eq!(list["deployments"][1]["sha"], second);
    assert_eq!(list["deployments"][2]["sha"], first);
    assert_eq!(github_deployments(s, &t.full_name).len(), 3);
}

fn a_renamed_repo_still_deploys_under_its_new_name(s: &Shared) {
    let mut t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "rename-");
    let secret = link(s, &t, &p, "main", &d.url());
    let old = t.full_name.clone();
    let new_name = format!("renamed-{}", unique_id());
    let new_full = format!("{}/{new_name}", old.split('/').next().unwrap());
    let mut body = fixture("repository", "renamed.payload.json");
    body["installation"] = json!({"id": t.installation});
    body["repository"]["id"] = json!(t.repo_id);
    body["repository"]["name"] = json!(new_name);
    body["repository"]["full_name"] = json!(new_full);
    body["changes"]["repository"]["name"]["from"] = json!(t.name());
    let r = post_json(&s.api, t.app, "repository", &body);
    assert_eq!(r.json()["status"], "accepted", "{}", r.text());
    let v = s
        .api
        .admin("GET", &format!("/projects/{p}/source"), None)
        .json();
    assert_eq!(
        (&v["fullName"], &v["repoId"], &v["branch"]),
        (&json!(new_full), &json!(t.repo_id), &json!("main"))
    );

    t.full_name = new_full.clone();
    let sha = new_sha();
    push(s, &t, "main", &sha);
    d.wait_for(1, soon());
    let call = d.call(0);
    call.assert_signed_with(&secret);
    let job = call.json();
    assert_eq!(job["repository"]["fullName"], new_full);
    assert_eq!(job["repository"]["id"], t.repo_id);
    assert_eq!(job["deployment"]["sha"], sha);
    assert_eq!(github_deployments(s, &new_full).len(), 1);
    assert!(github_deployments(s, &old).is_empty());
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
}

fn credentials_tickets_are_single_use_scoped_and_expire(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "creds-");
    let secret = link(s, &t, &p, "main", &d.url());
    push(s, &t, "main", &new_sha());
    d.wait_for(1, soon());
    let job = d.call(0).json();
    let ticket = job["credentials"]["ticket"].as_str().unwrap().to_owned();
    let url = path_of(job["credentials"]["url"].as_str().unwrap()).to_owned();
    assert_eq!(url, format!("/api/deployments/{p}.1/credentials"));

    assert_eq!(redeem(s, &url, None).code(), "unauthorized");
    let r = redeem(s, &url, Some(&ticket));
    assert_eq!(r.status, 200, "{}", r.text());
    let creds = r.json();
    let token = creds["token"].as_str().unwrap();
    assert_eq!(installation_of(token), Some(t.installation));
    assert_eq!(creds["repositories"], json!([t.full_name]));
    assert_eq!(creds["permissions"], json!({"contents": "read"}));
    // The fake GitHub minted it for exactly that repository, read-only.
    let minted: Vec<Value> = s
        .fake
        .requests_for("apps/create-installation-access-token")
        .into_iter()
        .filter(|r| r.path == format!("/app/installations/{}/access_tokens", t.installation))
        .map(|r| r.json())
        .collect();
    assert!(
        minted.contains(&json!({"repositories": [t.name()], "permissions": {"contents": "read"}})),
        "{minted:?}"
    );

    let r = redeem(s, &url, Some(&ticket));
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "ticket_already_redeemed")
    );
    let forged = format!("ghpdt_{}", "A".repeat(43));
    let r = redeem(s, &url, Some(&forged));
    assert_eq!((r.status, r.code().as_str()), (404, "ticket_unknown"));

    // Deployment 2's ticket is refused at deployment 1, then works at its own.
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
    push(s, &t, "main", &new_sha());
    d.wait_for(2, soon());
    let job2 = d.call(1).json();
    let ticket2 = job2["credentials"]["ticket"].as_str().unwrap().to_owned();
    let r = redeem(s, &url, Some(&ticket2));
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "ticket_wrong_deployment")
    );
    let url2 = path_of(job2["credentials"]["url"].as_str().unwrap()).to_owned();
    assert_eq!(redeem(s, &url2, Some(&ticket2)).status, 200);
    assert_eq!(report(s, &p, 2, &secret, "success").status, 200);

    // An expired ticket (tickets live `DEPLOY_TICKET_TTL_SECONDS`), and another project's.
    let d2 = Deployer::start();
    let short = slug(s, "expiring-");
    link(s, &t, &short, "release", &d2.url());
    push(s, &t, "release", &new_sha());
    d2.wait_for(1, soon());
    let job3 = d2.call(0).json();
    let ticket3 = job3["credentials"]["ticket"].as_str().unwrap().to_owned();
    let url3 = path_of(job3["credentials"]["url"].as_str().unwrap()).to_owned();
    let r = redeem(s, &url3, Some(&ticket2));
    assert_eq!((r.status, r.code().as_str()), (404, "ticket_unknown"));
    thread::sleep(Duration::from_secs(TICKET_TTL_SECONDS + 1));
    let r = redeem(s, &url3, Some(&ticket3));
    assert_eq!((r.status, r.code().as_str()), (410, "ticket_expired"));
    // No ticket, token or hook secret in any log line: the run-wide scan (main.rs) checks.
}

/// The ticket is used up before the token is asked for, and given back only when no token
/// came: GitHub refusing the token call leaves it usable; two redemptions at once get one
/// token between them.
fn a_ticket_is_given_back_when_no_token_came_and_works_once_under_a_race(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "ticket-race-");
    link(s, &t, &p, "main", &d.url());
    push(s, &t, "main", &new_sha());
    d.wait_for(1, soon());
    let job = d.call(0).json();
    let ticket = job["credentials"]["ticket"].as_str().unwrap().to_owned();
    let url = path_of(job["credentials"]["url"].as_str().unwrap()).to_owned();

    // GitHub refuses this installation's next token (not a retried status).
    let tokens = format!("/app/installations/{}/access_tokens", t.installation);
    let minted = || {
        s.fake
            .requests_for("apps/create-installation-access-token")
            .iter()
            .filter(|r| r.path == tokens)
            .count()
    };
    let before = minted();
    s.fake.on(
        Match::operation_at("apps/create-installation-access-token", &tokens),
        crate::fake_github::Reply::json(
            403,
            json!({"message": "Resource not accessible by integration",
                "documentation_url": "https://docs.github.com/rest", "status": "403"}),
        ),
        Times::Once,
    );
    let r = redeem(s, &url, Some(&ticket));
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "github_forbidden"),
        "{}",
        r.text()
    );
    assert_eq!(minted(), before + 1, "the token was asked for once");

    // Given back: two redemptions at once, exactly one gets the token.
    let answers: Vec<Resp> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| redeem(s, &url, Some(&ticket))))
            .collect();
        racers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut outcomes: Vec<(u16, String)> = answers.iter().map(|r| (r.status, r.code())).collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (200, String::new()),
            (409, "ticket_already_redeemed".to_owned())
        ],
        "{:?}",
        answers.iter().map(Resp::text).collect::<Vec<_>>()
    );
    let winner = answers.iter().find(|r| r.status == 200).unwrap().json();
    assert_eq!(
        installation_of(winner["token"].as_str().unwrap()),
        Some(t.installation)
    );
    assert_eq!(minted(), before + 2, "one token for the two");
}

fn a_silent_deployer_times_out_and_the_next_push_deploys(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "silent-");
    let secret = link(s, &t, &p, "main", &d.url());
    push(s, &t, "main", &new_sha());
    d.wait_for(1, soon());
    let github_id = d.call(0).json()["deployment"]["githubDeploymentId"]
        .as_u64()
        .unwrap();
    eventually(
        Duration::from_secs(TIMEOUT_SECONDS + 15),
        "deployment 1 times out",
        || deployments(s, &p)["deployments"][0]["state"] == "error",
    );
    let list = deployments(s, &p);
    assert_eq!(list["deployments"][0]["outcome"], "timed_out");
    assert_eq!(list["running"], Value::Null);
    eventually(Duration::from_secs(10), "the error is mirrored", || {
        mirrored(s, &t.full_name, github_id) == ["error"]
    });
    // A late report changes nothing.
    let r = report(s, &p, 1, &secret, "success");
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "deployment_not_running")
    );

    let next = new_sha();
    push(s, &t, "main", &next);
    d.wait_for(2, soon());
    let job = d.call(1).json();
    assert_eq!(job["deployment"]["id"], 2);
    assert_eq!(job["deployment"]["sha"], next);
    assert_eq!(report(s, &p, 2, &secret, "success").status, 200);
}

fn two_projects_on_two_branches_of_one_repo(s: &Shared) {
    let t = tenant(s);
    let (da, db) = (Deployer::start(), Deployer::start());
    let (pa, pb) = (slug(s, "main-"), slug(s, "staging-"));
    let sa = link(s, &t, &pa, "main", &da.url());
    let sb = link(s, &t, &pb, "staging", &db.url());
    let (main_sha, staging_sha) = (new_sha(), new_sha());
    push(s, &t, "main", &main_sha);
    push(s, &t, "staging", &staging_sha);
    da.wait_for(1, soon());
    db.wait_for(1, soon());
    da.stays_at(1, window());
    db.stays_at(1, Duration::ZERO);
    let (ja, jb) = (da.call(0), db.call(0));
    ja.assert_signed_with(&sa);
    jb.assert_signed_with(&sb);
    assert_eq!(
        (&ja.json()["project"], &ja.json()["deployment"]["sha"]),
        (&json!(pa), &json!(main_sha))
    );
    assert_eq!(
        (&jb.json()["project"], &jb.json()["deployment"]["sha"]),
        (&json!(pb), &json!(staging_sha))
    );
    assert_eq!(jb.json()["deployment"]["ref"], "refs/heads/staging");
    assert_eq!(github_deployments(s, &t.full_name).len(), 2);
    assert_eq!(report(s, &pa, 1, &sa, "success").status, 200);
    assert_eq!(report(s, &pb, 1, &sb, "success").status, 200);
}

fn a_failing_hook_is_retried_then_failed_keeping_the_follow_up(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "retry-");
    let secret = link(s, &t, &p, "main", &d.url());
    // Two failures that say "later", then success: the same job three times.
    d.reply_with(&[(500, 0), (503, 0), (200, 0)]);
    push(s, &t, "main", &new_sha());
    d.wait_for(3, soon());
    d.stays_at(3, Duration::from_secs(2));
    let bodies: Vec<Vec<u8>> = (0..3).map(|n| d.call(n).body).collect();
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every try sends the same job"
    );
    d.call(2).assert_signed_with(&secret);
    assert_eq!(deployments(s, &p)["deployments"][0]["state"], "queued");
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);

    // A refusal ends the deployment at once; the push queued meanwhile still deploys. The
    // refusal is held 8 s (under the worker's 10 s hook timeout) so that the follow-up is
    // seen queued behind the running deployment, not deployed fresh after it.
    d.reply_with(&[(410, 8000)]);
    push(s, &t, "main", &new_sha());
    d.wait_for(4, soon());
    let follow = new_sha();
    push(s, &t, "main", &follow);
    let queued = deployments(s, &p);
    assert_eq!(queued["running"], 2, "{queued}");
    assert_eq!(queued["pending"]["sha"], follow, "{queued}");
    d.wait_for(5, soon());
    let job = d.call(4).json();
    assert_eq!(job["deployment"]["id"], 3);
    assert_eq!(job["deployment"]["sha"], follow);
    let list = deployments(s, &p);
    assert_eq!(list["deployments"][1]["id"], 2);
    assert_eq!(list["deployments"][1]["state"], "error");
    assert_eq!(list["deployments"][1]["outcome"], "dispatch_failed");
    assert_eq!(report(s, &p, 3, &secret, "success").status, 200);
}

/// Scripts GitHub's answer for the head of `branch` of `full_name` (`repos/get-branch`).
pub(crate) fn script_branch_head(s: &Shared, full_name: &str, branch: &str, sha: &str) {
    let mut body = crate::fake_github::example("repos/get-branch");
    body["name"] = json!(branch);
    body["commit"]["sha"] = json!(sha);
    body["commit"]["commit"]["message"] = json!(format!("head {}", &sha[32..]));
    s.fake.on(
        Match::operation_at(
            "repos/get-branch",
            &format!("/repos/{full_name}/branches/{branch}"),
        ),
        crate::fake_github::Reply::json(200, body),
        Times::Once,
    );
}

fn redeploy(s: &Shared, slug: &str) -> Resp {
    s.api
        .admin("POST", &format!("/projects/{slug}/redeploy"), None)
}

fn a_redeploy_deploys_the_branch_head_again_for_admins_only(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "redeploy-");

    // No source: the stable code, and GitHub is not asked.
    let r = redeploy(s, &p);
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "redeploy_without_source"),
        "{}",
        r.text()
    );
    // A viewer may not.
    let viewer = crate::admin_access::sign_in_as(s, crate::people::VIEWER);
    let auth = format!("Bearer {}", viewer.token);
    let r = s.api.send(
        "POST",
        &format!("/projects/{p}/redeploy"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "{}",
        r.text()
    );

    // A push deploys the head; then a redeploy of that same head makes a second deployment.
    let secret = link(s, &t, &p, "main", &d.url());
    let head = new_sha();
    push(s, &t, "main", &head);
    d.wait_for(1, soon());
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
    script_branch_head(s, &t.full_name, "main", &head);
    let reads = s.fake.requests_for("repos/get-branch").len();
    let r = redeploy(s, &p);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"state": "dispatched", "deployment": 2, "sha": head})
    );
    assert_eq!(s.fake.requests_for("repos/get-branch").len(), reads + 1);
    d.wait_for(2, Duration::from_secs(10));
    let job = d.call(1);
    job.assert_signed_with(&secret);
    let job = job.json();
    assert_eq!(
        (&job["deployment"]["id"], &job["deployment"]["sha"]),
        (&json!(2), &json!(head))
    );
    assert_eq!(job["deployment"]["trigger"]["kind"], "redeploy");
    let list = deployments(s, &p);
    assert_eq!(list["deployments"][0]["trigger"]["kind"], "redeploy");
    assert_eq!(list["deployments"][0]["sha"], head);
    assert!(list["deployments"][1]["trigger"].get("kind").is_none());
    assert_eq!(github_deployments(s, &t.full_name).len(), 2);

    // Again while it runs: that sha is deploying, no third deployment.
    script_branch_head(s, &t.full_name, "main", &head);
    let r = redeploy(s, &p);
    assert_eq!(
        (r.status, r.json()),
        (
            202,
            json!({"state": "already_deploying", "deployment": 2, "sha": head})
        )
    );
    assert_eq!(report(s, &p, 2, &secret, "success").status, 200);
    d.stays_at(2, Duration::from_secs(2));

    // GitHub failing is GitHub's error, as everywhere.
    s.fake.on(
        Match::operation_at(
            "repos/get-branch",
            &format!("/repos/{}/branches/main", t.full_name),
        ),
        crate::fake_github::Reply::json(
            404,
            json!({"message": "Branch not found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
        ),
        Times::Once,
    );
    let r = redeploy(s, &p);
    assert!(r.code().starts_with("github_"), "{} {}", r.status, r.text());

    // The audit shows the redeploys, once each, with their statuses.
    let r = s
        .api
        .admin("GET", &format!("/api/audit?target={p}&limit=100"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let statuses: Vec<u64> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "/projects/{slug}/redeploy")
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert_eq!(&statuses[1..], [202, 202, 409], "newest first");
}
