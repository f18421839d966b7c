//! The admin console in a real browser: headless Chromium through chromedriver
//! ([`crate::webdriver`]) against the shared worker (`wrangler dev`, its static assets) and
//! the fake GitHub. A person signs in through GitHub's web flow, sees the organisations the
//! fake lists for them, creates a project with a repository chosen by hand, moves its spec
//! to review and approves it, and sees why no repository was created. Other people (signed
//! in through the API flow, their session cookie put in the browser, so the fake can answer
//! their GitHub token alone) see a cut list of organisations, none, and GitHub failing then
//! recovering; and create a project from a private repository and a branch of an
//! installation, approve it, push, and see the deployment. Screenshots of each screen go to
//! `target/console-screenshots/` (`docs/console/` keeps copies).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::admin_access::{bearer, installation, sign_in_as, APP_SLUG};
use crate::fake_github::{example, FakeGithub, Match, Reply, Respond, Times};
use crate::webdriver::Browser;
use crate::{unique_id, Setup, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "console::a_person_signs_in_and_approves_a_project_in_the_browser",
        a_person_signs_in_and_approves_a_project_in_the_browser,
    ),
    (
        "console::organisations_show_the_cut_the_empty_state_and_githubs_trouble",
        organisations_show_the_cut_the_empty_state_and_githubs_trouble,
    ),
    (
        "console::a_private_repository_and_branch_become_a_project_that_deploys_on_push",
        a_private_repository_and_branch_become_a_project_that_deploys_on_push,
    ),
];

/// The console's person: an admin by login (`people::worker_vars` lists it).
pub const ADMIN: &str = "e2e-console-admin";

/// GitHub's authorize page signs the browser in as [`ADMIN`] when the worker's link names
/// nobody (the other tests name their login in the query).
pub const SETUP: Setup = Setup {
    install,
    finish: || {
        crate::webdriver::shutdown();
        String::new()
    },
    ..Setup::NONE
};

fn install(fake: &FakeGithub) {
    let base = fake.base_url();
    fake.on(
        Match::web("GET", "/login/oauth/authorize"),
        Respond::with(move |req| {
            (!req.query.split('&').any(|p| p.starts_with("login="))).then(|| {
                Reply::json(302, json!({})).header(
                    "location",
                    format!("{base}/login/oauth/authorize?{}&login={ADMIN}", req.query),
                )
            })
        }),
        Times::Always,
    );
}

/// A screenshot under `target/console-screenshots/` (the run's folder is removed at its end);
/// `docs/console/` keeps copies of them.
fn shot(_s: &Shared, b: &Browser, name: &str) {
    let dir = crate::worker::repo_root().join("target/console-screenshots");
    b.screenshot(&dir.join(format!("{name}.png")));
}

fn a_person_signs_in_and_approves_a_project_in_the_browser(s: &Shared) {
    let base = s.worker.base_url();
    let b = Browser::open(1280, 900);
    b.goto(&format!("{base}/"));
    b.click("[data-testid=sign-in]");
    assert_eq!(b.wait_text("[data-testid=login]", ADMIN), ADMIN);

    // Organisations: the fake lists two organisations (and the person's own account, which
    // is left out unless asked for).
    b.wait("[data-testid=org-row]");
    assert_eq!(b.count("[data-testid=org-row]"), 2, "{}", b.text("main"));
    assert!(b
        .text("[data-testid=install-note]")
        .contains("Actions on an organisation need the app installed there"));
    assert!(!b.has("[data-testid=incomplete]"), "{}", b.text("main"));
    shot(s, &b, "organisations");

    // Projects: a new one with its repository chosen by hand.
    b.click("a[href='#/projects']");
    b.click("[data-testid=new-project]");
    let name = format!("Console {}", unique_id());
    b.type_into("input[name=name]", &name);
    b.click("input[name=mode][value=manual]");
    // Outside GITHUB_ORG: the fake shows any such repository (see `projects::SETUP`).
    let repo = format!("console-{}/site", unique_id());
    b.type_into("input[name=manual-repo]", &repo);
    shot(s, &b, "new-project-manual");
    b.click("form[aria-label='New project'] button[type=submit]");

    // The project's page: the repository chosen by hand wins over approval.
    assert!(b
        .wait_text("[data-testid=repo]", &repo)
        .contains("chosen by hand"));
    assert_eq!(b.text("[data-testid=status]"), "draft");
    b.click("[data-testid=advance]");
    b.wait_text("[data-testid=status]", "interviewing");
    b.click("[data-testid=approve]");
    let report = b.wait_text("[data-testid=approve-report]", "No repository created");
    assert!(report.contains("chosen by hand"), "{report}");
    assert!(b.text("[data-testid=status]").contains("approved"));
    shot(s, &b, "project");

    // The API agrees: the project is approved with the repository chosen by hand.
    let slug = b.current_url().rsplit('/').next().unwrap().to_owned();
    let p = s.api.admin("GET", &format!("/projects/{slug}"), None);
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(p.json()["githubRepo"]["fullName"], repo.as_str());
    assert_eq!(p.json()["githubRepoOrigin"], "manual");
    assert!(p.json()["approvedAt"].is_string());

    // Nothing secret is in the page, its storage or its URL.
    let storage = b.run(
        "return JSON.stringify([document.cookie, localStorage, sessionStorage, location.href]);",
        json!([]),
    );
    for secret in ["ghpas_", "ghu_", "ghr_", "ghplane_session"] {
        assert!(
            !storage.to_string().contains(secret),
            "{secret} in {storage}"
        );
        assert!(!b.text("body").contains(secret), "{secret} in the page");
    }
}

