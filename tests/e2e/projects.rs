//! Projects: approval creates the project's private repository in the org with the org
//! installation's token, at most once; a manual choice of repository always wins.
//!
//! The fake GitHub plays a small org (`e2e-org`): `POST /orgs/e2e-org/repos` really creates
//! (a second create of a name is GitHub's 422 "name already exists"), `GET /repos/…` reads
//! what was created. Every test works on its own project, whose slug is unique, and scripts
//! GitHub's behaviour for names of that slug only, so tests sharing the org path never meet.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::{Api, Resp};
use crate::fake_github::{example, FakeGithub, Match, RecordedRequest, Reply, Respond, Times};
use crate::github_handlers::TOKEN_PREFIX;
use crate::identity::register_app;
use crate::worker::{Worker, WorkerOptions};
use crate::{unique_id, Setup, Shared, TestFn};

pub const SETUP: Setup = Setup {
    vars: |_| worker_vars(),
    install,
    ready: |s| setup(&s.api),
    ..Setup::NONE
};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "projects::branches_of_a_private_repository_are_paged_with_the_installation_token",
        branches_of_a_private_repository_are_paged_with_the_installation_token,
    ),
    (
        "projects::create_repo_happy_path_posts_a_private_repo_to_the_org",
        create_repo_happy_path_posts_a_private_repo_to_the_org,
    ),
    (
        "projects::create_repo_401_is_github_unauthorized",
        create_repo_401_is_github_unauthorized,
    ),
    (
        "projects::create_repo_422_then_success_uses_the_suffixed_name",
        create_repo_422_then_success_uses_the_suffixed_name,
    ),
    (
        "projects::create_repo_422_twice_is_github_repo_name_taken",
        create_repo_422_twice_is_github_repo_name_taken,
    ),
    (
        "projects::create_repo_lost_answer_is_read_back_not_created_twice",
        create_repo_lost_answer_is_read_back_not_created_twice,
    ),
    (
        "projects::approve_auto_creates_when_github_repo_is_null_and_persists_it",
        approve_auto_creates_when_github_repo_is_null_and_persists_it,
    ),
    (
        "projects::approve_skips_when_github_repo_is_set",
        approve_skips_when_github_repo_is_set,
    ),
    (
        "projects::approve_answers_200_when_create_repo_fails_and_logs_it",
        approve_answers_200_when_create_repo_fails_and_logs_it,
    ),
    (
        "projects::manual_override_then_approve_creates_nothing",
        manual_override_then_approve_creates_nothing,
    ),
    (
        "projects::manual_override_during_creation_wins_and_history_keeps_the_created_repo",
        manual_override_during_creation_wins_and_history_keeps_the_created_repo,
    ),
    (
        "projects::concurrent_approvals_create_one_repo",
        concurrent_approvals_create_one_repo,
    ),
    (
        "projects::illegal_status_move_is_409_with_no_change",
        illegal_status_move_is_409_with_no_change,
    ),
    (
        "projects::slugs_and_bodies_are_validated",
        slugs_and_bodies_are_validated,
    ),
    (
        "projects::github_repos_lists_what_the_org_installation_reaches",
        github_repos_lists_what_the_org_installation_reaches,
    ),
    (
        "projects::github_token_fallback_and_not_configured",
        github_token_fallback_and_not_configured,
    ),
];

/// The shared worker's `GITHUB_ORG`.
pub const ORG: &str = "e2e-org";
/// The app installed on the org, and that installation (a tenant set up by [`setup`]). Fixed
/// ids far above [`unique_id`]'s range: the worker's vars name them at startup.
pub const ORG_APP_ID: u64 = 9_100_001;
pub const ORG_INSTALLATION_ID: u64 = 9_100_002;
/// The `GITHUB_TOKEN` of the fallback test's worker; must never be logged.
pub const FALLBACK_TOKEN: &str = "github_pat_e2e_fallback_5d1e0c";

/// The shared worker's vars for the org.
pub fn worker_vars() -> Vec<(String, String)> {
    vec![
        ("GITHUB_ORG".into(), ORG.into()),
        (
            "GITHUB_ORG_INSTALLATION_ID".into(),
            ORG_INSTALLATION_ID.to_string(),
        ),
    ]
}

