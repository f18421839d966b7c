//! The console's Apps and Installers screens in a real browser (headless Chromium through
//! [`crate::webdriver`]): a registered app with its secrets only as set, rotating its webhook
//! secret (GitHub then signs with a new one that the page never shows), starting a per-repo
//! installer from the screen (its row, its setup link), its page, uninstalling it; a viewer
//! who sees none of those controls; both screens at 360 px wide.

use serde_json::json;

use crate::admin_access::sign_in_as;
use crate::console_admin::{
    fits_and_is_labelled, no_write_buttons, open_listed, shot, sign_in_admin, SESSION_COOKIE,
    VIEWER,
};
use crate::identity::{app_jwt_issuer, register_app, APP_WEBHOOK_SECRET, CLIENT_SECRET};
use crate::installer::status as installer_status;
use crate::webdriver::Browser;
use crate::webhooks::{delivery_id, post};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "console_apps::an_admin_sees_an_app_as_set_and_rotates_its_webhook_secret",
        an_admin_sees_an_app_as_set_and_rotates_its_webhook_secret,
    ),
    (
        "console_apps::an_admin_starts_opens_and_uninstalls_a_repo_installer",
        an_admin_starts_opens_and_uninstalls_a_repo_installer,
    ),
    (
        "console_apps::a_viewer_sees_no_rotate_start_or_uninstall_control",
        a_viewer_sees_no_rotate_start_or_uninstall_control,
    ),
    (
        "console_apps::apps_and_installers_fit_360_px",
        apps_and_installers_fit_360_px,
    ),
];

const PING: &[u8] = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;

/// The app's stored secrets, none of which may reach the page.
const SECRETS: &[&str] = &[
    APP_WEBHOOK_SECRET,
    CLIENT_SECRET,
    "MIIEowIBAAKCAQEA",
    "PRIVATE KEY",
];

fn assert_no_secret(b: &Browser, more: &[&str]) {
    let html = b.html();
    for secret in SECRETS.iter().chain(more) {
        assert!(!html.contains(secret), "{secret} in the page");
    }
}

/// The webhook secrets ghplane sent GitHub for `app` (`PATCH /app/hook/config`, signed as it).
fn pushed_secrets(s: &Shared, app: u64) -> Vec<String> {
    let issuer = format!("Iv1.e2e{app}");
    s.fake
        .requests_for("apps/update-webhook-config-for-app")
        .into_iter()
        .filter(|r| app_jwt_issuer(r).as_deref() == Some(issuer.as_str()))
        .filter_map(|r| r.json()["secret"].as_str().map(str::to_owned))
        .collect()
}

/// A repo installer started through the API: its id.
fn repo_installer(s: &Shared) -> String {
    crate::installer::repo_installer(s, &format!("capps{}/api", unique_id()))
}

fn an_admin_sees_an_app_as_set_and_rotates_its_webhook_secret(s: &Shared) {
    let base = s.worker.base_url();
    let app = unique_id();
    register_app(&s.api, app);
    let b = Browser::open(1280, 900);
    sign_in_admin(&b, &base);

    // The list has the app; its page shows the secrets as set only.
    open_listed(&b, &base, "apps", "app-row", &app.to_string());
    b.wait_text("[data-testid=app]", &format!("ghplane-e2e-{app}"));
    assert!(b.text("[data-testid=app-private-key]").starts_with("set"));
    assert_eq!(b.text("[data-testid=app-client-secret]"), "set");
    assert_eq!(b.text("[data-testid=app-webhook-secret]"), "set");
    assert_no_secret(&b, &[]);
    let updated = b.text("[data-testid=app-updated]");

    // Rotating asks first; Cancel changes nothing.
    b.click("[data-testid=rotate]");
    b.wait_text("[data-testid=rotate-confirm]", "never shown");
    b.click("[data-testid=rotate-confirm] button:not([data-testid])");
    assert!(!b.has("[data-testid=rotate-confirm]"));
    assert!(pushed_secrets(s, app).is_empty());

    b.click("[data-testid=rotate]");
    b.click("[data-testid=confirm-rotate]");
    b.wait("[data-testid=rotated]");
    b.wait_text(
        "[data-testid=app-webhook-secret]",
        "previous one still verifies",
    );
    assert_ne!(b.text("[data-testid=app-updated]"), updated);
    let pushed = pushed_secrets(s, app);
    assert_eq!(pushed.len(), 1, "GitHub got the new secret once");
    let secret = &pushed[0];
    assert_no_secret(&b, &[secret]);
    let view = s.api.admin("GET", &format!("/api/apps/{app}"), None).json();
    assert!(view["webhookSecret"]["previousValidUntil"].is_string());

    // The worker verifies GitHub's deliveries with the new secret; the app's page lists them.
    let r = post(&s.api, app, secret, "ping", &delivery_id(), PING);
    assert_eq!(r.status, 202, "{}", r.text());
    b.refresh();
    b.wait_text("[data-testid=delivery-row]", "ping");
    assert_no_secret(&b, &[secret]);
    shot(&b, "apps");
}

