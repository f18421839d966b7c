//! The worker's own log lines: one JSON object per line with `level`, `msg` and the id of the
//! request that caused it (its `cf-ray` when present, else a generated one).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::worker::ADMIN_TOKEN;
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[(
    "logs::a_line_is_json_with_level_message_and_the_request_id",
    a_line_is_json_with_level_message_and_the_request_id,
)];

/// The worker's JSON line whose `msg` is `msg` and `installer` is `installer`, once written.
fn line_of(s: &Shared, msg: &str, installer: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = s.worker.output().lines().find_map(|l| {
            let v: Value = serde_json::from_str(l.get(l.find('{')?..)?).ok()?;
            (v["msg"] == msg && v["installer"] == installer).then_some(v)
        });
        if let Some(v) = found {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no {msg:?} line for {installer}:\n{}",
            s.worker.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn installer(s: &Shared) -> String {
    let repo = format!("logs-{}/app", unique_id());
    let r = s.api.admin(
        "POST",
        "/api/installers",
        Some(&json!({"mode": "repo", "repository": repo})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

fn uninstall(s: &Shared, id: &str, extra: &[(&str, &str)]) {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    let r = s
        .api
        .send("DELETE", &format!("/api/installers/{id}"), &headers, None);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn a_line_is_json_with_level_message_and_the_request_id(s: &Shared) {
    // With a cf-ray, the line carries it.
    let id = installer(s);
    let ray = format!("8c1f2a3b{}-AMS", unique_id());
    uninstall(s, &id, &[("cf-ray", &ray)]);
    let line = line_of(s, "installer uninstalled", &id);
    assert_eq!(line["level"], "info", "{line}");
    assert_eq!(line["request_id"], ray.as_str(), "{line}");

    // Without one, an id is generated for the request: 16 hex digits, new each time.
    let (a, b) = (installer(s), installer(s));
    uninstall(s, &a, &[]);
    uninstall(s, &b, &[]);
    let ids: Vec<String> = [a, b]
        .iter()
        .map(|i| {
            let line = line_of(s, "installer uninstalled", i);
            line["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    for id in &ids {
        assert!(
            id.len() == 16 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    assert_ne!(ids[0], ids[1]);
}