/// Registers the org's app and its installation as a tenant, once, before any test runs.
pub fn setup(api: &Api) {
    register_app(api, ORG_APP_ID);
    let config = json!({"appId": ORG_APP_ID,
        "account": {"login": ORG, "id": 77_000, "type": "Organization"},
        "permissions": {"canProcessIssues": true, "canCreatePullRequests": false, "maxContainersPerHour": 0}});
    let r = api.admin(
        "PUT",
        &format!("/api/installations/{ORG_INSTALLATION_ID}/config"),
        Some(&config),
    );
    assert!(
        r.status == 201 || r.status == 200,
        "org installation: {}",
        r.text()
    );
}

// ---------------------------------------------------------------------------------------
// The fake org.

/// What GitHub does with the next create of a name of one project.
enum Script {
    /// Answer this instead.
    Reply(Reply),
    /// Create the repository, then close the connection: the answer is lost.
    CreateAndDrop,
    /// Create the repository, then answer once the test releases the latch: the creation
    /// stays in flight for exactly as long as the test needs, whatever the machine's load.
    CreateHeld(Arc<Latch>),
}

/// Opened once by the test; a held reply waits for it (a minute at most, so that a failing
/// test never hangs the run). The fake answers each connection on its own thread.
#[derive(Default)]
struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .opened
            .wait_timeout_while(open, Duration::from_secs(60), |open| !*open)
            .unwrap();
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

#[derive(Default)]
struct FakeOrg {
    /// Repositories of the org by lowercase name.
    repos: HashMap<String, Value>,
    /// Per project slug: scripts for the next creates of its names, in order.
    scripts: HashMap<String, VecDeque<Script>>,
}

static FAKE_ORG: Mutex<Option<FakeOrg>> = Mutex::new(None);
static NEXT_REPO_ID: AtomicU64 = AtomicU64::new(50_000_000);

fn with_org<T>(f: impl FnOnce(&mut FakeOrg) -> T) -> T {
    let mut guard = FAKE_ORG.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(FakeOrg::default))
}

/// The project a repository name belongs to: the slug itself or the slug plus a suffix.
fn names_of(slug: &str, name: &str) -> bool {
    name == slug
        || name
            .strip_prefix(slug)
            .is_some_and(|rest| rest.starts_with('-'))
}

fn script(slug: &str, steps: Vec<Script>) {
    with_org(|o| o.scripts.entry(slug.to_owned()).or_default().extend(steps));
}

/// A repository of someone else's already in the org under `name`.
fn preexisting(name: &str) {
    let repo = repo_json(ORG, name, Some("not made by ghplane"), "main");
    with_org(|o| o.repos.insert(name.to_ascii_lowercase(), repo));
}

fn repo_json(owner: &str, name: &str, description: Option<&str>, branch: &str) -> Value {
    let mut r = example("repos/create-in-org");
    r["id"] = json!(NEXT_REPO_ID.fetch_add(1, Ordering::Relaxed));
    r["name"] = json!(name);
    r["full_name"] = json!(format!("{owner}/{name}"));
    r["owner"]["login"] = json!(owner);
    r["private"] = json!(true);
    r["visibility"] = json!("private");
    r["description"] = json!(description);
    r["default_branch"] = json!(branch);
    r
}

fn github_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
    )
}

/// GitHub's answer to a create whose name exists.
fn name_taken() -> Reply {
    Reply::json(
        422,
        json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository",
            "code": "custom", "field": "name", "message": "name already exists on this account"}],
            "documentation_url": "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
            "status": "422"}),
    )
}

