//! The console's admin screens in a real browser (headless Chromium through
//! [`crate::webdriver`]): Tenants (a tenant's config with its secrets only as set, a service
//! key shown once and then never again, revoking it), Audit (admin actions with who did them,
//! mint decisions), a viewer's session that draws no write controls (and whose writes the API
//! refuses), and the screens at 360 px wide and by keyboard. The admin signs in through the
//! browser (GitHub's authorize page signs it in as [`crate::console::ADMIN`]); the viewer's
//! session is made through the API flow and handed to the browser as its cookie.

use serde_json::{json, Value};

use crate::config::{PRIVATE_KEY, WEBHOOK_SECRET};
use crate::console::ADMIN;
use crate::identity::{register_app, service_key, token, SERVICE_KEYS};
use crate::webdriver::{Browser, TAB};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "console_admin::an_admin_creates_copies_and_revokes_a_service_key_shown_once",
        an_admin_creates_copies_and_revokes_a_service_key_shown_once,
    ),
    (
        "console_admin::a_viewer_sees_no_write_controls_and_the_api_refuses_them",
        a_viewer_sees_no_write_controls_and_the_api_refuses_them,
    ),
    (
        "console_admin::tenants_and_audit_fit_360_px_and_work_by_keyboard",
        tenants_and_audit_fit_360_px_and_work_by_keyboard,
    ),
];

/// A viewer by login (`people::worker_vars` lists it).
pub const VIEWER: &str = "e2e-console-viewer";

pub const SESSION_COOKIE: &str = "__Host-ghplane_session";

/// Strings of the tenant's secrets that must never reach the page.
const SECRETS: &[&str] = &[WEBHOOK_SECRET, "MIIEowIBAAKCAQEA", "BEGIN RSA PRIVATE KEY"];

/// A screenshot under `target/console-screenshots/`; `docs/console/` keeps copies.
pub fn shot(b: &Browser, name: &str) {
    let dir = crate::worker::repo_root().join("target/console-screenshots");
    b.screenshot(&dir.join(format!("{name}.png")));
}

/// A tenant of a fresh app, with a private key and a webhook secret: its installation id and
/// account login.
fn tenant(s: &Shared) -> (u64, String) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let login = format!("console-tenant-{id}");
    let config = json!({
        "appId": app, "privateKey": PRIVATE_KEY, "webhookSecret": WEBHOOK_SECRET,
        "account": {"login": login, "id": id, "type": "Organization"},
        "repositories": [format!("{login}/api"), format!("{login}/web")],
        "permissions": {"canProcessIssues": true, "canCreatePullRequests": false, "maxContainersPerHour": 3}
    });
    let r = s.api.admin(
        "PUT",
        &format!("/api/installations/{id}/config"),
        Some(&config),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // The API's own answer never holds the secrets either.
    let got = s
        .api
        .admin("GET", &format!("/api/installations/{id}/config"), None);
    assert_eq!(got.status, 200, "{}", got.text());
    for secret in SECRETS {
        assert!(!got.text().contains(secret), "{secret} in the config reply");
    }
    assert_eq!(got.json()["privateKey"]["set"], true);
    (id, login)
}

/// Signs the browser in through GitHub's web flow (as [`ADMIN`]).
pub fn sign_in_admin(b: &Browser, base: &str) {
    b.goto(&format!("{base}/"));
    b.click("[data-testid=sign-in]");
    assert_eq!(b.wait_text("[data-testid=login]", ADMIN), ADMIN);
}

/// Pages through `#/tenants` until the tenant's row shows, and opens it.
fn open_from_list(b: &Browser, base: &str, id: u64) {
    open_listed(b, base, "tenants", "tenant-row", &id.to_string());
}

