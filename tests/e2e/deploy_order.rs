//! Push to deploy under real-world timing: late, redelivered, reordered and forced pushes
//! never roll a project back nor deploy twice; status reports are bound to their deployment
//! and to time; GitHub outages and rate limits during dispatch and mirroring heal without
//! locking the project. Each test has its own tenant, repository, project and deployer.

use std::time::{Duration, Instant};

use ghplane_core::deploy::report_signature;
use ghplane_core::time::parse_rfc3339_utc;
use serde_json::{json, Value};

use crate::api::Resp;
use crate::deploy::{
    deployment_ref, deployments, eventually, github_deployments, link, new_sha, reasons, report,
    send_report, slug, soon, tenant, unix_now, window, Deployer, Tenant,
};
use crate::fake_github::{Match, Reply, Times};
use crate::identity::APP_WEBHOOK_SECRET;
use crate::webhooks::{delivery_id, fixture, post};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "deploy_order::late_reordered_and_redelivered_pushes_never_roll_back",
        late_reordered_and_redelivered_pushes_never_roll_back,
    ),
    (
        "deploy_order::a_report_verifies_only_for_its_deployment_and_its_time",
        a_report_verifies_only_for_its_deployment_and_its_time,
    ),
    (
        "deploy_order::a_github_outage_during_dispatch_heals",
        a_github_outage_during_dispatch_heals,
    ),
    (
        "deploy_order::a_rate_limited_status_mirror_waits_a_minute",
        a_rate_limited_status_mirror_waits_a_minute,
    ),
    (
        "deploy_order::unknown_projects_are_not_found_on_every_project_route",
        unknown_projects_are_not_found_on_every_project_route,
    ),
];

const ZERO: &str = "0000000000000000000000000000000000000000";

