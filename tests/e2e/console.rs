//! The admin console in a real browser: headless Chromium through chromedriver
//! ([`crate::webdriver`]) against the shared worker (`wrangler dev`, its static assets) and
//! the fake GitHub. A person signs in through GitHub's web flow, sees the organisations the
//! fake lists for them, creates a project with a repository chosen by hand, moves its spec
//! to review and approves it, and sees why no repository was created. Screenshots of each
//! screen go to `target/console-screenshots/` (`docs/console/` keeps copies).

use serde_json::json;

use crate::fake_github::{FakeGithub, Match, Reply, Respond, Times};
use crate::webdriver::Browser;
use crate::{unique_id, Setup, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[(
    "console::a_person_signs_in_and_approves_a_project_in_the_browser",
    a_person_signs_in_and_approves_a_project_in_the_browser,
)];

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
    shot(s, &b, "new-project");
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