/// Pages through the list screen `#/<screen>` (rows `[data-testid=<row>]`) until the link
/// to `#/<screen>/<id>` shows, and opens it.
pub fn open_listed(b: &Browser, base: &str, screen: &str, row: &str, id: &str) {
    b.goto(&format!("{base}/#/{screen}"));
    let link = format!("a[href='#/{screen}/{id}']");
    for _ in 0..50 {
        b.wait(&format!("[data-testid={row}]"));
        if b.has(&link) {
            b.click(&link);
            return;
        }
        let more = b.run(
            "return !document.querySelector('[data-testid=next-page]').disabled;",
            json!([]),
        );
        assert_eq!(
            more,
            true,
            "{screen} {id} is on no page: {}",
            b.text("main")
        );
        b.click("[data-testid=next-page]");
    }
    panic!("{screen} {id} not found in 50 pages");
}

/// The text the browser's clipboard holds (null when the page may not read it).
fn clipboard(b: &Browser) -> Value {
    b.run_async(
        "const done = arguments[arguments.length - 1];
         Promise.race([navigator.clipboard.readText(), new Promise((r) => setTimeout(() => r(null), 3000))])
           .then(done, () => done(null));",
        json!([]),
    )
}

/// A write from the page itself (the browser's session cookie, same origin, JSON): its status.
fn fetch_status(b: &Browser, method: &str, path: &str) -> u64 {
    b.run_async(
        "const done = arguments[arguments.length - 1];
         fetch(arguments[1], {method: arguments[0], headers: {'content-type': 'application/json'},
           body: arguments[0] === 'DELETE' ? undefined : '{}'})
           .then((r) => done(r.status), (e) => done(String(e)));",
        json!([method, path]),
    )
    .as_u64()
    .unwrap_or_else(|| panic!("{method} {path} did not answer"))
}

fn no_secret_in_storage_or_url(b: &Browser, key: &str) {
    let kept = b.run(
        "return JSON.stringify([localStorage, sessionStorage, location.href, document.cookie]);",
        json!([]),
    );
    assert!(!kept.to_string().contains(key), "the key is kept: {kept}");
}

