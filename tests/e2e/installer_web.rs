//! The fake GitHub's side of the GitHub App Manifest flow, outside the REST description:
//! the web form at `/settings/apps/new` and `/organizations/{org}/settings/apps/new` (a
//! documented extension of the fake, see `FakeGithub::web`), and the conversion
//! `POST /app-manifests/{code}/conversions` answering GitHub's example with a fresh app per
//! code. A code converts once; a second conversion is a 404, as on GitHub.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::config::PRIVATE_KEY;
use crate::fake_github::{
    example, percent_decode, FakeGithub, Match, RecordedRequest, Reply, Respond, Times,
};
use crate::{unique_id, Setup};

pub const CLIENT_SECRET_PREFIX: &str = "manifest-client-secret-";
pub const WEBHOOK_SECRET_PREFIX: &str = "manifest-webhook-secret-";

/// The webhook secret GitHub gave the app `app_id` in its conversion.
pub fn webhook_secret(app_id: u64) -> String {
    format!("{WEBHOOK_SECRET_PREFIX}{app_id}")
}

struct Pending {
    manifest: Value,
    owner: Option<String>,
    used: bool,
}

static CODES: Mutex<Option<HashMap<String, Pending>>> = Mutex::new(None);

/// GitHub's documented manifest keys that must be present.
const REQUIRED: &[&str] = &[
    "name",
    "url",
    "redirect_url",
    "public",
    "default_permissions",
    "default_events",
];

fn form_field(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body).split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn check_manifest(m: &Value) -> Result<(), String> {
    for key in REQUIRED {
        if m.get(key).is_none_or(Value::is_null) {
            return Err(format!("manifest lacks {key}"));
        }
    }
    if !m["hook_attributes"]["url"].is_string() {
        return Err("manifest lacks hook_attributes.url".into());
    }
    let name = m["name"].as_str().ok_or("name is not a string")?;
    if name.is_empty() || name.len() > 34 {
        return Err(format!("name {name:?} is not 1-34 characters"));
    }
    if !m["public"].is_boolean()
        || !m["default_permissions"].is_object()
        || !m["default_events"].is_array()
    {
        return Err("public, default_permissions or default_events has the wrong type".into());
    }
    Ok(())
}

/// The manifest form: GitHub shows the app, the user confirms, and GitHub redirects to the
/// manifest's `redirect_url` with a one-time code and the state it was given.
fn manifest_form(req: &RecordedRequest, owner: Option<String>) -> Result<Reply, String> {
    let state = req.query_param("state").ok_or("no state in the query")?;
    let text = form_field(&req.body, "manifest").ok_or("no manifest field in the form")?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("manifest is not JSON: {e}"))?;
    check_manifest(&manifest)?;
    let code = format!("code{}x{}", unique_id(), std::process::id());
    let redirect = manifest["redirect_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    CODES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(
            code.clone(),
            Pending {
                manifest,
                owner,
                used: false,
            },
        );
    Ok(Reply::empty(302)
        .header("location", format!("{redirect}?code={code}&state={state}"))
        .header("content-type", "text/html; charset=utf-8"))
}

fn slugify(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub const SETUP: Setup = Setup {
    install,
    never_logged: &[CLIENT_SECRET_PREFIX, WEBHOOK_SECRET_PREFIX],
    ..Setup::NONE
};

pub fn install(fake: &FakeGithub) {
    fake.on(
        Match::web("POST", "/settings/apps/new"),
        Respond::checked(|req| manifest_form(req, None)),
        Times::Always,
    );
    fake.on(
        Match::web("POST", "/organizations/{org}/settings/apps/new"),
        Respond::checked(|req| {
            let org = req.path.split('/').nth(2).map(str::to_owned);
            manifest_form(req, org)
        }),
        Times::Always,
    );
    fake.on(Match::operation("apps/create-from-manifest"), Respond::with(|req| {
        let code = req.path.split('/').nth(2)?.to_owned();
        let mut codes = CODES.lock().unwrap();
        let pending = codes.get_or_insert_with(HashMap::new).get_mut(&code);
        let Some(p) = pending.filter(|p| !p.used) else {
            return Some(Reply::json(
                404,
                json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest", "status": "404"}),
            ));
        };
        p.used = true;
        let id = unique_id();
        let name = p.manifest["name"].as_str().unwrap_or("app").to_owned();
        let slug = slugify(&name);
        let mut body = example("apps/create-from-manifest");
        body["id"] = json!(id);
        body["slug"] = json!(slug);
        body["name"] = json!(name);
        body["client_id"] = json!(format!("Iv1.m{id}"));
        body["client_secret"] = json!(format!("{CLIENT_SECRET_PREFIX}{id}"));
        body["webhook_secret"] = json!(webhook_secret(id));
        body["pem"] = json!(PRIVATE_KEY);
        body["html_url"] = json!(format!("https://github.com/apps/{slug}"));
        body["owner"]["login"] = json!(p.owner.clone().unwrap_or_else(|| "octocat".into()));
        body["owner"]["type"] = json!(if p.owner.is_some() { "Organization" } else { "User" });
        body["permissions"] = p.manifest["default_permissions"].clone();
        body["events"] = p.manifest["default_events"].clone();
        Some(Reply::json(201, body))
    }), Times::Always);
}
