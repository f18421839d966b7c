//! Installers: a dedicated GitHub App per repository (created through GitHub's App Manifest
//! flow, driven in headless Chromium), mutually exclusive with org-level installations;
//! enrollment, misconfiguration, conflicts, uninstalling, and the admin CLI.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::api::Resp;
use crate::identity::{register_app, service_key, token};
use crate::installer_web::webhook_secret;
use crate::webhooks::{delivery_id, fixture, installation_created, post, post_json};
use crate::worker::{repo_root, ADMIN_TOKEN};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "installer::setup_page_in_chromium_registers_a_repo_app",
        setup_page_in_chromium_registers_a_repo_app,
    ),
    (
        "installer::callback_refuses_forged_used_and_spent_codes",
        callback_refuses_forged_used_and_spent_codes,
    ),
    (
        "installer::repo_installer_under_org_all_is_409_and_vice_versa",
        repo_installer_under_org_all_is_409_and_vice_versa,
    ),
    (
        "installer::concurrent_installers_exactly_one_wins",
        concurrent_installers_exactly_one_wins,
    ),
    (
        "installer::installation_covering_two_repositories_is_misconfigured",
        installation_covering_two_repositories_is_misconfigured,
    ),
    (
        "installer::repo_tenant_reaches_only_its_repository",
        repo_tenant_reaches_only_its_repository,
    ),
    (
        "installer::uninstall_purges_everything_and_is_idempotent",
        uninstall_purges_everything_and_is_idempotent,
    ),
    (
        "installer::installation_deleted_first_ends_the_same",
        installation_deleted_first_ends_the_same,
    ),
    (
        "installer::org_installer_enrolls_respecting_claims",
        org_installer_enrolls_respecting_claims,
    ),
    (
        "installer::cli_install_status_uninstall",
        cli_install_status_uninstall,
    ),
];

fn owner() -> String {
    format!("inst{}", unique_id())
}

fn create(s: &Shared, body: Value) -> Resp {
    s.api.admin("POST", "/api/installers", Some(&body))
}