fn an_admin_creates_copies_and_revokes_a_service_key_shown_once(s: &Shared) {
    let base = s.worker.base_url();
    let (id, login) = tenant(s);
    let b = Browser::open(1280, 900);
    sign_in_admin(&b, &base);
    b.grant("clipboard-read");
    b.grant("clipboard-write");

    // The list shows the tenant; its page shows the config with the secrets as set only.
    open_from_list(&b, &base, id);
    let config = b.wait_text("[data-testid=config]", &login);
    assert!(
        b.text("[data-testid=private-key]").starts_with("set"),
        "{config}"
    );
    assert_eq!(b.text("[data-testid=webhook-secret]"), "set");
    let html = b.html();
    for secret in SECRETS {
        assert!(!html.contains(secret), "{secret} in the page");
    }
    b.goto(&format!("{base}/#/tenants"));
    b.wait("[data-testid=tenant-row]");
    shot(&b, "tenants");

    // A new key is shown once, with Copy.
    b.goto(&format!("{base}/#/tenants/{id}"));
    b.click("[data-testid=create-key]");
    let key = b.wait_text("[data-testid=new-key]", "ghpsk_");
    SERVICE_KEYS.lock().unwrap().push(key.clone());
    assert!(b
        .text("[data-testid=new-key-card]")
        .contains("will not be shown again"));
    b.click("[data-testid=copy-key]");
    b.wait("[data-testid=copied]");
    let said = b.text("[data-testid=copied]");
    let copied = clipboard(&b);
    let selected = b.run("return String(window.getSelection());", json!([]));
    assert!(
        copied == json!(key) || selected == json!(key),
        "{said:?}: neither the clipboard ({copied}) nor the selection ({selected}) holds the key"
    );
    // The screenshot is kept in docs/: the key is blurred for it (a style, not the text).
    let key_style = "document.querySelector('[data-testid=new-key]').style.filter = arguments[0];";
    b.run(key_style, json!(["blur(6px)"]));
    shot(&b, "tenant");
    b.run(key_style, json!([""]));
    no_secret_in_storage_or_url(&b, &key);

    // It is the listed key and it works for the tenant's workload.
    let listed = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/service-keys"),
            None,
        )
        .json();
    let key_id = listed["serviceKeys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed["serviceKeys"].as_array().unwrap().len(), 1);
    assert!(b.text("[data-testid=new-key-card]").contains(&key_id));
    let scoped = json!({"repositories": ["api"], "permissions": {"contents": "read"}});
    let minted = token(&s.api, id, &key, &scoped);
    assert_eq!(minted.status, 200, "{}", minted.text());

    // Leaving the page forgets it; so does a reload.
    b.click("a[href='#/tenants']");
    b.wait("[data-testid=tenant-row]");
    b.goto(&format!("{base}/#/tenants/{id}"));
    b.wait(&format!("[data-key-id='{key_id}']"));
    assert!(!b.html().contains(&key), "the key is shown again");
    assert!(!b.has("[data-testid=new-key]"));
    b.refresh();
    b.wait(&format!("[data-key-id='{key_id}']"));
    assert!(!b.html().contains(&key), "the key is shown after a reload");
    no_secret_in_storage_or_url(&b, &key);

    // Revoking asks first, then the key is gone from the list and refused by the API.
    b.click(&format!("[data-key-id='{key_id}'] [data-testid=revoke]"));
    b.click("[data-testid=confirm-revoke]");
    b.wait_text("main", "No service keys.");
    assert_eq!(token(&s.api, id, &key, &scoped).status, 401);

    // The audit lists the admin's writes with their login; the mint's section renders.
    b.goto(&format!("{base}/#/audit"));
    b.wait("[data-testid=admin-audit], [data-testid=tab-admin]");
    b.type_into("input[name=target]", &id.to_string());
    b.click("form[aria-label='Filter admin actions'] button[type=submit]");
    let audit = b.wait_text("[data-testid=admin-audit]", ADMIN);
    assert!(
        audit.contains("POST /api/installations/{installation_id}/service-keys"),
        "{audit}"
    );
    assert!(audit.contains("DELETE"), "{audit}");
    assert!(audit.contains("ADMIN_TOKEN"), "the config PUT: {audit}");
    shot(&b, "audit");
    b.click("[data-testid=tab-mint]");
    b.wait("[data-testid=mint-audit], [data-testid=mint-panel] .empty");
    assert!(b.has("select[name=mint-outcome]"));
}