/// A browser signed in as `login` (through the API's sign-in flow; its session cookie put in
/// the browser), on the console's page `hash`; and the login's GitHub user token, which
/// the fake's scripts match so no other test sees their answers.
fn browser_as(s: &Shared, login: &str, hash: &str) -> (Browser, String) {
    let who = sign_in_as(s, login);
    let token = s
        .fake
        .oauth_tokens_of(login)
        .pop()
        .expect("the fake issued the login a token");
    let base = s.worker.base_url();
    let b = Browser::open(1280, 900);
    b.goto(&format!("{base}/healthz"));
    let (name, value) = who.cookie.split_once('=').expect("name=value");
    b.add_cookie(name, value);
    b.goto(&format!("{base}/{hash}"));
    assert_eq!(b.wait_text("[data-testid=login]", login), login);
    (b, token)
}

/// What GitHub answers a person's `GET /user/installations` in the organisations test.
#[derive(Clone, Copy)]
enum Orgs {
    /// 250 installations: three pages of 100, the worker reads two (`INSTALLATIONS_PAGE_CAP`).
    ThreePages,
    None,
    Unavailable,
}

fn organisations_show_the_cut_the_empty_state_and_githubs_trouble(s: &Shared) {
    let login = format!("e2e-console-orgs-{}", unique_id());
    let mode = Arc::new(Mutex::new(Orgs::ThreePages));
    let (b, token) = browser_as(s, &login, "#/projects");
    let answer = mode.clone();
    s.fake.on(
        Match::operation("apps/list-installations-for-authenticated-user"),
        Respond::with(move |req| {
            if bearer(req)? != token {
                return None;
            }
            let all: Vec<Value> = match *answer.lock().unwrap() {
                Orgs::ThreePages => (1..=250)
                    .map(|i| installation(i, &format!("cut-org-{i}"), "Organization", APP_SLUG))
                    .collect(),
                Orgs::None => vec![],
                Orgs::Unavailable => {
                    return Some(Reply::json(503, json!({"message": "Service Unavailable"})))
                }
            };
            let (range, next) = crate::fake_github::next_page(req, all.len(), 30);
            let body = json!({"total_count": all.len(), "installations": &all[range]});
            Some(Reply::json(200, body).link_next(next))
        }),
        Times::Always,
    );

    // The cut: the rows read, and the warning that some are missing.
    b.click("a[href='#/orgs']");
    b.wait("[data-testid=org-row]");
    b.wait_text("[data-testid=incomplete]", "cut short");
    assert_eq!(b.count("[data-testid=org-row]"), 200, "two pages of 100");
    shot(s, &b, "orgs-cut");
    at_360(&b, "organisations (200 rows)", &["refresh"]);
    b.resize(1280, 900);

    // None: the empty state speaks of organisations and the app, with the install link.
    *mode.lock().unwrap() = Orgs::None;
    b.click("[data-testid=refresh]");
    let empty = b.wait_text("[data-testid=empty]", "No organisation has the app");
    assert!(!empty.to_lowercase().contains("no repositor"), "{empty}");
    assert!(!b.has("[data-testid=org-row]"));
    let link = b.run(
        "return document.querySelector('[data-testid=install-link]').href;",
        json!([]),
    );
    assert_eq!(
        link,
        format!("{}/apps/{APP_SLUG}/installations/new", s.fake.base_url()).as_str()
    );
    shot(s, &b, "orgs-empty");

    // GitHub failing: the transient message (not "install the app", not "sign in").
    *mode.lock().unwrap() = Orgs::Unavailable;
    b.click("[data-testid=refresh]");
    let failure = b.wait_text(".failure.transient", "having trouble");
    assert!(!failure.contains("Install"), "{failure}");
    assert!(!b.has("[data-testid=empty]"));
    shot(s, &b, "orgs-transient");

    // GitHub recovers: Refresh shows the list again.
    *mode.lock().unwrap() = Orgs::ThreePages;
    b.click("[data-testid=refresh]");
    b.wait("[data-testid=org-row]");
    assert!(!b.has(".failure"));
    assert_eq!(b.count("[data-testid=org-row]"), 200);
}

