//! Hostile input and secrets: bodies capped while streaming on every route, the token
//! route deciding on bytes, the mint audit no stranger can write, and keys that really
//! rotate (`POST /api/admin/reseal`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Api;
use crate::identity::{register_app, service_key, token, APP_WEBHOOK_SECRET};
use crate::webhooks::{delivery_id, issue_opened, post, webhook_tenant, FAIL_FIRST};
use crate::worker::{Worker, WorkerOptions, ADMIN_TOKEN};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[
    (
        "hostile::chunked_bodies_over_the_cap_are_refused_while_streaming",
        chunked_bodies_over_the_cap_are_refused_while_streaming,
    ),
    (
        "hostile::a_chunked_token_scope_is_honoured",
        a_chunked_token_scope_is_honoured,
    ),
    (
        "hostile::forged_mint_requests_are_counted_never_stored",
        forged_mint_requests_are_counted_never_stored,
    ),
    (
        "hostile::encryption_key_rotation_finishes_with_a_reseal",
        encryption_key_rotation_finishes_with_a_reseal,
    ),
    (
        "hostile::no_test_switch_in_src_or_readme",
        no_test_switch_in_src_or_readme,
    ),
    (
        "hostile::a_500_logs_its_cause_once_and_answers_none",
        a_500_logs_its_cause_once_and_answers_none,
    ),
];

const BIG: usize = 30 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// What a streaming upload saw: the status, and how much had been sent when it came.
struct Upload {
    status: u16,
    body: String,
    sent_when_answered: usize,
    finished_sending: bool,
}