/// A signed push of `before` → `after` on `branch`, under a fresh delivery id.
fn push_step(
    s: &Shared,
    t: &Tenant,
    branch: &str,
    before: &str,
    after: &str,
    forced: bool,
) -> (String, Resp) {
    let mut body = fixture("push", "with-new-branch.payload.json");
    body["ref"] = json!(format!("refs/heads/{branch}"));
    body["before"] = json!(before);
    body["after"] = json!(after);
    body["created"] = json!(before == ZERO);
    body["deleted"] = json!(false);
    body["forced"] = json!(forced);
    body["installation"] = json!({"id": t.installation});
    body["repository"]["id"] = json!(t.repo_id);
    body["repository"]["full_name"] = json!(t.full_name);
    body["pusher"]["name"] = json!("octo-pusher");
    body["head_commit"]["id"] = json!(after);
    body["head_commit"]["message"] = json!(format!("commit {}", &after[32..]));
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

#[track_caller]
fn assert_stale(s: &Shared, t: &Tenant, (delivery, r): &(String, Resp)) {
    assert_eq!(
        (r.json()["status"].as_str(), r.json()["reason"].as_str()),
        (Some("ignored"), Some("stale_push")),
        "{}",
        r.text()
    );
    assert_eq!(
        reasons(s, t.installation)[delivery],
        ("ignored".to_owned(), "stale_push".to_owned()),
        "the delivery log of {delivery}"
    );
}

#[track_caller]
fn assert_accepted((_, r): &(String, Resp)) {
    assert_eq!(r.json()["status"], "accepted", "{}", r.text());
}

/// The sha of each job the deployer received, in order.
fn deployed_shas(d: &Deployer) -> Vec<String> {
    (0..d.count())
        .map(|n| {
            d.call(n).json()["deployment"]["sha"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn late_reordered_and_redelivered_pushes_never_roll_back(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "order-");
    let secret = link(s, &t, &p, "main", &d.url());
    let sha: Vec<String> = (0..8).map(|_| new_sha()).collect();

    // S1, then S2: two deployments.
    assert_accepted(&push_step(s, &t, "main", ZERO, &sha[1], false));
    d.wait_for(1, soon());
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
    assert_accepted(&push_step(s, &t, "main", &sha[1], &sha[2], false));
    d.wait_for(2, soon());
    assert_eq!(report(s, &p, 2, &secret, "success").status, 200);

    // A stale redelivery (new delivery ids) of both pushes: nothing deploys.
    assert_stale(s, &t, &push_step(s, &t, "main", &sha[1], &sha[2], false));
    assert_stale(s, &t, &push_step(s, &t, "main", ZERO, &sha[1], false));

    // A burst S2 → S3 → S4, and inside it the push to S3 again (a second hook): one deploy, S4.
    assert_accepted(&push_step(s, &t, "main", &sha[2], &sha[3], false));
    assert_accepted(&push_step(s, &t, "main", &sha[3], &sha[4], false));
    assert_stale(s, &t, &push_step(s, &t, "main", &sha[2], &sha[3], false));
    d.wait_for(3, soon());
    assert_eq!(report(s, &p, 3, &secret, "success").status, 200);

    // Out of order: the push to S6 arrives before the push to S5; S6 deploys once.
    assert_accepted(&push_step(s, &t, "main", &sha[5], &sha[6], false));
    assert_stale(s, &t, &push_step(s, &t, "main", &sha[4], &sha[5], false));
    d.wait_for(4, soon());
    assert_eq!(report(s, &p, 4, &secret, "success").status, 200);

    // A force push back to S3 is a deliberate rollback: it deploys, once.
    assert_accepted(&push_step(s, &t, "main", &sha[6], &sha[3], true));
    d.wait_for(5, soon());
    assert_eq!(report(s, &p, 5, &secret, "success").status, 200);
    // Its redelivery, and the old pushes it rolled back, are stale.
    assert_stale(s, &t, &push_step(s, &t, "main", &sha[6], &sha[3], true));
    assert_stale(s, &t, &push_step(s, &t, "main", &sha[5], &sha[6], false));
    d.stays_at(5, window());

    let want: Vec<String> = [1, 2, 4, 6, 3].iter().map(|&n| sha[n].clone()).collect();
    assert_eq!(deployed_shas(&d), want);
    // GitHub saw exactly one Deployment per deploy, for this repository.
    let refs: Vec<String> = github_deployments(s, &t.full_name)
        .iter()
        .map(|r| r.json()["ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refs, want);
    // The project's history: five deployments, no duplicate, newest first.
    let list = deployments(s, &p);
    let history: Vec<(u64, String)> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_u64().unwrap(),
                d["sha"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = want
        .iter()
        .enumerate()
        .rev()
        .map(|(i, sha)| (i as u64 + 1, sha.to_string()))
        .collect();
    assert_eq!(history, expected);
    assert_eq!(list["running"], Value::Null);
    assert_eq!(list["pending"], Value::Null);
}

fn a_report_verifies_only_for_its_deployment_and_its_time(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "replay-");
    let secret = link(s, &t, &p, "main", &d.url());
    push_step(s, &t, "main", ZERO, &new_sha(), false);
    d.wait_for(1, soon());

    // The deployer's success report for deployment 1, as captured on the wire.
    let body = json!({"state": "success"}).to_string();
    let ts = unix_now().to_string();
    let sig = report_signature(
        secret.as_bytes(),
        &ts,
        &deployment_ref(&p, 1),
        body.as_bytes(),
    );
    let r = send_report(s, &format!("{p}.1"), &ts, &sig, &body);
    assert_eq!(r.status, 200, "{}", r.text());

    let second = new_sha();
    push_step(s, &t, "main", ZERO, &second, false);
    d.wait_for(2, soon());
    let running = || {
        let list = deployments(s, &p);
        (
            list["running"].as_u64(),
            list["deployments"][0]["state"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(running(), (Some(2), Some("queued".into())));

    // Replayed onto deployment 2: refused, nothing changes.
    let r = send_report(s, &format!("{p}.2"), &ts, &sig, &body);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid_signature"),
        "{}",
        r.text()
    );
    // Signed for deployment 2, but older than five minutes, or too far ahead.
    for offset in [-301, -3600, 400] {
        let old = (unix_now() + offset).to_string();
        let sig = report_signature(
            secret.as_bytes(),
            &old,
            &deployment_ref(&p, 2),
            body.as_bytes(),
        );
        let r = send_report(s, &format!("{p}.2"), &old, &sig, &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "report_expired"),
            "offset {offset}: {}",
            r.text()
        );
    }
    // No timestamp at all, or the body-only signature of old: refused.
    let r = s.api.send(
        "POST",
        &format!("/api/deployments/{p}.2/status"),
        &[
            ("content-type", "application/json"),
            (
                "x-ghplane-signature-256",
                &ghplane_core::deploy::signature(secret.as_bytes(), body.as_bytes()),
            ),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_signature"));
    assert_eq!(running(), (Some(2), Some("queued".into())));
    assert_eq!(d.count(), 2);

    // A fresh report for deployment 2 is taken.
    let r = report(s, &p, 2, &secret, "success");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(running(), (None, Some("success".into())));
}

fn a_github_outage_during_dispatch_heals(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "outage-");
    let secret = link(s, &t, &p, "main", &d.url());
    let path = format!("/repos/{}/deployments", t.full_name);

    // GitHub's token endpoint fails through the client's own retries: nothing was asked of
    // the deployments API yet, so the dispatch job tries again on its schedule and completes.
    let tokens = format!("/app/installations/{}/access_tokens", t.installation);
    s.fake.on(
        Match::operation_at("apps/create-installation-access-token", &tokens),
        Reply::json(503, json!({"message": "Service Unavailable"})),
        Times::N(4),
    );
    let first = new_sha();
    push_step(s, &t, "main", ZERO, &first, false);
    d.wait_for(1, soon());
    let job = d.call(0).json();
    assert_eq!(job["deployment"]["sha"], first);
    assert!(job["deployment"]["githubDeploymentId"].as_u64().is_some());
    let deploy_mints = s
        .fake
        .requests_for("apps/create-installation-access-token")
        .into_iter()
        .filter(|r| r.path == tokens && r.json()["permissions"] == json!({"deployments": "write"}))
        .count();
    assert_eq!(deploy_mints, 5, "four refused, then one minted");
    assert_eq!(github_deployments(s, &t.full_name).len(), 1);
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);

    // GitHub fails while creating the deployment (it may or may not have created it): the
    // deployment ends `error` with its reason, and the project is not left locked.
    s.fake.on(
        Match::operation_at("repos/create-deployment", &path),
        Reply::json(502, json!({"message": "Server Error"})),
        Times::Once,
    );
    push_step(s, &t, "main", &first, &new_sha(), false);
    eventually(soon(), "deployment 2 ends", || {
        deployments(s, &p)["deployments"][0]["state"] == "error"
    });
    let list = deployments(s, &p);
    let failed = &list["deployments"][0];
    assert_eq!(failed["id"], 2);
    assert_eq!(failed["outcome"], "dispatch_failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("GitHub did not create the deployment ("),
        "{failed}"
    );
    assert_eq!(list["running"], Value::Null);
    assert_eq!(list["jobs"], json!([]));
    assert_eq!(d.count(), 1, "no job without a GitHub deployment");

    // GitHub is back: the next push deploys.
    let next = new_sha();
    push_step(s, &t, "main", ZERO, &next, false);
    d.wait_for(2, soon());
    let job = d.call(1).json();
    assert_eq!(
        (&job["deployment"]["id"], &job["deployment"]["sha"]),
        (&json!(3), &json!(next))
    );
    assert_eq!(report(s, &p, 3, &secret, "success").status, 200);
    assert_eq!(
        github_deployments(s, &t.full_name).len(),
        3,
        "one per deploy, and the failed one"
    );
    d.stays_at(2, window());
}

fn a_rate_limited_status_mirror_waits_a_minute(s: &Shared) {
    let t = tenant(s);
    let d = Deployer::start();
    let p = slug(s, "ratelimit-");
    let secret = link(s, &t, &p, "main", &d.url());
    push_step(s, &t, "main", ZERO, &new_sha(), false);
    d.wait_for(1, soon());
    let github_id = d.call(0).json()["deployment"]["githubDeploymentId"]
        .as_u64()
        .unwrap();
    let statuses = format!("/repos/{}/deployments/{github_id}/statuses", t.full_name);
    let calls = || {
        s.fake
            .requests_for("repos/create-deployment-status")
            .into_iter()
            .filter(|r| r.path == statuses)
            .map(|r| r.json()["state"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<String>>()
    };
    // A 429 with neither Retry-After nor x-ratelimit-reset.
    s.fake.on(
        Match::operation_at("repos/create-deployment-status", &statuses),
        Reply::json(
            429,
            json!({"message": "You have exceeded a secondary rate limit."}),
        ),
        Times::Once,
    );
    assert_eq!(report(s, &p, 1, &secret, "in_progress").status, 200);
    eventually(Duration::from_secs(10), "the first status call", || {
        calls().len() == 1
    });
    let refused_at = Instant::now();
    // The job waits at least a minute, and says so.
    let mut job = Value::Null;
    eventually(Duration::from_secs(10), "the mirror job waits", || {
        let list = deployments(s, &p);
        let mirror = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["type"] == "mirror");
        job = mirror.cloned().unwrap_or_default();
        job["tries"] == 1
    });
    assert_eq!(job["deployment"], 1);
    let next = parse_rfc3339_utc(job["nextAttemptAt"].as_str().unwrap()).unwrap();
    let wait = next - unix_now();
    assert!(wait >= 55, "next attempt in {wait} s");
    // The later status of the same deployment waits behind it (GitHub shows the last one).
    assert_eq!(report(s, &p, 1, &secret, "success").status, 200);
    // After the minute both go, in order (a success sent at once would come before the retry).
    eventually(
        Duration::from_secs(120),
        "the statuses are mirrored",
        || calls().len() == 3,
    );
    assert!(
        refused_at.elapsed() >= Duration::from_secs(59),
        "retried after {:?}",
        refused_at.elapsed()
    );
    assert_eq!(calls(), ["in_progress", "in_progress", "success"]);
    eventually(Duration::from_secs(10), "the outbox empties", || {
        deployments(s, &p)["jobs"] == json!([])
    });
}

fn unknown_projects_are_not_found_on_every_project_route(s: &Shared) {
    let missing = format!("no-such-project-{}", unique_id());
    let t = tenant(s);
    let source = json!({"installationId": t.installation, "repoId": t.repo_id, "branch": "main"});
    let cases: [(&str, String, Option<Value>); 7] = [
        ("GET", format!("/projects/{missing}"), None),
        (
            "PATCH",
            format!("/projects/{missing}"),
            Some(json!({"description": "x"})),
        ),
        ("GET", format!("/projects/{missing}/deployments"), None),
        ("GET", format!("/projects/{missing}/source"), None),
        ("DELETE", format!("/projects/{missing}/source"), None),
        ("PUT", format!("/projects/{missing}/source"), Some(source)),
        ("POST", format!("/projects/{missing}/approve"), None),
    ];
    for (method, path, body) in &cases {
        let r = s.api.admin(method, path, body.as_ref());
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "project_not_found"),
            "{method} {path}: {}",
            r.text()
        );
    }
}