fn a_viewer_sees_no_write_controls_and_the_api_refuses_them(s: &Shared) {
    let base = s.worker.base_url();
    let (id, _) = tenant(s);
    service_key(&s.api, id);
    let key_id = s
        .api
        .admin(
            "GET",
            &format!("/api/installations/{id}/service-keys"),
            None,
        )
        .json()["serviceKeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.api.admin(
        "POST",
        "/projects",
        Some(&json!({"name": format!("Viewer {}", unique_id())})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    let r = s.api.admin(
        "PATCH",
        &format!("/projects/{slug}"),
        Some(&json!({"status": "interviewing"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // The viewer's session, signed in through the API flow, becomes the browser's cookie.
    let viewer = crate::admin_access::sign_in_as(s, VIEWER);
    let b = Browser::open(1280, 900);
    // (Not the console's page: it would have asked who is signed in before the cookie.)
    b.goto(&format!("{base}/openapi.json"));
    b.add_cookie(SESSION_COOKIE, &viewer.token);
    b.goto(&format!("{base}/#/tenants/{id}"));
    assert_eq!(b.wait_text("[data-testid=login]", VIEWER), VIEWER);
    b.wait(&format!("[data-key-id='{key_id}']"));
    b.wait("[data-testid=config]");
    for control in ["create-key", "revoke", "confirm-revoke"] {
        assert!(!b.has(&format!("[data-testid={control}]")), "{control}");
    }
    no_write_buttons(&b);
    shot(&b, "viewer");

    b.click("a[href='#/projects']");
    b.wait("[data-testid=project-row]");
    assert!(!b.has("[data-testid=new-project]"));
    no_write_buttons(&b);
    b.goto(&format!("{base}/#/projects/{slug}"));
    b.wait_text("[data-testid=status]", "interviewing");
    assert!(!b.has("[data-testid=approve]") && !b.has("[data-testid=advance]"));
    no_write_buttons(&b);

    // The API refuses the same writes from this very session.
    let keys = format!("/api/installations/{id}/service-keys");
    assert_eq!(fetch_status(&b, "POST", &keys), 403);
    assert_eq!(fetch_status(&b, "DELETE", &format!("{keys}/{key_id}")), 403);
    assert_eq!(
        fetch_status(&b, "POST", &format!("/projects/{slug}/approve")),
        403
    );
    let still = s.api.admin("GET", &keys, None).json();
    assert_eq!(still["serviceKeys"].as_array().unwrap().len(), 1);
}

/// No button in the screen reads as a write (create, revoke, approve, rotate, …).
pub fn no_write_buttons(b: &Browser) {
    let labels = b.run(
        "return [...document.querySelectorAll('main button')].map((e) => e.textContent + ' ' + (e.getAttribute('aria-label') || ''));",
        json!([]),
    );
    let writes = [
        "create",
        "revoke",
        "approve",
        "rotate",
        "redeploy",
        "new ",
        "delete",
        "uninstall",
    ];
    for label in labels.as_array().unwrap() {
        let l = label.as_str().unwrap_or_default().to_lowercase();
        assert!(
            !writes.iter().any(|w| l.contains(w)),
            "a viewer sees {l:?} on {}",
            b.current_url()
        );
    }
}

/// The page is no wider than the screen, and every control in it has a name.
pub fn fits_and_is_labelled(b: &Browser, what: &str) {
    let wide = b.run("return document.documentElement.scrollWidth;", json!([]));
    let widest = b.run(
        "return [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 360)
           .slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
        json!([]),
    );
    assert!(
        wide.as_u64().unwrap() <= 360,
        "{what}: {wide} px wide on a 360 px screen: {widest}"
    );
    let unnamed = b.run(
        "return [...document.querySelectorAll('button, input, select, a')].filter((e) =>
           !(e.textContent.trim() || e.getAttribute('aria-label') || e.closest('label'))).map((e) => e.outerHTML);",
        json!([]),
    );
    assert_eq!(unnamed, json!([]), "{what}: controls without a name");
}

fn tenants_and_audit_fit_360_px_and_work_by_keyboard(s: &Shared) {
    let base = s.worker.base_url();
    let (id, login) = tenant(s);
    let b = Browser::phone(360, 740);
    sign_in_admin(&b, &base);
    assert_eq!(b.run("return screen.width;", json!([])), 360);

    b.goto(&format!("{base}/#/tenants"));
    b.wait("[data-testid=tenant-row]");
    fits_and_is_labelled(&b, "tenants");
    b.goto(&format!("{base}/#/tenants/{id}"));
    b.wait_text("[data-testid=config]", &login);
    b.wait("[data-testid=create-key]");
    fits_and_is_labelled(&b, "a tenant");
    b.goto(&format!("{base}/#/audit"));
    b.wait("[data-testid=admin-audit], .empty");
    fits_and_is_labelled(&b, "audit");
    b.click("[data-testid=tab-mint]");
    b.wait("[data-testid=mint-audit], [data-testid=mint-panel] .empty");
    fits_and_is_labelled(&b, "mint audit");

    // The create-key control is reached by Tab from the top of the tenant's page.
    b.goto(&format!("{base}/#/tenants/{id}"));
    b.wait("[data-testid=create-key]");
    b.run(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    );
    let focused = || {
        b.run(
            "return document.activeElement && document.activeElement.dataset.testid || null;",
            json!([]),
        )
    };
    let mut presses = 0;
    while focused() != json!("create-key") {
        presses += 1;
        assert!(presses <= 30, "create-key is not reached by Tab");
        b.press(TAB);
    }
    shot(&b, "tenant-narrow");
}