/// Posts `total` bytes of JSON-ish padding with `Transfer-Encoding: chunked` (no length),
/// reading the answer while the upload is still being written.
fn chunked_upload(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    total: usize,
) -> Upload {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut w = stream.try_clone().unwrap();
        let (sent, finished) = (sent.clone(), finished.clone());
        thread::spawn(move || {
            let mut chunk = vec![b' '; CHUNK];
            chunk[0] = b'[';
            let frame = |data: &[u8]| {
                let mut f = format!("{:x}\r\n", data.len()).into_bytes();
                f.extend_from_slice(data);
                f.extend_from_slice(b"\r\n");
                f
            };
            let first = frame(&chunk);
            chunk[0] = b' ';
            let rest = frame(&chunk);
            let mut n = 0;
            while n < total {
                let f = if n == 0 { &first } else { &rest };
                if w.write_all(f).is_err() {
                    return;
                }
                n += CHUNK;
                sent.store(n, Ordering::SeqCst);
                // Paced like a real upload (about 30 MB/s), so "answered before the end" is
                // not a race with loopback speed in the last 5 MB over a 25 MB cap.
                thread::sleep(Duration::from_millis(2));
            }
            if w.write_all(b"0\r\n\r\n").is_ok() {
                finished.store(true, Ordering::SeqCst);
            }
        })
    };
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent_when_answered = None;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if sent_when_answered.is_none() {
                    sent_when_answered = Some(sent.load(Ordering::SeqCst));
                }
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.len() > 64 {
                    // Enough of the head and some body; the rest is not needed.
                    let text = String::from_utf8_lossy(&answer).to_string();
                    if text.contains("\"error\"") || text.len() > 2048 {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    let finished_sending = finished.load(Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Upload {
        status,
        body: text,
        sent_when_answered: sent_when_answered.unwrap_or(usize::MAX),
        finished_sending,
    }
}

/// Resident memory (KiB) of every workerd process in the worker's process group.
fn workerd_rss_kib(group: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some((comm_end, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let pgrp: u32 = fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0);
        if pgrp != group || !comm_end.contains("workerd") {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Chunked 30 MB bodies to a public route, the webhook route, the token route and an
/// admin route: 413 each, answered while the upload is still coming; ten at once leave the
/// worker answering and its memory nearly where it was.
fn chunked_bodies_over_the_cap_are_refused_while_streaming(s: &Shared) {
    let worker = Worker::start(
        &s.run_dir.join("hostile"),
        WorkerOptions::new(&s.fake.base_url()),
    );
    let api = Api::new(&worker.base_url());
    // Straight to workerd: wrangler's dev proxy cannot pass on an answer that comes before
    // the end of the body (see `Worker::runtime_url`).
    let runtime = worker.runtime_url();
    let app = unique_id();
    register_app(&api, app);
    let installation = unique_id();
    // Well-formed (the route reads the body only after this shape check), never issued.
    let key = format!("Bearer ghpsk_{installation}_0badc0de_{}", "a".repeat(64));
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let app_text = app.to_string();
    let delivery = delivery_id();
    let token_path = format!("/api/installations/{installation}/token");
    let config_path = format!("/api/installations/{installation}/config");
    let json_ct = ("content-type", "application/json");
    let targets: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "/api/integrations/github/start".into(),
            vec![(json_ct.0, json_ct.1.into())],
        ),
        (
            "/webhooks/github".into(),
            vec![
                (json_ct.0, json_ct.1.into()),
                ("x-github-event", "push".into()),
                ("x-github-delivery", delivery.clone()),
                (
                    "x-github-hook-installation-target-type",
                    "integration".into(),
                ),
                ("x-github-hook-installation-target-id", app_text.clone()),
                ("x-hub-signature-256", format!("sha256={}", "0".repeat(64))),
            ],
        ),
        (
            token_path.clone(),
            vec![
                (json_ct.0, json_ct.1.into()),
                ("authorization", key.clone()),
            ],
        ),
        (
            config_path.clone(),
            vec![
                (json_ct.0, json_ct.1.into()),
                ("authorization", admin.clone()),
            ],
        ),
    ];
    let send = |path: &str, headers: &[(&str, String)]| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The admin config is written with PUT; the others are POSTs.
        let method = if path.ends_with("/config") {
            "PUT"
        } else {
            "POST"
        };
        chunked_upload(&runtime, method, path, &h, BIG)
    };
    for (path, headers) in &targets {
        let u = send(path, headers);
        assert_eq!(
            u.status,
            413,
            "{path}: {}\nworker output:\n{}",
            u.body,
            worker.output()
        );
        assert!(u.body.contains("payload_too_large"), "{path}: {}", u.body);
        assert!(
            !u.finished_sending && u.sent_when_answered < BIG,
            "{path}: the 413 came only after the whole upload ({} bytes sent)",
            u.sent_when_answered
        );
    }
    // Nothing was stored by the refused admin write.
    assert_eq!(api.admin("GET", &config_path, None).status, 404);

    // Ten at once; the worker keeps answering, and its memory stays put.
    let group = worker.pid().expect("worker running");
    let before = workerd_rss_kib(group);
    assert!(before > 0, "no workerd process found in group {group}");
    let peak = Arc::new(AtomicUsize::new(before as usize));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(workerd_rss_kib(group) as usize, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let statuses: Vec<u16> = thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (path, headers) = &targets[i % targets.len()];
                let send = &send;
                scope.spawn(move || send(path, headers).status)
            })
            .collect();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            let r = api.send("GET", "/healthz", &[], None);
            assert_eq!(
                r.status, 200,
                "the worker stops answering under the uploads"
            );
            thread::sleep(Duration::from_millis(200));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(statuses.iter().all(|s| *s == 413), "{statuses:?}");
    assert_eq!(api.send("GET", "/healthz", &[], None).status, 200);
    assert_eq!(
        Api::new(&runtime).send("GET", "/healthz", &[], None).status,
        200
    );
    let grown_mib = (peak.load(Ordering::SeqCst) as u64).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 100,
        "workerd grew by {grown_mib} MiB during ten 30 MB uploads"
    );
    assert!(
        !worker.output().contains("Exceeded Memory Limit"),
        "{}",
        worker.output()
    );
}