/// A repo installer started through the API: its id.
pub(crate) fn repo_installer(s: &Shared, repo: &str) -> String {
    let r = create(s, json!({"mode": "repo", "repository": repo}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

/// An installer's status as the API answers it.
pub(crate) fn status(s: &Shared, id: &str) -> Value {
    let r = s.api.admin("GET", &format!("/api/installers/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

/// The setup page's form: where it posts, and the manifest it carries.
fn setup_form(s: &Shared, id: &str) -> (String, Value) {
    let page = s.api.send("GET", &format!("/setup/{id}"), &[], None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    let action = unescape(between(&html, "action=\"", "\""));
    let manifest = unescape(between(&html, "name=\"manifest\" value=\"", "\""));
    (action, serde_json::from_str(&manifest).unwrap())
}

/// What GitHub's form does with the manifest, without a browser: the fake redirects with a
/// code, and the redirect's target (the worker's callback) is returned as a path.
fn post_manifest(s: &Shared, action: &str, manifest: &Value) -> String {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .max_idle_connections(0)
        .build();
    let resp = match agent
        .post(action)
        .send_form(&[("manifest", &manifest.to_string())])
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("posting the manifest: {e}"),
    };
    assert_eq!(resp.status(), 302);
    let location = resp.header("location").unwrap().to_owned();
    location
        .strip_prefix(&s.api.base)
        .unwrap_or_else(|| panic!("redirect {location} is not to the worker"))
        .to_owned()
}

/// The whole manifest flow for installer `id`; returns the new app's id.
fn create_app(s: &Shared, id: &str) -> u64 {
    let (action, manifest) = setup_form(s, id);
    let callback = post_manifest(s, &action, &manifest);
    let page = s.api.send("GET", &callback, &[], None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("App created"), "{}", page.text());
    status(s, id)["appId"]
        .as_u64()
        .expect("app id after the callback")
}

/// GitHub's `installation.created` for a dedicated app, signed with its own secret.
fn install(s: &Shared, app: u64, installation: u64, owner: &str, repos: &[(u64, &str)]) -> Resp {
    let mut body = installation_created(app, installation, repos);
    body["installation"]["account"]["login"] = json!(owner);
    body["installation"]["account"]["type"] = json!("Organization");
    deliver(s, app, "installation", &body)
}

fn deliver(s: &Shared, app: u64, event: &str, body: &Value) -> Resp {
    post(
        &s.api,
        app,
        &webhook_secret(app),
        event,
        &delivery_id(),
        &serde_json::to_vec(body).unwrap(),
    )
}

/// An org-level app (registered by hand) installed on `owner` with `selection`.
fn org_installation(s: &Shared, owner: &str, all: bool, repos: &[(u64, &str)]) -> (u64, u64) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let mut body = installation_created(app, id, repos);
    body["installation"]["account"]["login"] = json!(owner);
    body["installation"]["account"]["type"] = json!("Organization");
    body["installation"]["repository_selection"] = json!(if all { "all" } else { "selected" });
    let r = post_json(&s.api, app, "installation", &body);
    assert_eq!(r.status, 202, "{}", r.text());
    (app, id)
}

fn issue_opened(installation: u64, repo_id: u64, repo: &str) -> Value {
    let mut body = fixture("issues", "opened.payload.json");
    body["installation"] = json!({"id": installation, "node_id": "x"});
    body["issue"]["id"] = json!(unique_id());
    body["repository"]["id"] = json!(repo_id);
    body["repository"]["full_name"] = json!(repo);
    body["repository"]["name"] = json!(repo.split('/').nth(1).unwrap());
    body["repository"]["owner"]["login"] = json!(repo.split('/').next().unwrap());
    body
}

fn read_only(repos: &[&str]) -> Value {
    json!({"repositories": repos, "permissions": {"contents": "read"}})
}

/// A repo installer whose app is created and installed on exactly its repository.
fn active_repo_tenant(s: &Shared) -> (String, String, u64, u64, u64) {
    let owner = owner();
    let repo = format!("{owner}/api");
    let id = repo_installer(s, &repo);
    let app = create_app(s, &id);
    let installation = unique_id();
    let repo_id = unique_id();
    let r = install(s, app, installation, &owner, &[(repo_id, &repo)]);
    assert_eq!(r.status, 202, "{}", r.text());
    (id, repo, app, installation, repo_id)
}

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("90")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium (make test installs it)")
}

fn setup_page_in_chromium_registers_a_repo_app(s: &Shared) {
    let owner = owner();
    let repo = format!("{owner}/web-app");
    let id = repo_installer(s, &repo);
    let url = format!("{}/setup/{id}", s.api.base);
    let out_dir = repo_root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    let profile = s.run_dir.join(format!("chromium-{id}"));

    // What the admin sees: saved for a human to look at.
    let shot = out_dir.join("installer-setup.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &profile,
        &[
            "--window-size=1100,1000",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(
        shot.exists() && std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("installer: setup page screenshot at {}", shot.display());

    // The form posts the manifest to (fake) GitHub, which redirects back with a code; the
    // page Chromium ends on is the callback's.
    let out = chromium(
        &profile,
        &[
            "--virtual-time-budget=20000",
            "--dump-dom",
            &format!("{url}?autosubmit=1"),
        ],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    std::fs::write(out_dir.join("installer-created.html"), dom.as_bytes()).unwrap();
    assert!(
        dom.contains("App created"),
        "Chromium did not end on the callback page:\n{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posted: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/organizations/{owner}/settings/apps/new"))
        .collect();
    assert_eq!(posted.len(), 1, "the browser posted the manifest once");
    assert!(posted[0]
        .header("content-type")
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));

    let st = status(s, &id);
    assert_eq!(st["phase"], "awaiting_installation", "{st}");
    let app = st["appId"].as_u64().unwrap();
    let registered = s.api.admin("GET", &format!("/api/apps/{app}"), None);
    assert_eq!(registered.status, 200);
    let registered = registered.json();
    assert_eq!(
        (
            registered["mode"].as_str(),
            registered["repository"].as_str()
        ),
        (Some("repo"), Some(repo.as_str()))
    );
    assert_eq!(registered["webhookSecret"]["set"], true);
    assert_eq!(registered["clientSecret"]["set"], true);
    assert!(st["installUrl"]
        .as_str()
        .unwrap()
        .ends_with("/installations/new"));
    assert!(st["nextStep"].as_str().unwrap().contains(&repo), "{st}");
    // The manifest GitHub received: exactly the README's permissions and events, this
    // worker's URLs, private.
    let form = String::from_utf8(posted[0].body.clone()).unwrap();
    let manifest = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("manifest="))
        .map(crate::fake_github::percent_decode)
        .unwrap_or_else(|| panic!("no manifest field in {form}"));
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["default_permissions"],
        json!({"contents": "write", "deployments": "write", "issues": "write",
               "metadata": "read", "pull_requests": "write"}),
        "{manifest}"
    );
    assert_eq!(
        manifest["default_events"],
        json!(["issues", "push", "repository"])
    );
    assert_eq!(manifest["public"], false);
    let base = s.worker.base_url();
    assert_eq!(
        manifest["hook_attributes"]["url"],
        format!("{base}/webhooks/github")
    );
    assert_eq!(manifest["redirect_url"], format!("{base}/setup/callback"));
    assert_eq!(manifest["setup_url"], format!("{base}/setup/{id}"));
    let page = s.api.send("GET", &format!("/setup/{id}"), &[], None);
    assert!(
        page.text().contains("awaiting_installation"),
        "{}",
        page.text()
    );
}

fn callback_refuses_forged_used_and_spent_codes(s: &Shared) {
    let owner = owner();
    let a = repo_installer(s, &format!("{owner}/a"));
    let (action, manifest) = setup_form(s, &a);
    let callback = post_manifest(s, &action, &manifest);
    let state = callback.split("state=").nth(1).unwrap().to_owned();
    let code = between(&callback, "code=", "&").to_owned();

    let forged = format!(
        "/setup/callback?code={code}&state={}",
        state.replace('.', "x")
    );
    let r = s.api.send("GET", &forged, &[], None);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("not issued by this ghplane"),
        "{}",
        r.text()
    );
    let r = s.api.send("GET", "/setup/callback?code=abc", &[], None);
    assert_eq!(r.status, 400);

    let ok = s.api.send("GET", &callback, &[], None);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let again = s.api.send("GET", &callback, &[], None);
    assert_eq!(again.status, 400, "a state is single-use");
    assert!(again.text().contains("already used"), "{}", again.text());

    // A fresh installer's genuine state with a code GitHub already converted: refused by
    // GitHub (404), and nothing is stored.
    let b = repo_installer(s, &format!("{owner}/b"));
    let (action_b, _) = setup_form(s, &b);
    let state_b = action_b.split("state=").nth(1).unwrap();
    let conversions = s.fake.requests_for("apps/create-from-manifest").len();
    let r = s.api.send(
        "GET",
        &format!("/setup/callback?code={code}&state={state_b}"),
        &[],
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("already used or has expired"),
        "{}",
        r.text()
    );
    assert!(s.fake.requests_for("apps/create-from-manifest").len() > conversions);
    let st = status(s, &b);
    assert_eq!(
        (st["phase"].as_str(), st["appId"].as_u64()),
        (Some("awaiting_app"), None)
    );
    // Its setup page issues a new state, which works with a new code.
    assert!(create_app(s, &b) > 0);
}

fn repo_installer_under_org_all_is_409_and_vice_versa(s: &Shared) {
    let owner = owner();
    org_installation(s, &owner, true, &[]);
    let r = create(
        s,
        json!({"mode": "repo", "repository": format!("{owner}/api")}),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "repository_covered_by_org"),
        "{}",
        r.text()
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("all repositories"));

    // Selected repositories: only those are covered.
    let other = self::owner();
    org_installation(s, &other, false, &[(unique_id(), &format!("{other}/web"))]);
    let r = create(
        s,
        json!({"mode": "repo", "repository": format!("{other}/web")}),
    );
    assert_eq!(r.code(), "repository_covered_by_org");
    repo_installer(s, &format!("{other}/api"));

    // Vice versa: an org installer for an org with a dedicated app, unless excluded.
    let r = create(s, json!({"mode": "org", "org": other}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "org_has_dedicated_repositories"),
        "{}",
        r.text()
    );
    let r = create(
        s,
        json!({"mode": "org", "org": other, "exclude": [format!("{other}/api")]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = create(
        s,
        json!({"mode": "org", "org": other, "exclude": [format!("{other}/api")]}),
    );
    assert_eq!(r.code(), "org_already_claimed");
}

fn concurrent_installers_exactly_one_wins(s: &Shared) {
    let repo = format!("{}/api", owner());
    let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let r = create(s, json!({"mode": "repo", "repository": repo}));
                    (r.status, r.code())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = statuses.iter().filter(|(st, _)| *st == 201).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .filter(|(st, _)| *st != 201)
            .all(|(st, c)| *st == 409 && c == "repository_claimed"),
        "{statuses:?}"
    );
}

fn installation_covering_two_repositories_is_misconfigured(s: &Shared) {
    let owner = owner();
    let repo = format!("{owner}/api");
    let id = repo_installer(s, &repo);
    let app = create_app(s, &id);
    let installation = unique_id();
    let other = format!("{owner}/secrets");
    let r = install(
        s,
        app,
        installation,
        &owner,
        &[(unique_id(), &repo), (unique_id(), &other)],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let st = status(s, &id);
    assert_eq!(st["phase"], "misconfigured", "{st}");
    assert!(
        st["misconfiguration"]
            .as_str()
            .unwrap()
            .contains("2 repositories"),
        "{st}"
    );
    assert!(
        st["serviceKey"].is_null(),
        "no credentials for a misconfigured tenant: {st}"
    );
    assert!(
        st["nextStep"]
            .as_str()
            .unwrap()
            .contains("Fix the installation"),
        "{st}"
    );

    let key = service_key(&s.api, installation);
    for body in [read_only(&["api"]), read_only(&[])] {
        let r = token(&s.api, installation, &key, &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "installation_misconfigured"),
            "{}",
            r.text()
        );
    }
    let path = format!("/app/installations/{installation}/access_tokens");
    assert!(
        !s.fake
            .requests_for("apps/create-installation-access-token")
            .iter()
            .any(|r| r.path == path),
        "GitHub was never asked for a token"
    );
    // Deliveries about its repositories are not acted on.
    let r = deliver(
        s,
        app,
        "issues",
        &issue_opened(installation, unique_id(), &other),
    );
    assert_eq!(r.json()["reason"], "installation_misconfigured");

    // Fixed on GitHub (the other repository removed): enrolled, credentials issued.
    let mut change = fixture("installation_repositories", "removed.payload.json");
    change["installation"] = json!({"id": installation, "app_id": app});
    change["repository_selection"] = json!("selected");
    change["repositories_added"] = json!([]);
    change["repositories_removed"] =
        json!([{"id": 1, "full_name": other, "name": "secrets", "node_id": "x", "private": true}]);
    let r = deliver(s, app, "installation_repositories", &change);
    assert_eq!(r.status, 202, "{}", r.text());
    let st = status(s, &id);
    assert_eq!(st["phase"], "active", "{st}");
    assert!(
        st["serviceKey"]["key"].as_str().is_none(),
        "a key already existed: none made: {st}"
    );
    let r = token(&s.api, installation, &key, &read_only(&["api"]));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn repo_tenant_reaches_only_its_repository(s: &Shared) {
    let (id, repo, app, installation, repo_id) = active_repo_tenant(s);
    let owner = repo.split('/').next().unwrap().to_owned();
    let st = status(s, &id);
    assert_eq!(st["phase"], "active", "{st}");
    assert_eq!(st["installationId"], installation);
    assert_eq!(st["claims"][0]["repository"], repo.as_str());
    assert_eq!(st["claims"][0]["repositoryId"], repo_id);
    let key = st["serviceKey"]["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    crate::identity::SERVICE_KEYS
        .lock()
        .unwrap()
        .push(key.clone());
    assert!(
        status(s, &id)["serviceKey"]["key"].is_null(),
        "shown once only"
    );
    let config = s.api.admin(
        "GET",
        &format!("/api/installations/{installation}/config"),
        None,
    );
    assert_eq!(config.json()["appId"], app);

    let r = token(&s.api, installation, &key, &read_only(&["api"]));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = token(
        &s.api,
        installation,
        &key,
        &read_only(&[&format!("{owner}/other")]),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "{}",
        r.text()
    );

    // The org-level installation later also gets the repository on GitHub.
    let (org_app, org_installation) =
        org_installation(s, &owner, false, &[(unique_id(), &format!("{owner}/web"))]);
    let r = token(&s.api, org_installation, &key, &read_only(&["api"]));
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "another tenant's key: {}",
        r.text()
    );
    let mut added = fixture("installation_repositories", "added.payload.json");
    added["installation"] = json!({"id": org_installation, "app_id": org_app});
    added["repository_selection"] = json!("selected");
    added["repositories_added"] =
        json!([{"id": repo_id, "full_name": repo, "name": "api", "node_id": "x", "private": true}]);
    added["repositories_removed"] = json!([]);
    let r = post_json(&s.api, org_app, "installation_repositories", &added);
    assert_eq!(r.status, 202, "{}", r.text());
    let st = status(s, &id);
    assert_eq!(st["conflicts"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["conflicts"][0]["orgInstallation"], org_installation);
    assert!(
        st["nextStep"].as_str().unwrap().contains("conflict"),
        "{st}"
    );

    let org_key = service_key(&s.api, org_installation);
    let r = s.api.admin(
        "PATCH",
        &format!("/api/installations/{org_installation}/config"),
        Some(&json!({"permissions": {"canProcessIssues": true, "canCreatePullRequests": true}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = token(&s.api, org_installation, &org_key, &read_only(&["api"]));
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "repository_withheld"),
        "{}",
        r.text()
    );
    let r = token(&s.api, org_installation, &org_key, &json!({}));
    assert_eq!(
        r.code(),
        "repository_withheld",
        "an unnarrowed token would reach it"
    );
    let r = token(&s.api, org_installation, &org_key, &read_only(&["web"]));
    assert_eq!(r.status, 200, "{}", r.text());
    // The org app's deliveries for it are ignored, the reason recorded.
    let r = post_json(
        &s.api,
        org_app,
        "issues",
        &issue_opened(org_installation, repo_id, &repo),
    );
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (202, Some("repository_served_by_dedicated_app"))
    );
    // The reason is in this test's own delivery log (the worker's output is shared by every
    // test, so it could not tell whose delivery was ignored).
    let log = s.api.admin(
        "GET",
        &format!("/api/installations/{org_installation}/deliveries"),
        None,
    );
    assert_eq!(log.status, 200, "{}", log.text());
    assert!(
        log.json()["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reason"] == "repository_served_by_dedicated_app"),
        "{}",
        log.text()
    );
    // Still served through its dedicated app.
    let r = deliver(
        s,
        app,
        "issues",
        &issue_opened(installation, repo_id, &repo),
    );
    assert_eq!(r.json()["status"], "ignored");
    assert_eq!(r.json()["reason"], "issues_not_enabled");
}

fn deletions(s: &Shared, installation: u64) -> usize {
    let path = format!("/app/installations/{installation}");
    s.fake
        .requests_for("apps/delete-installation")
        .iter()
        .filter(|r| r.path == path)
        .count()
}

fn uninstall_purges_everything_and_is_idempotent(s: &Shared) {
    let (id, repo, app, installation, repo_id) = active_repo_tenant(s);
    let key = status(s, &id)["serviceKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::identity::SERVICE_KEYS
        .lock()
        .unwrap()
        .push(key.clone());
    assert_eq!(
        token(&s.api, installation, &key, &read_only(&["api"])).status,
        200
    );

    let r = s
        .api
        .admin("DELETE", &format!("/api/installers/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["phase"], "uninstalled");
    let owner = repo.split('/').next().unwrap();
    assert!(
        body["deleteAppUrl"].as_str().unwrap().ends_with(&format!(
            "/organizations/{owner}/settings/apps/{}/advanced",
            body["appSlug"].as_str().unwrap()
        )),
        "{body}"
    );
    assert!(body["nextStep"]
        .as_str()
        .unwrap()
        .contains("Delete the app"));
    assert_eq!(
        deletions(s, installation),
        1,
        "GitHub's installation was deleted"
    );
    let path = format!("/app/installations/{installation}");
    let jwt = s
        .fake
        .requests_for("apps/delete-installation")
        .into_iter()
        .find(|r| r.path == path)
        .unwrap();
    assert!(
        jwt.header("authorization")
            .unwrap()
            .starts_with("Bearer ey"),
        "with an App JWT"
    );

    assert!(body["claims"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(
        s.api
            .admin(
                "GET",
                &format!("/api/installations/{installation}/config"),
                None
            )
            .status,
        404
    );
    assert_eq!(
        s.api
            .admin(
                "GET",
                &format!("/api/installations/{installation}/service-keys"),
                None
            )
            .status,
        404
    );
    // The service keys were purged, and keys are checked first: the key is unknown.
    let r = token(&s.api, installation, &key, &read_only(&["api"]));
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthorized"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.api.admin("GET", &format!("/api/apps/{app}"), None).status,
        404,
        "credentials purged"
    );
    // A later delivery for that installation is refused.
    let r = deliver(
        s,
        app,
        "issues",
        &issue_opened(installation, repo_id, &repo),
    );
    // The app's registration is gone, so its webhooks no longer verify in any isolate.
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unknown_app"),
        "{}",
        r.text()
    );

    let again = s
        .api
        .admin("DELETE", &format!("/api/installers/{id}"), None);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["uninstalledAt"], body["uninstalledAt"]);
    assert_eq!(
        deletions(s, installation),
        1,
        "a second uninstall is a no-op"
    );
    // The claim is gone: the repository may get a new dedicated app.
    repo_installer(s, &repo);
}

fn installation_deleted_first_ends_the_same(s: &Shared) {
    let (id, repo, app, installation, repo_id) = active_repo_tenant(s);
    let mut deleted = fixture("installation", "deleted.payload.json");
    deleted["installation"]["id"] = json!(installation);
    deleted["installation"]["app_id"] = json!(app);
    let r = deliver(s, app, "installation", &deleted);
    assert_eq!(r.status, 202, "{}", r.text());
    let st = status(s, &id);
    assert_eq!(st["phase"], "uninstalled", "{st}");
    assert!(st["claims"].as_array().unwrap().is_empty());
    assert_eq!(
        s.api
            .admin(
                "GET",
                &format!("/api/installations/{installation}/config"),
                None
            )
            .status,
        404
    );
    assert_eq!(
        s.api.admin("GET", &format!("/api/apps/{app}"), None).status,
        404
    );
    let r = deliver(
        s,
        app,
        "issues",
        &issue_opened(installation, repo_id, &repo),
    );
    // The app's registration is gone, so its webhooks no longer verify in any isolate.
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unknown_app"),
        "{}",
        r.text()
    );
    let r = s
        .api
        .admin("DELETE", &format!("/api/installers/{id}"), None);
    assert_eq!(
        (r.status, r.json()["phase"].as_str()),
        (200, Some("uninstalled"))
    );
    assert_eq!(
        deletions(s, installation),
        0,
        "GitHub had already deleted it"
    );
    repo_installer(s, &repo);
}

fn org_installer_enrolls_respecting_claims(s: &Shared) {
    let org = owner();
    let dedicated = format!("{org}/private-api");
    repo_installer(s, &dedicated);
    let r = create(
        s,
        json!({"mode": "org", "org": org, "exclude": [dedicated]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let web = format!("{org}/web");
    let r = s.api.admin(
        "POST",
        &format!("/api/installers/{id}/enroll"),
        Some(&json!({"repositories": [web]})),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "installer_not_installed")
    );

    let app = create_app(s, &id);
    assert_eq!(
        s.api.admin("GET", &format!("/api/apps/{app}"), None).json()["mode"],
        "org"
    );
    let installation = unique_id();
    let r = install(s, app, installation, &org, &[(unique_id(), &web)]);
    assert_eq!(r.status, 202, "{}", r.text());
    let st = status(s, &id);
    assert_eq!(
        (st["phase"].as_str(), st["installationId"].as_u64()),
        (Some("active"), Some(installation)),
        "{st}"
    );

    let docs = format!("{org}/docs");
    let r = s.api.admin(
        "POST",
        &format!("/api/installers/{id}/enroll"),
        Some(&json!({"repositories": [docs]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enrolled"], json!([docs]));
    let config = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{installation}/config"),
            None,
        )
        .json();
    assert!(
        config["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fullName"] == docs.as_str()),
        "{config}"
    );
    let r = s.api.admin(
        "POST",
        &format!("/api/installers/{id}/enroll"),
        Some(&json!({"repositories": [dedicated]})),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "repository_claimed"),
        "{}",
        r.text()
    );
    let r = create(s, json!({"mode": "repo", "repository": docs}));
    assert_eq!(r.code(), "repository_covered_by_org");
}

fn cli(s: &Shared, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ghplane"))
        .args(args)
        .env("GHPLANE_URL", &s.api.base)
        .env("GHPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run the ghplane CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_install_status_uninstall(s: &Shared) {
    let repo = format!("{}/api", owner());
    let (code, out, err) = cli(s, &["admin", "install", "--repo", &repo]);
    assert_eq!(code, 0, "{out}{err}");
    let id = between(&out, "installer: ", "\n").trim().to_owned();
    assert!(
        out.contains(&format!("setup URL: {}/setup/{id}", s.api.base)),
        "{out}"
    );
    assert!(out.contains("next step: Open"), "{out}");

    let (code, out, err) = cli(s, &["admin", "install", "--repo", &repo]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("repository_claimed"), "{err}");

    let (code, out, _) = cli(s, &["admin", "status", &id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("phase: awaiting_app") && out.contains(&format!("repository: {repo}")),
        "{out}"
    );

    let (code, out, err) = cli(s, &["admin", "uninstall", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("phase: uninstalled"), "{out}");
    let (code, out, _) = cli(s, &["admin", "status", &id]);
    assert!(code == 0 && out.contains("phase: uninstalled"), "{out}");

    let (code, _, err) = cli(s, &["admin", "status", "0000000000000000"]);
    assert_ne!(code, 0);
    assert!(err.contains("installer_not_found"), "{err}");
    let (code, _, err) = cli(s, &["admin", "enroll", &id]);
    assert_eq!(code, 2, "usage: {err}");
}