fn an_admin_starts_opens_and_uninstalls_a_repo_installer(s: &Shared) {
    let base = s.worker.base_url();
    let repo = format!("capps{}/api", unique_id());
    let b = Browser::open(1280, 900);
    sign_in_admin(&b, &base);

    // Start one for a repository from the screen: progress, then the setup link (a new tab).
    b.goto(&format!("{base}/#/installers"));
    b.wait("[data-testid=start-installer]");
    b.type_into("input[name=repository]", &repo);
    b.click("[data-testid=start-installer]");
    b.wait("[data-testid=started]");
    let id = b.run(
        "return document.querySelector('[data-testid=started] a[href^=\"#/installers/\"]').getAttribute('href').split('/')[2];",
        json!([]),
    );
    let id = id.as_str().unwrap().to_owned();
    let setup = b.run(
        "const a = document.querySelector('[data-testid=started] [data-testid=setup-link]'); return [a.href, a.target];",
        json!([]),
    );
    assert!(
        setup[0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/setup/{id}")),
        "{setup}"
    );
    assert_eq!(setup[1], "_blank");
    let status = installer_status(s, &id);
    assert_eq!(
        (status["repository"].as_str(), status["phase"].as_str()),
        (Some(repo.as_str()), Some("awaiting_app"))
    );

    // Its row shows (newest first) with its target and phase.
    let row = format!("[data-installer-id='{id}']");
    let text = b.wait_text(&row, &repo);
    assert!(text.contains("awaiting_app"), "{text}");
    shot(&b, "installers");

    // Its page: status, the setup link, no claims yet, no conflicts.
    b.click(&format!("{row} a[href='#/installers/{id}']"));
    b.wait_text("[data-testid=installer-phase]", "awaiting_app");
    assert!(b.has("[data-testid=setup-link]"));
    assert!(b.text("main").contains("No conflicts."));

    // Uninstall asks first, then the installer is uninstalled (and says where the app goes).
    b.click("[data-testid=uninstall]");
    b.wait("[data-testid=uninstall-confirm]");
    b.click("[data-testid=confirm-uninstall]");
    b.wait_text("[data-testid=installer-phase]", "uninstalled");
    b.wait("[data-testid=uninstalled-at]");
    assert!(!b.has("[data-testid=uninstall]"));
    assert_eq!(installer_status(s, &id)["phase"], "uninstalled");
    b.click("a[href='#/installers']");
    b.wait_text(&row, "uninstalled");
}

fn a_viewer_sees_no_rotate_start_or_uninstall_control(s: &Shared) {
    let base = s.worker.base_url();
    let app = unique_id();
    register_app(&s.api, app);
    let id = repo_installer(s);

    let viewer = sign_in_as(s, VIEWER);
    let b = Browser::open(1280, 900);
    b.goto(&format!("{base}/openapi.json"));
    b.add_cookie(SESSION_COOKIE, &viewer.token);
    b.goto(&format!("{base}/#/apps/{app}"));
    assert_eq!(b.wait_text("[data-testid=login]", VIEWER), VIEWER);
    b.wait_text("[data-testid=app]", &format!("ghplane-e2e-{app}"));
    assert!(!b.has("[data-testid=rotate]") && !b.has("[data-testid=confirm-rotate]"));
    no_write_buttons(&b);

    b.click("a[href='#/installers']");
    b.wait("[data-testid=installer-row]");
    assert!(!b.has("[data-testid=start-installer]") && !b.has("form"));
    no_write_buttons(&b);
    b.goto(&format!("{base}/#/installers/{id}"));
    b.wait_text("[data-testid=installer-phase]", "awaiting_app");
    assert!(!b.has("[data-testid=uninstall]") && !b.has("[data-testid=confirm-uninstall]"));
    no_write_buttons(&b);
    assert_eq!(installer_status(s, &id)["phase"], "awaiting_app");
}

fn apps_and_installers_fit_360_px(s: &Shared) {
    let base = s.worker.base_url();
    let app = unique_id();
    register_app(&s.api, app);
    let id = repo_installer(s);
    let b = Browser::phone(360, 740);
    sign_in_admin(&b, &base);

    b.goto(&format!("{base}/#/apps"));
    b.wait("[data-testid=app-row]");
    fits_and_is_labelled(&b, "apps");
    b.goto(&format!("{base}/#/apps/{app}"));
    b.wait("[data-testid=app]");
    b.wait("[data-testid=rotate]");
    fits_and_is_labelled(&b, "an app");
    b.goto(&format!("{base}/#/installers"));
    b.wait("[data-testid=installer-row]");
    b.wait("[data-testid=start-installer]");
    fits_and_is_labelled(&b, "installers");
    b.click("input[name=mode][value=org]");
    b.wait("input[name=exclude]");
    fits_and_is_labelled(&b, "installers, org form");
    b.goto(&format!("{base}/#/installers/{id}"));
    b.wait("[data-testid=uninstall]");
    fits_and_is_labelled(&b, "an installer");
    shot(&b, "installer-narrow");
}