/// A validly scoped body sent chunked narrows the token; an unscoped one is treated exactly
/// like the same body with a length.
fn a_chunked_token_scope_is_honoured(s: &Shared) {
    let app = unique_id();
    register_app(&s.api, app);
    let id = unique_id();
    let config = json!({"appId": app, "repositories": [format!("tenant-{id}/api"), format!("tenant-{id}/web")],
        "permissions": {"canProcessIssues": true, "canCreatePullRequests": true}});
    let r = s.api.admin(
        "PUT",
        &format!("/api/installations/{id}/config"),
        Some(&config),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let key = service_key(&s.api, id);
    let auth = format!("Bearer {key}");
    let chunked = |body: &Value| {
        let bytes = serde_json::to_vec(body).unwrap();
        let addr = s.api.base.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "POST /api/installations/{id}/token HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // In two chunks, so nothing can be read from a single write.
        let (a, b) = bytes.split_at(bytes.len() / 2);
        for part in [a, b] {
            stream
                .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .unwrap();
            stream.write_all(part).unwrap();
            stream.write_all(b"\r\n").unwrap();
        }
        stream.write_all(b"0\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = headers
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = if headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let scoped = json!({"repositories": ["api"], "permissions": {"contents": "read"}});
    let (status, narrowed) = chunked(&scoped);
    assert!(status == 200 || status == 201, "{status} {narrowed}");
    assert_eq!(
        narrowed["permissions"],
        json!({"contents": "read"}),
        "{narrowed}"
    );
    assert_eq!(
        narrowed["repositories"],
        json!([format!("tenant-{id}/api")]),
        "{narrowed}"
    );
    // An unscoped body: the same answer chunked and with a length.
    let unscoped = json!({});
    let (status, chunked_answer) = chunked(&unscoped);
    let with_length = token(&s.api, id, &key, &unscoped);
    assert_eq!(status, with_length.status, "{chunked_answer}");
    let strip = |mut v: Value| {
        for k in ["token", "expiresAt", "expires_at"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        v
    };
    assert_eq!(strip(chunked_answer), strip(with_length.json()));
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// 1,000 mint requests with a forged bearer token: no audit row holds any of them, the
/// denial counters show them, and the audit listing is what it was.
fn forged_mint_requests_are_counted_never_stored(s: &Shared) {
    let m = crate::mint::env(s);
    let marker = format!("forged{}", unique_id());
    let listing = || {
        let r = m
            .api
            .admin("GET", "/api/mint/audit?outcome=denied&limit=100", None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    let before_counter = crate::mint::denials(m, "malformed_jwt");
    let body = json!({"role": "coder", "repos": [format!("{marker}-repo")]}).to_string();
    let sent = AtomicUsize::new(0);
    thread::scope(|scope| {
        for t in 0..8 {
            let (body, sent, api) = (&body, &sent, &m.api);
            scope.spawn(move || {
                for i in 0..125 {
                    // A client IP of its own per request: the mint's rate limit is per IP.
                    let ip = format!("10.{}.{}.{}", 200 + t, i / 250, i % 250 + 1);
                    let r = api.send(
                        "POST",
                        "/v1/token",
                        &[
                            ("content-type", "application/json"),
                            ("cf-connecting-ip", &ip),
                            ("authorization", "Bearer x.y.z"),
                        ],
                        Some(body.as_bytes()),
                    );
                    assert_eq!(r.status, 401, "{}", r.text());
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(sent.load(Ordering::SeqCst), 1000);
    assert!(
        !listing().contains(&marker),
        "a forged request was stored in the audit"
    );
    let after_counter = crate::mint::denials(m, "malformed_jwt");
    assert!(
        after_counter >= before_counter + 1000,
        "{before_counter} -> {after_counter}"
    );
    let stats = m.api.admin("GET", "/api/mint/audit/stats", None).json();
    assert!(
        stats["unauthenticated"]["perMinute"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "malformed_jwt"),
        "{stats}"
    );
    assert!(!stats.to_string().contains(&marker));
}

/// `ENCRYPTION_KEY` K1 → K2 (+ previous K1) → reseal → K2 alone: tenants created under K1
/// keep working; without the reseal, K2 alone answers a clean 500.
fn encryption_key_rotation_finishes_with_a_reseal(s: &Shared) {
    const K1: &str = crate::worker::ENCRYPTION_KEY;
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let dir = s.run_dir.join("rotation");
    let app = unique_id();
    // The tenant's app is also the app admins sign in with, so sign-in needs its client
    // secret (sealed under K1) opened.
    let mut options = WorkerOptions::new(&s.fake.base_url());
    options.vars.extend([
        ("GITHUB_WEB_BASE".to_owned(), s.fake.base_url()),
        ("GITHUB_APP_ID".to_owned(), app.to_string()),
        ("GITHUB_APP_SLUG".to_owned(), format!("ghplane-e2e-{app}")),
    ]);
    let mut worker = Worker::start(&dir, options);
    let mut bases = Vec::new();
    let mut allow_callback = |base: String| {
        bases.push(format!("{base}/api/integrations/github/callback"));
        let callbacks: Vec<&str> = bases.iter().map(String::as_str).collect();
        s.fake.register_oauth_app(
            &format!("Iv1.e2e{app}"),
            crate::identity::CLIENT_SECRET,
            &callbacks,
        );
    };
    allow_callback(worker.base_url());
    let id = unique_id();
    let key;
    let admin;
    {
        let api = Api::new(&worker.base_url());
        register_app(&api, app);
        // An admin who signed in before the rotation (GitHub tokens sealed under K1).
        admin = sign_in(&api, &format!("e2e-rotation-{app}"));
        assert_eq!(signed_in_as(&api, &admin), format!("e2e-rotation-{app}"));
        let config = json!({"appId": app, "repositories": [format!("tenant-{id}/api")],
            "webhookSecret": "tenant-webhook-secret-rotation",
            "permissions": {"canProcessIssues": true, "canCreatePullRequests": true}});
        let r = api.admin(
            "PUT",
            &format!("/api/installations/{id}/config"),
            Some(&config),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        key = service_key(&api, id);
    }
    let works = |api: &Api| {
        let hook = post(
            api,
            app,
            APP_WEBHOOK_SECRET,
            "ping",
            &delivery_id(),
            br#"{"zen":"rotate"}"#,
        );
        assert_eq!(hook.status, 202, "webhook: {}", hook.text());
        let t = token(api, id, &key, &json!({"permissions": {"contents": "read"}}));
        assert!(t.status == 200 || t.status == 201, "token: {}", t.text());
        assert_eq!(
            api.admin("GET", &format!("/api/installations/{id}/config"), None)
                .status,
            200
        );
    };
    // K2 with K1 as the previous key: everything sealed under K1 still opens.
    worker.set_secret("ENCRYPTION_KEY", K2);
    worker.set_secret("ENCRYPTION_KEY_PREVIOUS", K1);
    worker.restart();
    allow_callback(worker.base_url());
    works(&Api::new(&worker.base_url()));

    // K2 alone before any reseal: a clean 500, no secret in the body.
    worker.remove_secret("ENCRYPTION_KEY_PREVIOUS");
    worker.restart();
    allow_callback(worker.base_url());
    {
        let api = Api::new(&worker.base_url());
        let hook = post(
            &api,
            app,
            APP_WEBHOOK_SECRET,
            "ping",
            &delivery_id(),
            br#"{"zen":"closed"}"#,
        );
        assert_eq!(hook.status, 500, "{}", hook.text());
        for secret in [APP_WEBHOOK_SECRET, K1, K2, "tenant-webhook-secret-rotation"] {
            assert!(!hook.text().contains(secret), "{}", hook.text());
        }
        assert_eq!(hook.json()["error"]["code"], "internal_error");
    }

    // Back to K2 + previous K1, reseal until done, then K2 alone.
    worker.set_secret("ENCRYPTION_KEY_PREVIOUS", K1);
    worker.restart();
    allow_callback(worker.base_url());
    {
        let api = Api::new(&worker.base_url());
        let mut cursor = Value::Null;
        let mut resealed = 0;
        let mut objects = 0;
        for _ in 0..50 {
            let r = api.admin(
                "POST",
                "/api/admin/reseal",
                Some(&json!({"cursor": cursor, "limit": 2})),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let b = r.json();
            assert_eq!(b["couldNotOpen"], 0, "{b}");
            resealed += b["resealed"].as_u64().unwrap();
            objects += b["objects"].as_u64().unwrap();
            if b["done"] == true {
                break;
            }
            cursor = b["nextCursor"].clone();
        }
        // The app (private key, webhook and client secrets), the tenant (its webhook
        // secret) and the admin (GitHub token and refresh token).
        assert!(
            resealed >= 6,
            "resealed {resealed} values in {objects} objects"
        );
        // Idempotent: a second run finds everything current.
        let again = api.admin("POST", "/api/admin/reseal", Some(&json!({"limit": 100})));
        assert_eq!(again.json()["resealed"], 0, "{}", again.text());
        assert!(again.json()["alreadyCurrent"].as_u64().unwrap() >= 6);
        assert_eq!(
            again.json()["enrolledOnUse"],
            json!(["installation", "user"])
        );
    }
    worker.remove_secret("ENCRYPTION_KEY_PREVIOUS");
    worker.restart();
    allow_callback(worker.base_url());
    let api = Api::new(&worker.base_url());
    works(&api);
    // Sign-in works (the app's client secret opens under K2 alone), and the admin who
    // signed in before the rotation is still signed in (their GitHub token opens).
    assert_eq!(signed_in_as(&api, &admin), format!("e2e-rotation-{app}"));
    let again = sign_in(&api, &format!("e2e-rotation-late-{app}"));
    assert_eq!(
        signed_in_as(&api, &again),
        format!("e2e-rotation-late-{app}")
    );
    worker.stop();
}

/// Signs `login` in through the worker at `api` and GitHub (the fake): the session's
/// `Cookie` header value.
fn sign_in(api: &Api, login: &str) -> String {
    let r = api.send(
        "POST",
        "/api/integrations/github/start",
        &[("content-type", "application/json")],
        Some(br#"{"return_to": "/settings/github"}"#),
    );
    assert_eq!(r.status, 200, "start: {}", r.text());
    let binding = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a binding cookie")
        .to_owned();
    let authorize = r.json()["authorize_url"].as_str().unwrap().to_owned();
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .max_idle_connections(0)
        .build();
    let location = match agent.get(&format!("{authorize}&login={login}")).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            assert_eq!(r.status(), 302, "GitHub's authorize page redirects back");
            r.header("location").unwrap_or("").to_owned()
        }
        Err(e) => panic!("authorize: {e}"),
    };
    let callback = location
        .strip_prefix(&api.base)
        .unwrap_or_else(|| panic!("redirected to {location}, not the worker"));
    let r = api.send("GET", callback, &[("cookie", &binding)], None);
    assert_eq!(r.status, 302, "callback: {}", r.text());
    r.header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// The login of the session `cookie`, after checking its GitHub token opened and served
/// the installations listing.
fn signed_in_as(api: &Api, cookie: &str) -> String {
    let r = api.send(
        "GET",
        "/api/integrations/github/status",
        &[("cookie", cookie)],
        None,
    );
    assert_eq!(r.status, 200, "status: {}", r.text());
    let b = r.json();
    assert_eq!(b["connected"], true, "{b}");
    assert!(b["installations"]["count"].is_u64(), "{b}");
    b["login"].as_str().unwrap().to_owned()
}

/// No test switch is compiled into, or documented for, a deployed worker.
fn no_test_switch_in_src_or_readme(_s: &Shared) {
    let root = crate::worker::repo_root();
    let out = std::process::Command::new("grep")
        .args(["-rn", "E2E_", "src", "README.md"])
        .current_dir(&root)
        .output()
        .expect("grep");
    assert!(
        out.stdout.is_empty(),
        "test switches found:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The worker's JSON log lines that `keep`, once at least one is written (then a moment more,
/// so that a second line would be seen too).
fn log_lines(s: &Shared, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    // An error line is coloured: the JSON is from the first `{` to the last `}`.
    let parse = |l: &str| serde_json::from_str::<Value>(l.get(l.find('{')?..=l.rfind('}')?)?).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .worker
        .output()
        .lines()
        .filter_map(parse)
        .any(|v| keep(&v))
    {
        assert!(
            Instant::now() < deadline,
            "no such line:\n{}",
            s.worker.output()
        );
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    s.worker
        .output()
        .lines()
        .filter_map(parse)
        .filter(|v| keep(v))
        .collect()
}

/// A 500 answers `internal_error` and "Something went wrong", nothing else; its cause
/// (`file:line` and detail) is written once, in one structured line. The failure comes from
/// test seams of the end-to-end build (`e2e-seams`): one in the worker's request handler,
/// one inside a Durable Object (the webhook's [`FAIL_FIRST`]).
fn a_500_logs_its_cause_once_and_answers_none(s: &Shared) {
    let generic = json!({"error": {"code": "internal_error", "message": "Something went wrong"}});
    let marker = format!("cause-{}", unique_id());
    let ray = format!("5e{}-AMS", unique_id());
    let r = s.api.send_unchecked(
        "GET",
        "/healthz",
        &[("x-ghplane-seam-fail", &marker), ("cf-ray", &ray)],
        None,
    );
    assert_eq!((r.status, r.json()), (500, generic.clone()), "{}", r.text());
    for (k, v) in &r.headers {
        assert!(!v.contains(&marker) && !v.contains(".rs"), "{k}: {v}");
    }
    let lines = log_lines(s, |v| v["request_id"] == ray.as_str());
    assert_eq!(lines.len(), 1, "one line per failed request: {lines:?}");
    let line = &lines[0];
    assert_eq!(
        (
            &line["level"],
            &line["msg"],
            &line["status"],
            &line["errorCode"]
        ),
        (
            &json!("error"),
            &json!("request"),
            &json!(500),
            &json!("internal_error")
        ),
        "{line}"
    );
    assert_eq!(line["detail"], format!("e2e seam {marker}"), "{line}");
    assert!(
        line["at"]
            .as_str()
            .is_some_and(|at| at.starts_with("src/lib.rs:")),
        "{line}"
    );

    let (app, id) = webhook_tenant(s, 100);
    let body = serde_json::to_vec(&issue_opened(id, 7)).unwrap();
    let delivery = format!("{FAIL_FIRST}{}", unique_id());
    let failed = post(&s.api, app, APP_WEBHOOK_SECRET, "issues", &delivery, &body);
    assert_eq!(
        (failed.status, failed.json()),
        (500, generic),
        "{}",
        failed.text()
    );
    assert!(!failed.text().contains(".rs"), "{}", failed.text());
    let causes = log_lines(s, |v| {
        v["level"] == "error"
            && v["at"]
                .as_str()
                .is_some_and(|at| at.starts_with("src/objects/installation/events.rs:"))
    });
    assert!(!causes.is_empty());
}