/// At 360 × 740 the page does not scroll sideways, and Tab reaches each of `controls` (by
/// `data-testid`) in the page's own order.
#[track_caller]
fn at_360(b: &Browser, page: &str, controls: &[&str]) {
    b.resize(360, 740);
    let started = Instant::now();
    loop {
        let (scroll, viewport) = b.widths();
        if scroll <= 360 && scroll <= viewport {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{page} scrolls sideways at 360 px: scrollWidth {scroll}, viewport {viewport}; \
             past the edge: {}",
            b.run(
                "const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')]\
                 .filter(e => e.getBoundingClientRect().right > w + 0.5).slice(0, 8)\
                 .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ');",
                json!([])
            )
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let path = b.tab_path(40);
    for c in controls {
        assert!(
            path.iter().any(|p| p == c),
            "{page}: Tab never reaches {c}: {path:?}"
        );
    }
}

/// A repository as GitHub lists it to a user (`/user/installations/{id}/repositories`).
fn user_repo(id: u64, full_name: &str, private: bool) -> Value {
    let mut r =
        example("apps/list-installation-repos-for-authenticated-user")["repositories"][0].clone();
    r["id"] = json!(id);
    r["node_id"] = json!(format!("R_{id}"));
    r["name"] = json!(full_name.split('/').nth(1).unwrap());
    r["full_name"] = json!(full_name);
    r["private"] = json!(private);
    r["archived"] = json!(false);
    r["default_branch"] = json!("main");
    r
}

/// Clicks Refresh until `css` says `needle` (a deployment settles in the background).
fn refresh_until(b: &Browser, refresh: &str, css: &str, needle: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        b.click(refresh);
        std::thread::sleep(Duration::from_millis(500));
        let t = b.text(css);
        if t.contains(needle) {
            return t;
        }
        assert!(
            started.elapsed() < within,
            "{css} never said {needle:?}: {:?}",
            b.text("main")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn a_private_repository_and_branch_become_a_project_that_deploys_on_push(s: &Shared) {
    use crate::deploy::{push, report, tenant, Deployer, HOOK_SECRETS};
    use crate::github_handlers::{github_repo, set_installation_repos};

    // An installation (a tenant of its own app) reaching one private repository, with 150
    // branches: two pages of the branches route.
    let t = tenant(s);
    let mut private = github_repo(t.repo_id, &t.full_name, &format!("R_{}", t.repo_id));
    private["private"] = json!(true);
    set_installation_repos(t.installation, vec![private]);
    let branches = crate::projects::script_branches(&s.fake, t.installation, &t.full_name, 150);
    let branch = branches[120].clone();
    let deployer = Deployer::start();

    // A person who is an admin by team membership; GitHub lists them that installation and
    // its private repository.
    let login = format!("e2e-console-maker-{}", unique_id());
    let member = login.clone();
    s.fake.on(
        Match::operation("teams/get-membership-for-user-in-org"),
        Respond::with(move |req| {
            req.path
                .ends_with(&format!("/memberships/{member}"))
                .then(|| {
                    Reply::json(
                        200,
                        json!({"url": "https://api.github.com/teams/1/memberships/x",
                    "role": "member", "state": "active"}),
                    )
                })
        }),
        Times::Always,
    );
    let (b, token) = browser_as(s, &login, "#/projects");
    let (owner, inst) = (
        t.full_name.split('/').next().unwrap().to_owned(),
        t.installation,
    );
    let mine = token.clone();
    s.fake.on(
        Match::operation("apps/list-installations-for-authenticated-user"),
        Respond::with(move |req| {
            (bearer(req)? == mine).then(|| {
                let i = installation(inst, &owner, "Organization", APP_SLUG);
                Reply::json(200, json!({"total_count": 1, "installations": [i]}))
            })
        }),
        Times::Always,
    );
    let row = user_repo(t.repo_id, &t.full_name, true);
    s.fake.on(
        Match::operation("apps/list-installation-repos-for-authenticated-user"),
        Respond::with(move |req| {
            (bearer(req)? == token).then(|| {
                Reply::json(
                    200,
                    json!({"total_count": 1, "repositories": [row.clone()]}),
                )
            })
        }),
        Times::Always,
    );

    // New Project: installation → repository (marked private) → branch (from the second
    // page of the picker) → the deploy hook.
    b.click("[data-testid=new-project]");
    let name = format!("Console deploy {}", unique_id());
    b.type_into("input[name=name]", &name);
    b.click(&format!("select[name=installation] option[value='{inst}']"));
    let choice = b.wait_text("[data-testid=repo-choice]", &t.full_name);
    assert!(choice.contains("private"), "{choice}");
    b.click("[data-testid=repo-choice]");
    b.wait("select[name=branch] option[value=main]");
    assert_eq!(b.count("select[name=branch] option"), 100);
    assert!(!b.has(&format!("select[name=branch] option[value='{branch}']")));
    b.click("[data-testid=more-branches]");
    b.click(&format!("select[name=branch] option[value='{branch}']"));
    assert_eq!(b.count("select[name=branch] option"), 150);
    assert!(
        !b.has("[data-testid=more-branches]"),
        "the last page has no next"
    );
    b.type_into("input[name=hook-url]", &deployer.url());
    shot(s, &b, "new-project");
    b.click("form[aria-label='New project'] button[type=submit]");

    // The project's page: the source, the hook secret shown this once.
    let source = b.wait_text("[data-testid=source]", &t.full_name);
    assert!(source.contains(&branch), "{source}");
    let secret = b.text("[data-testid=hook-secret] code.secret");
    assert!(secret.starts_with("ghpdh_"), "{secret}");
    HOOK_SECRETS.lock().unwrap().push(secret.clone());
    let slug = b.current_url().rsplit('/').next().unwrap().to_owned();

    // Approve: the repository ghplane created in the org is shown.
    b.click("[data-testid=advance]");
    b.wait_text("[data-testid=status]", "interviewing");
    b.click("[data-testid=approve]");
    let report_text = b.wait_text("[data-testid=approve-report]", "Created");
    let created = s
        .api
        .admin("GET", &format!("/projects/{slug}"), None)
        .json();
    let created = created["githubRepo"]["fullName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(report_text.contains(&created), "{report_text}");
    assert!(b
        .wait_text("[data-testid=repo]", &created)
        .contains("created on approval"));

    // A signed push to the branch: the deployment runs, the deployer reports success, and
    // the page shows it with its outcome; the push's delivery says why it deployed.
    let sha = crate::deploy::new_sha();
    push(s, &t, &branch, &sha);
    deployer.wait_for(1, Duration::from_secs(40));
    assert_eq!(report(s, &slug, 1, &secret, "success").status, 200);
    let outcome = refresh_until(
        &b,
        "[data-testid=refresh-deployments]",
        "[data-testid=deployment-outcome]",
        "deployed",
        Duration::from_secs(30),
    );
    assert!(outcome.contains("deployed"), "{outcome}");
    let row = b.text("[data-testid=deployment-row]");
    assert!(
        row.contains(&sha[..7]) && row.contains("octo-pusher"),
        "{row}"
    );
    let commit = b.run(
        "return document.querySelector('[data-testid=deployment-row] a').href;",
        json!([]),
    );
    assert_eq!(
        commit,
        format!("https://github.com/{}/commit/{sha}", t.full_name).as_str()
    );
    b.wait_text("[data-testid=delivery-row]", "push");
    assert_eq!(b.text("[data-testid=delivery-why]"), "deployment #1");

    // Redeploy the branch head: a second deployment of the same commit, triggered "redeploy".
    crate::deploy::script_branch_head(s, &t.full_name, &branch, &sha);
    b.click("[data-testid=redeploy]");
    let said = b.wait_text("[data-testid=redeploy-result]", "deployment #2");
    assert!(said.contains(&sha[..7]), "{said}");
    deployer.wait_for(2, Duration::from_secs(30));
    b.wait_text("[data-testid=deployment-trigger]", "redeploy");
    assert_eq!(report(s, &slug, 2, &secret, "success").status, 200);

    // The hook secret is gone once the page is left.
    b.click("nav a[href='#/projects']");
    b.click(&format!("a[href='#/projects/{slug}']"));
    b.wait("[data-testid=source]");
    assert!(!b.has("[data-testid=hook-secret]"));
    let shown = b.run(
        "return document.documentElement.outerHTML.includes(arguments[0]);",
        json!([secret]),
    );
    assert_eq!(shown, json!(false), "the hook secret is still in the page");
    b.wait("[data-testid=delivery-row]");
    b.run(
        "document.getElementById('source-title').scrollIntoView();",
        json!([]),
    );
    shot(s, &b, "project-deployed");

    // At 360 px: no sideways scroll on the project, the projects list and the
    // organisations; the main controls are reachable by Tab.
    at_360(&b, "project", &["refresh-deployments", "input:override"]);
    b.goto(&format!("{}/#/projects", s.worker.base_url()));
    b.wait("[data-testid=project-row]");
    at_360(&b, "projects", &["new-project"]);
    b.goto(&format!("{}/#/orgs", s.worker.base_url()));
    b.wait("[data-testid=org-row]");
    at_360(&b, "organisations", &["refresh"]);
}
