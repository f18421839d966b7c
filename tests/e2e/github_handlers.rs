//! Dynamic answers of the fake GitHub shared by every test: installation tokens that are
//! unique, expire when a test says so, and name their installation, so a later request shows
//! which tenant's token it carries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::fake_github::{example, FakeGithub, Match, Reply, Respond, Times};
use crate::Setup;

static MINTED: AtomicU64 = AtomicU64::new(1);
/// Seconds until expiry of the tokens minted for an installation (default: one hour).
static EXPIRY: Mutex<Option<HashMap<u64, i64>>> = Mutex::new(None);

pub const TOKEN_PREFIX: &str = "ghs_fake_";

/// Repositories an installation's token reaches, when a test says (default: `only-repo`).
static REPOS: Mutex<Option<HashMap<u64, Vec<Value>>>> = Mutex::new(None);
/// GitHub deployment ids, unique over the run.
static DEPLOYMENT_IDS: AtomicU64 = AtomicU64::new(7_000_000);

pub fn set_installation_repos(installation_id: u64, repos: Vec<Value>) {
    REPOS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(installation_id, repos);
}

pub fn set_token_lifetime(installation_id: u64, seconds: i64) {
    EXPIRY
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(installation_id, seconds);
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// GitHub's timestamp shape (RFC 3339, whole seconds, `Z`), on the core's calendar.
pub fn rfc3339(unix: i64) -> String {
    let (y, m, d) = ghplane_core::time::civil_from_days(unix.div_euclid(86_400));
    let rem = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The installation a fake token was minted for.
pub fn installation_of(token: &str) -> Option<u64> {
    token
        .strip_prefix(TOKEN_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
}

pub const SETUP: Setup = Setup {
    install,
    never_logged: &[TOKEN_PREFIX],
    ..Setup::NONE
};

pub fn install(fake: &FakeGithub) {
    fake.on(
        Match::operation("apps/create-installation-access-token"),
        Respond::with(|req| {
            let id: u64 = req.path.split('/').nth(3)?.parse().ok()?;
            let lifetime = EXPIRY
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(&id).copied())
                .unwrap_or(3600);
            let mut body = example("apps/create-installation-access-token");
            body["token"] = json!(format!(
                "{TOKEN_PREFIX}{id}_{}",
                MINTED.fetch_add(1, Ordering::Relaxed)
            ));
            body["expires_at"] = json!(rfc3339(now_unix() + lifetime));
            let asked = req.json();
            if let Some(perms) = asked.get("permissions") {
                body["permissions"] = perms.clone();
            }
            let repos: Vec<Value> = asked["repositories"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .map(|n| repo(id, n.as_str().unwrap_or("x")))
                        .collect()
                })
                .unwrap_or_default();
            body["repositories"] = json!(repos);
            body["repository_selection"] = json!(if repos.is_empty() { "all" } else { "selected" });
            Some(Reply::json(201, body))
        }),
        Times::Always,
    );
    fake.on(
        Match::operation("apps/list-repos-accessible-to-installation"),
        Respond::with(|req| {
            let token = req
                .header("authorization")?
                .strip_prefix("Bearer ")?
                .to_owned();
            let id = installation_of(&token)?;
            let repos = REPOS
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(&id).cloned())
                .unwrap_or_else(|| vec![repo(id, "only-repo")]);
            let mut body = example("apps/list-repos-accessible-to-installation");
            body["total_count"] = json!(repos.len());
            body["repositories"] = json!(repos);
            Some(Reply::json(200, body))
        }),
        Times::Always,
    );
    fake.on(
        Match::operation("repos/create-deployment"),
        Respond::with(|req| {
            let asked = req.json();
            let mut body = example("repos/create-deployment");
            let id = DEPLOYMENT_IDS.fetch_add(1, Ordering::Relaxed);
            body["id"] = json!(id);
            body["sha"] = asked["ref"].clone();
            body["ref"] = asked["ref"].clone();
            body["environment"] = asked["environment"].clone();
            body["url"] = json!(format!("https://api.github.com{}/{id}", req.path));
            Some(Reply::json(201, body))
        }),
        Times::Always,
    );
}

/// A repository of GitHub's example shape with the given id, name and node id.
pub fn github_repo(id: u64, full_name: &str, node_id: &str) -> Value {
    let mut r = example("apps/list-repos-accessible-to-installation")["repositories"][0].clone();
    r["id"] = json!(id);
    r["node_id"] = json!(node_id);
    r["name"] = json!(full_name.split('/').nth(1).unwrap());
    r["full_name"] = json!(full_name);
    r
}

/// GitHub's example repository, renamed to belong to the installation `id`.
pub fn repo(id: u64, name: &str) -> Value {
    let mut r = example("apps/list-repos-accessible-to-installation")["repositories"][0].clone();
    r["id"] = json!(id * 1000 + name.len() as u64);
    r["name"] = json!(name);
    r["full_name"] = json!(format!("tenant-{id}/{name}"));
    r
}