/// Installs the fake org's handlers; called once at startup.
pub fn install(fake: &FakeGithub) {
    fake.on(
        Match::operation("repos/create-in-org"),
        Respond::with(|req| {
            let org = req.path.split('/').nth(2)?.to_owned();
            let body = req.json();
            let name = body["name"].as_str()?.to_owned();
            let step = with_org(|o| {
                let slug = o.scripts.keys().find(|s| names_of(s, &name)).cloned()?;
                o.scripts.get_mut(&slug)?.pop_front()
            });
            let (drop, latch) = match step {
                Some(Script::Reply(reply)) => return Some(reply),
                Some(Script::CreateAndDrop) => (true, None),
                Some(Script::CreateHeld(latch)) => (false, Some(latch)),
                None => (false, None),
            };
            let repo = repo_json(&org, &name, body["description"].as_str(), "main");
            let created = with_org(|o| {
                let key = name.to_ascii_lowercase();
                if o.repos.contains_key(&key) {
                    return false;
                }
                o.repos.insert(key, repo.clone());
                true
            });
            if let (true, Some(latch)) = (created, latch) {
                latch.wait();
            }
            Some(match (created, drop) {
                (false, _) => name_taken(),
                (true, true) => Reply::dropped(),
                (true, false) => Reply::json(201, repo),
            })
        }),
        Times::Always,
    );
    // The org's repositories as created; anyone else's repository exists (with default
    // branch `trunk`, so a test sees it was read) unless its name starts with `missing-`.
    fake.on(
        Match::operation("repos/get"),
        Respond::with(|req| {
            let mut parts = req.path.split('/').skip(2);
            let (owner, name) = (parts.next()?.to_owned(), parts.next()?.to_owned());
            if owner == ORG {
                let found = with_org(|o| o.repos.get(&name.to_ascii_lowercase()).cloned());
                return Some(match found {
                    Some(repo) => Reply::json(200, repo),
                    None => github_error(404, "Not Found"),
                });
            }
            if name.starts_with("missing-") {
                return Some(github_error(404, "Not Found"));
            }
            Some(Reply::json(200, repo_json(&owner, &name, None, "trunk")))
        }),
        Times::Always,
    );
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A new project in `status`, through the API; its slug.
fn project(api: &Api, status: &str) -> String {
    let name = format!("Proj {} Ltd.", unique_id());
    let r = api.admin(
        "POST",
        "/projects",
        Some(&json!({"name": name, "description": "Widgets for all"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let p = r.json();
    assert_eq!(p["status"], "draft");
    assert_eq!(p["githubRepo"], Value::Null);
    let slug = p["slug"].as_str().unwrap().to_owned();
    let steps: &[&str] = match status {
        "draft" => &[],
        "interviewing" => &["interviewing"],
        _ => &["interviewing", "review"],
    };
    for to in steps {
        let r = api.admin(
            "PATCH",
            &format!("/projects/{slug}"),
            Some(&json!({ "status": to })),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    slug
}

fn approve(api: &Api, slug: &str) -> Resp {
    api.admin("POST", &format!("/projects/{slug}/approve"), None)
}

/// An approval that must answer 200; its body.
fn approved(api: &Api, slug: &str) -> Value {
    let r = approve(api, slug);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn get(api: &Api, slug: &str) -> Value {
    let r = api.admin("GET", &format!("/projects/{slug}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The creates GitHub received for this project's names, in order.
fn creates(fake: &FakeGithub, slug: &str) -> Vec<RecordedRequest> {
    fake.requests_for("repos/create-in-org")
        .into_iter()
        .filter(|r| {
            serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|b| b["name"].as_str().map(|n| names_of(slug, n)))
                .unwrap_or(false)
        })
        .collect()
}

fn created_names(fake: &FakeGithub, slug: &str) -> Vec<String> {
    creates(fake, slug)
        .iter()
        .map(|r| r.json()["name"].as_str().unwrap().to_owned())
        .collect()
}

fn events(project: &Value) -> Vec<String> {
    project["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `check` holds (worker output and the fake's log arrive asynchronously).
fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// createRepo.

fn create_repo_happy_path_posts_a_private_repo_to_the_org(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    let body = approved(&s.api, &slug);
    assert_eq!(
        body["repo"],
        json!({"status": "created", "fullName": format!("{ORG}/{slug}")})
    );

    let posts = creates(&s.fake, &slug);
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, format!("/orgs/{ORG}/repos"));
    let sent = post.json();
    assert_eq!(sent["name"], json!(slug));
    assert_eq!(sent["private"], json!(true));
    assert_eq!(sent["auto_init"], json!(false));
    let description = sent["description"].as_str().unwrap();
    assert!(
        description.starts_with("Widgets for all [ghplane:")
            && description.ends_with(']')
            && description.contains(&slug),
        "the description carries the marker: {description}"
    );
    // The org installation's own token, scoped to what creating a repository needs.
    let bearer = post.header("authorization").unwrap();
    assert!(
        bearer.starts_with(&format!("Bearer {TOKEN_PREFIX}{ORG_INSTALLATION_ID}_")),
        "created with the org installation's token, got {}…",
        &bearer[..bearer.len().min(24)]
    );
    let mint_path = format!("/app/installations/{ORG_INSTALLATION_ID}/access_tokens");
    let mints: Vec<Value> = s
        .fake
        .requests_for("apps/create-installation-access-token")
        .into_iter()
        .filter(|r| r.path == mint_path)
        .map(|r| r.json())
        .collect();
    assert!(!mints.is_empty());
    for m in mints {
        assert_eq!(
            m["permissions"],
            json!({"administration": "write", "contents": "write", "metadata": "read"})
        );
    }
}

fn create_repo_401_is_github_unauthorized(s: &Shared) {
    let slug = project(&s.api, "review");
    script(
        &slug,
        vec![Script::Reply(github_error(401, "Bad credentials"))],
    );
    let body = approved(&s.api, &slug);
    assert_eq!(body["repo"]["status"], "failed");
    assert_eq!(body["repo"]["code"], "GITHUB_UNAUTHORIZED");
    assert_eq!(body["project"]["githubRepo"], Value::Null);
    assert_eq!(body["project"]["autoCreate"], Value::Null);
    assert_eq!(creates(&s.fake, &slug).len(), 1, "a 401 is not retried");
    // Approving again retries, with a freshly minted token (the refused one was dropped).
    let again = approved(&s.api, &slug);
    assert_eq!(again["repo"]["status"], "created", "{again}");
    let posts = creates(&s.fake, &slug);
    assert_eq!(posts.len(), 2);
    assert_ne!(
        posts[1].header("authorization"),
        posts[0].header("authorization"),
        "the token GitHub refused is not used again"
    );
}

fn create_repo_422_then_success_uses_the_suffixed_name(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    preexisting(&slug);
    let body = approved(&s.api, &slug);
    let names = created_names(&s.fake, &slug);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], slug);
    let suffix = names[1]
        .strip_prefix(&format!("{slug}-"))
        .unwrap_or_else(|| panic!("retry name {} is not {slug}-xxxx", names[1]));
    assert!(
        suffix.len() == 4
            && suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{suffix}"
    );
    let full = format!("{ORG}/{}", names[1]);
    assert_eq!(body["repo"], json!({"status": "created", "fullName": full}));
    assert_eq!(body["project"]["githubRepo"]["fullName"], json!(full));
    assert_eq!(body["project"]["githubRepoOrigin"], "auto");
}

fn create_repo_422_twice_is_github_repo_name_taken(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    script(
        &slug,
        vec![Script::Reply(name_taken()), Script::Reply(name_taken())],
    );
    let body = approved(&s.api, &slug);
    assert_eq!(body["repo"]["status"], "failed");
    assert_eq!(body["repo"]["code"], "GITHUB_REPO_NAME_TAKEN");
    assert!(body["repo"]["message"]
        .as_str()
        .unwrap()
        .contains("/github-repo"));
    assert_eq!(created_names(&s.fake, &slug).len(), 2, "one retry only");
    assert_eq!(body["project"]["status"], "review");
    assert_eq!(body["project"]["githubRepo"], Value::Null);
    let last = body["project"]["history"]
        .as_array()
        .unwrap()
        .last()
        .cloned();
    assert_eq!(last.unwrap()["code"], "GITHUB_REPO_NAME_TAKEN");
}

/// The first create's answer is lost; the repeat finds the name taken, and the read-back
/// recognises the repository as ours by the marker: one repository, not two.
fn create_repo_lost_answer_is_read_back_not_created_twice(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    script(&slug, vec![Script::CreateAndDrop]);
    let body = approved(&s.api, &slug);
    assert_eq!(
        body["repo"],
        json!({"status": "created", "fullName": format!("{ORG}/{slug}")})
    );
    assert_eq!(
        created_names(&s.fake, &slug),
        vec![slug.clone(), slug.clone()]
    );
    let reads = s
        .fake
        .requests_for("repos/get")
        .into_iter()
        .filter(|r| r.path == format!("/repos/{ORG}/{slug}"))
        .count();
    assert_eq!(reads, 1);
}

// ---------------------------------------------------------------------------------------
// Approval.

fn approve_auto_creates_when_github_repo_is_null_and_persists_it(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    let body = approved(&s.api, &slug);
    let repo =
        json!({"fullName": format!("{ORG}/{slug}"), "defaultBranch": "main", "private": true});
    assert_eq!(body["project"]["githubRepo"], repo);

    let stored = get(&s.api, &slug);
    assert_eq!(stored["status"], "review");
    assert_eq!(stored["githubRepo"], repo);
    assert_eq!(stored["githubRepoOrigin"], "auto");
    assert_eq!(stored["autoCreate"], Value::Null);
    assert!(stored["approvedAt"].is_string());
    assert_eq!(
        events(&stored),
        ["status_changed", "approved", "repo_created"]
    );

    let list = s.api.admin("GET", "/projects", None);
    assert_eq!(list.status, 200);
    let row = list.json()["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == json!(slug))
        .cloned()
        .expect("the project is listed");
    assert_eq!(row["githubRepo"], repo);
    assert_eq!(row["status"], "review");
}

fn approve_skips_when_github_repo_is_set(s: &Shared) {
    let slug = project(&s.api, "review");
    assert_eq!(approved(&s.api, &slug)["repo"]["status"], "created");
    let before = get(&s.api, &slug);
    let again = approved(&s.api, &slug);
    assert_eq!(
        again["repo"],
        json!({"status": "skipped", "reason": "already_set"})
    );
    assert_eq!(creates(&s.fake, &slug).len(), 1);
    assert_eq!(
        get(&s.api, &slug),
        before,
        "a skipped approval changes nothing"
    );
}

fn approve_answers_200_when_create_repo_fails_and_logs_it(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    script(
        &slug,
        vec![Script::Reply(github_error(
            403,
            "Resource not accessible by integration",
        ))],
    );
    let body = approved(&s.api, &slug);
    assert_eq!(body["repo"]["status"], "failed");
    assert_eq!(body["repo"]["code"], "GITHUB_FORBIDDEN");
    assert!(body["repo"]["message"]
        .as_str()
        .unwrap()
        .contains("Administration (write)"));
    let project = get(&s.api, &slug);
    assert_eq!(project["status"], "review", "the approval stands");
    assert!(project["approvedAt"].is_string());
    assert_eq!(project["githubRepo"], Value::Null);

    let needle = format!("\"slug\":\"{slug}\"");
    eventually("the approval's log line", Duration::from_secs(10), || {
        s.worker.output().lines().any(|l| {
            l.contains("\"msg\":\"project_approved\"")
                && l.contains(&needle)
                && l.contains("\"status\":\"failed\"")
                && l.contains("\"githubError\":\"GITHUB_FORBIDDEN\"")
        })
    });
    for line in s.worker.output().lines().filter(|l| l.contains(&needle)) {
        assert!(
            !line.contains(TOKEN_PREFIX) && !line.to_lowercase().contains("bearer"),
            "a log line carries a token: {line}"
        );
    }

    // Approving again retries and succeeds.
    assert_eq!(approved(&s.api, &slug)["repo"]["status"], "created");
}

// ---------------------------------------------------------------------------------------
// Manual override.

fn manual_override_then_approve_creates_nothing(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    let owner = format!("client-{}", unique_id());
    let path = format!("/projects/{slug}/github-repo");

    let missing = s.api.admin(
        "PUT",
        &path,
        Some(&json!({"fullName": format!("{owner}/missing-app")})),
    );
    assert_eq!(missing.status, 422, "{}", missing.text());
    assert_eq!(missing.code(), "github_repo_not_found");
    assert!(missing.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing-app"));
    assert_eq!(
        get(&s.api, &slug)["githubRepo"],
        Value::Null,
        "nothing stored"
    );

    let r = s.api.admin(
        "PUT",
        &path,
        Some(&json!({"fullName": format!("{owner}/app")})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(
        p["githubRepo"],
        json!({"fullName": format!("{owner}/app"), "defaultBranch": "trunk", "private": true})
    );
    assert_eq!(p["githubRepoOrigin"], "manual");
    let read = s
        .fake
        .requests_for("repos/get")
        .into_iter()
        .find(|r| r.path == format!("/repos/{owner}/app"))
        .expect("the repository was checked on GitHub");
    assert!(read
        .header("authorization")
        .unwrap()
        .starts_with(&format!("Bearer {TOKEN_PREFIX}{ORG_INSTALLATION_ID}_")));

    let body = approved(&s.api, &slug);
    assert_eq!(
        body["repo"],
        json!({"status": "skipped", "reason": "manual"})
    );
    assert_eq!(body["project"]["status"], "review");
    assert_eq!(
        body["project"]["githubRepo"]["fullName"],
        json!(format!("{owner}/app"))
    );
    assert!(creates(&s.fake, &slug).is_empty(), "no repository created");
}

/// An override that lands while the creation is in flight wins; the repository that
/// creation made is reported, in the answer and in the history.
fn manual_override_during_creation_wins_and_history_keeps_the_created_repo(s: &Shared) {
    let slug = project(&s.api, "review");
    let latch = Arc::new(Latch::default());
    script(&slug, vec![Script::CreateHeld(latch.clone())]);
    let manual = format!("client-{}/app", unique_id());
    let body = std::thread::scope(|scope| {
        let approval = scope.spawn(|| approved(&s.api, &slug));
        eventually(
            "the create to reach GitHub",
            Duration::from_secs(15),
            || !creates(&s.fake, &slug).is_empty(),
        );
        let r = s.api.admin(
            "PUT",
            &format!("/projects/{slug}/github-repo"),
            Some(&json!({ "fullName": manual })),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.json()["autoCreate"].is_object(),
            "the creation was still in flight"
        );
        latch.release();
        approval.join().unwrap()
    });
    let auto = format!("{ORG}/{slug}");
    assert_eq!(
        body["repo"],
        json!({"status": "skipped", "reason": "manual", "fullName": manual, "unusedRepo": auto})
    );
    let stored = get(&s.api, &slug);
    assert_eq!(stored["githubRepo"]["fullName"], json!(manual));
    assert_eq!(stored["githubRepoOrigin"], "manual");
    assert_eq!(stored["autoCreate"], Value::Null);
    let entry = stored["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "repo_created_but_overridden")
        .cloned()
        .expect("the created repository is in the history");
    assert_eq!(entry["fullName"], json!(auto));
    assert_eq!(entry["kept"], json!(manual));
}

fn concurrent_approvals_create_one_repo(s: &Shared) {
    let slug = project(&s.api, "interviewing");
    // The first creation stays in flight until the three other approvals have been answered.
    let latch = Arc::new(Latch::default());
    script(&slug, vec![Script::CreateHeld(latch.clone())]);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            let (api, slug) = (&s.api, &slug);
            scope.spawn(move || tx.send(approved(api, slug)).unwrap());
        }
        let wait = Duration::from_secs(60);
        let mut answers: Vec<Value> = (0..3).map(|_| rx.recv_timeout(wait).unwrap()).collect();
        for a in &answers {
            assert_eq!(
                (a["repo"]["status"].as_str(), a["repo"]["reason"].as_str()),
                (Some("skipped"), Some("in_flight")),
                "{a}"
            );
        }
        latch.release();
        answers.push(rx.recv_timeout(wait).unwrap());
        answers
    });
    assert_eq!(
        creates(&s.fake, &slug).len(),
        1,
        "one POST /orgs/{ORG}/repos"
    );
    let statuses: Vec<&str> = answers
        .iter()
        .map(|a| a["repo"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "created").count(),
        1,
        "{statuses:?}"
    );
    for a in answers.iter().filter(|a| a["repo"]["status"] == "skipped") {
        assert_eq!(a["repo"]["reason"], "in_flight");
    }
    let stored = get(&s.api, &slug);
    assert_eq!(
        stored["githubRepo"]["fullName"],
        json!(format!("{ORG}/{slug}"))
    );
    assert_eq!(
        events(&stored).iter().filter(|e| *e == "approved").count(),
        1
    );
}

// ---------------------------------------------------------------------------------------
// Project records.

fn illegal_status_move_is_409_with_no_change(s: &Shared) {
    let slug = project(&s.api, "draft");
    let before = get(&s.api, &slug);
    let path = format!("/projects/{slug}");
    let r = s.api.admin(
        "PATCH",
        &path,
        Some(&json!({"status": "review", "name": "Renamed"})),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.code(), "illegal_status_transition");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("draft") && message.contains("review"),
        "{message}"
    );
    assert_eq!(get(&s.api, &slug), before, "nothing changed");

    // A draft cannot be approved either, and nothing is created.
    let r = approve(&s.api, &slug);
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "illegal_status_transition")
    );
    assert_eq!(get(&s.api, &slug), before);
    assert!(creates(&s.fake, &slug).is_empty());

    // Allowed moves: one step forward, and backwards never.
    let r = s.api.admin(
        "PATCH",
        &path,
        Some(&json!({"status": "interviewing", "description": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["description"], Value::Null);
    let r = s
        .api
        .admin("PATCH", &path, Some(&json!({"status": "draft"})));
    assert_eq!(r.status, 409);
}

fn slugs_and_bodies_are_validated(s: &Shared) {
    for path in [
        "/projects/Bad_Slug",
        "/projects/a--b",
        "/projects/-a",
        "/projects/%C3%A9",
    ] {
        let r = s.api.admin("GET", path, None);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_id"), "{path}");
    }
    let r = approve(&s.api, "UPPER");
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_id"));
    let r = s.api.admin(
        "PUT",
        "/projects/UPPER/github-repo",
        Some(&json!({"fullName": "o/r"})),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_id"));

    let unknown = format!("nope-{}", unique_id());
    let r = s.api.admin("GET", &format!("/projects/{unknown}"), None);
    assert_eq!((r.status, r.code().as_str()), (404, "project_not_found"));
    let r = approve(&s.api, &unknown);
    assert_eq!((r.status, r.code().as_str()), (404, "project_not_found"));
    let r = s.api.admin(
        "PUT",
        &format!("/projects/{unknown}/github-repo"),
        Some(&json!({"fullName": "o/r"})),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "project_not_found"));

    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "slug": "x"}),
    ] {
        let r = s.api.admin("POST", "/projects", Some(&body));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "validation_failed"),
            "{body}"
        );
    }
    let slug = project(&s.api, "draft");
    let r = s.api.admin(
        "PUT",
        &format!("/projects/{slug}/github-repo"),
        Some(&json!({"fullName": "no-slash"})),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "validation_failed"));
    let r = s.api.send("GET", "/projects", &[], None);
    assert_eq!(r.status, 401);
}

// ---------------------------------------------------------------------------------------
// The org's repositories, and the org's credentials.

fn github_repos_lists_what_the_org_installation_reaches(s: &Shared) {
    let r = s.api.admin("GET", "/github/repos", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["org"], ORG);
    assert_eq!(body["incomplete"], false);
    let rows = body["repositories"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["fullName"] == json!(format!("tenant-{ORG_INSTALLATION_ID}/only-repo")))
        .unwrap_or_else(|| panic!("the org installation's repositories: {body}"));
    assert!(row["private"].is_boolean() && row["defaultBranch"].is_string());
}

/// Without an org installation the `GITHUB_TOKEN` secret creates the repository; without
/// either, the approval still stands and the repository step says "not configured".
fn github_token_fallback_and_not_configured(s: &Shared) {
    let mut options = WorkerOptions::new(&s.fake.base_url());
    options.vars = vec![("GITHUB_ORG".into(), ORG.into())];
    options.secrets = vec![("GITHUB_TOKEN".into(), FALLBACK_TOKEN.into())];
    let mut with_token = Worker::start(&s.run_dir.join("projects-token"), options);
    let api = Api::new(&with_token.base_url());
    let slug = project(&api, "interviewing");
    let body = approved(&api, &slug);
    assert_eq!(
        body["repo"],
        json!({"status": "created", "fullName": format!("{ORG}/{slug}")})
    );
    let posts = creates(&s.fake, &slug);
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].header("authorization"),
        Some(format!("Bearer {FALLBACK_TOKEN}").as_str())
    );
    with_token.stop();
    assert!(
        !with_token.output().contains(FALLBACK_TOKEN),
        "GITHUB_TOKEN appeared in the worker's output"
    );

    // wrangler.jsonc's own vars: an org, but no installation id and no token.
    let mut bare = Worker::start(
        &s.run_dir.join("projects-bare"),
        WorkerOptions::new(&s.fake.base_url()),
    );
    let api = Api::new(&bare.base_url());
    let slug = project(&api, "interviewing");
    let body = approved(&api, &slug);
    assert_eq!(body["repo"]["status"], "failed");
    assert_eq!(body["repo"]["code"], "GITHUB_ORG_NOT_CONFIGURED");
    assert_eq!(body["project"]["status"], "review");
    assert!(creates(&s.fake, &slug).is_empty());
    let r = api.admin("GET", "/github/repos", None);
    assert_eq!((r.status, r.code().as_str()), (500, "server_misconfigured"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GITHUB_ORG_INSTALLATION_ID"));
    bare.stop();
}

/// A branch as GitHub lists it (`repos/list-branches`).
fn github_branch(name: &str, sha: &str, protected: bool) -> Value {
    let mut b = example("repos/list-branches")[0].clone();
    b["name"] = json!(name);
    b["commit"]["sha"] = json!(sha);
    b["protected"] = json!(protected);
    b
}

/// The fake's branches of `full_name` (a private repository): `count` branches, `main` first
/// and protected, the rest `b-001`…, 100 a page; answered only to `installation`'s token
/// (any other caller gets GitHub's 404 for a private repository). The branch names.
pub(crate) fn script_branches(
    fake: &FakeGithub,
    installation: u64,
    full_name: &str,
    count: usize,
) -> Vec<String> {
    let names: Vec<String> = (0..count)
        .map(|i| match i {
            0 => "main".to_owned(),
            i => format!("b-{i:03}"),
        })
        .collect();
    let rows: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| github_branch(n, &format!("{:040x}", i + 1), i == 0))
        .collect();
    let path = format!("/repos/{full_name}/branches");
    fake.on(
        Match::operation("repos/list-branches"),
        Respond::with(move |req| {
            if req.path != path {
                return None;
            }
            let token = req
                .header("authorization")?
                .strip_prefix("token ")
                .or_else(|| req.header("authorization")?.strip_prefix("Bearer "))?;
            if crate::github_handlers::installation_of(token) != Some(installation) {
                return Some(github_error(404, "Not Found"));
            }
            let (range, next) = crate::fake_github::next_page(req, rows.len(), 30);
            Some(Reply::json(200, json!(rows[range].to_vec())).link_next(next))
        }),
        Times::Always,
    );
    names
}

fn branches_of_a_private_repository_are_paged_with_the_installation_token(s: &Shared) {
    let t = crate::deploy::tenant(s);
    let names = script_branches(&s.fake, t.installation, &t.full_name, 150);
    let base = format!(
        "/api/installations/{}/repositories/{}/branches",
        t.installation, t.full_name
    );

    // Two pages: GitHub's `Link` next page becomes the cursor; the last page has none.
    let first = s.api.admin("GET", &base, None);
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(first["branches"].as_array().unwrap().len(), 100);
    assert_eq!(
        first["branches"][0],
        json!({"name": "main", "sha": format!("{:040x}", 1), "protected": true})
    );
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = s.api.admin("GET", &format!("{base}?cursor={cursor}"), None);
    assert_eq!(second.status, 200, "{}", second.text());
    let second = second.json();
    assert!(second.get("nextCursor").is_none(), "{second}");
    let listed: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|p| p["branches"].as_array().unwrap().iter())
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, names);
    // GitHub was asked with the installation's token, 100 a page, page by page.
    let asked: Vec<(Option<String>, Option<String>)> = s
        .fake
        .requests_for("repos/list-branches")
        .iter()
        .filter(|r| r.path == format!("/repos/{}/branches", t.full_name))
        .map(|r| (r.query_param("per_page"), r.query_param("page")))
        .collect();
    assert_eq!(
        asked,
        [
            (Some("100".into()), Some("1".into())),
            (Some("100".into()), Some("2".into()))
        ]
    );

    // Refused before GitHub is asked: a bad owner, repository or cursor; a bad id.
    for (path, code) in [
        (
            format!(
                "/api/installations/{}/repositories/-bad/x/branches",
                t.installation
            ),
            "validation_failed",
        ),
        (
            format!(
                "/api/installations/{}/repositories/ok/..%2F/branches",
                t.installation
            ),
            "validation_failed",
        ),
        (format!("{base}?cursor=abc"), "validation_failed"),
        (format!("{base}?cursor=1"), "validation_failed"),
        (format!("{base}?page=2"), "validation_failed"),
        (
            format!("/api/installations/0/repositories/{}/branches", t.full_name),
            "invalid_id",
        ),
    ] {
        let r = s.api.admin("GET", &path, None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, code),
            "{path}: {}",
            r.text()
        );
    }
    // An installation with no config is not a tenant ghplane can read with.
    let r = s.api.admin(
        "GET",
        &format!(
            "/api/installations/{}/repositories/{}/branches",
            unique_id(),
            t.full_name
        ),
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "installation_not_found"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.fake
            .requests_for("repos/list-branches")
            .iter()
            .filter(|r| r.path == format!("/repos/{}/branches", t.full_name))
            .count(),
        2,
        "refusals never reach GitHub"
    );
}
