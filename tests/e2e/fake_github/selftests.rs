//! The fake's own tests, run by the e2e binary as trials named `fake_github::…`.

use super::*;

/// The fake's own tests, for the e2e binary to run as trials; they need no
/// worker, only the fixture.
pub const SELFTESTS: &[(&str, fn())] = &[
    (
        "fake_github::conforming_request_gets_the_example",
        selftest_conforming_request_gets_the_example,
    ),
    (
        "fake_github::invalid_bodies_are_rejected",
        selftest_invalid_bodies_are_rejected,
    ),
    (
        "fake_github::integer_path_params_are_checked",
        selftest_integer_path_params_are_checked,
    ),
    (
        "fake_github::unmatched_routes_are_loud",
        selftest_unmatched_routes_are_loud,
    ),
    (
        "fake_github::headers_are_checked",
        selftest_headers_are_checked,
    ),
    (
        "fake_github::chunked_bodies_are_read",
        selftest_chunked_bodies_are_read,
    ),
    (
        "fake_github::faults_apply_the_given_times",
        selftest_faults_apply_the_given_times,
    ),
    (
        "fake_github::delays_do_not_block_others",
        selftest_delays_do_not_block_others,
    ),
    (
        "fake_github::dropped_connections_fail_the_client",
        selftest_dropped_connections_fail_the_client,
    ),
    (
        "fake_github::handlers_answer_dynamically",
        selftest_handlers_answer_dynamically,
    ),
    (
        "fake_github::drop_stops_the_server",
        selftest_drop_stops_the_server,
    ),
    ("fake_github::schema_validation", selftest_schema_validation),
    (
        "fake_github::oauth_web_routes_act_like_github",
        selftest_oauth_web_routes_act_like_github,
    ),
    (
        "fake_github::conditional_gets_answer_304",
        selftest_conditional_gets_answer_304,
    ),
    (
        "fake_github::scripts_answer_newest_first_under_one_label_scheme",
        selftest_scripts_answer_newest_first_under_one_label_scheme,
    ),
];

pub fn selftest_oauth_web_routes_act_like_github() {
    let fake = FakeGithub::start();
    let callback = "http://127.0.0.1:1/api/integrations/github/callback";
    fake.register_oauth_app("Iv1.self", "s3cret", &[callback]);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let authorize = |query: &str| {
        let r = agent
            .get(&format!(
                "{}/login/oauth/authorize?{query}",
                fake.base_url()
            ))
            .call();
        match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                (r.status(), r.header("location").unwrap_or("").to_string())
            }
            Err(e) => panic!("{e}"),
        }
    };
    let (status, location) = authorize(&format!(
        "client_id=Iv1.self&redirect_uri={}&state=a.b&login=mona",
        percent_encode(callback)
    ));
    assert_eq!(status, 302);
    assert!(
        location.starts_with(&format!("{callback}?code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=a.b"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    fake.assert_conformant();

    let exchange = |body: String, accept: &str| {
        let r = ureq::post(&format!("{}/login/oauth/access_token", fake.base_url()))
            .set("accept", accept)
            .set("content-type", "application/x-www-form-urlencoded")
            .send_string(&body)
            .expect("a 200, even for errors");
        assert_eq!(r.status(), 200);
        r.into_string().unwrap()
    };
    let form = |code: &str, secret: &str| {
        format!(
            "client_id=Iv1.self&client_secret={secret}&code={code}&redirect_uri={}",
            percent_encode(callback)
        )
    };
    let answer: Value =
        serde_json::from_str(&exchange(form(&code, "s3cret"), "application/json")).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with("ghu_") && answer["refresh_token"].is_string(),
        "{answer}"
    );
    assert_eq!(fake.oauth_user(&token).unwrap().login, "mona");
    let again: Value =
        serde_json::from_str(&exchange(form(&code, "s3cret"), "application/json")).unwrap();
    assert_eq!(
        again["error"], "bad_verification_code",
        "a code is single use"
    );
    assert!(exchange(form("nope", "s3cret"), "*/*").starts_with("error=bad_verification_code"));
    fake.assert_conformant();

    let wrong: Value =
        serde_json::from_str(&exchange(form(&code, "wrong"), "application/json")).unwrap();
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    assert_eq!(fake.take_conformance_failures().len(), 1);
    let (status, _) =
        authorize("client_id=Iv1.self&redirect_uri=https%3A%2F%2Fevil.test%2Fcb&state=x");
    assert_eq!(status, 400);
    assert_eq!(fake.take_conformance_failures().len(), 1);
    let (status, _) = authorize("client_id=unknown&state=x");
    assert_eq!(status, 404);
    assert_eq!(fake.take_conformance_failures().len(), 1);

    let me = conforming(&fake, "GET", "/user").set("authorization", &format!("Bearer {token}"));
    let (status, user) = outcome(me.call());
    assert_eq!((status, user["login"].as_str()), (200, Some("mona")));
    let revoke = |basic: &str| {
        outcome(
            conforming(&fake, "DELETE", "/applications/Iv1.self/grant")
                .set("authorization", &format!("Basic {basic}"))
                .send_json(json!({ "access_token": token })),
        )
        .0
    };
    assert_eq!(revoke("SXYxLnNlbGY6d3Jvbmc="), 404, "Iv1.self:wrong");
    assert_eq!(fake.take_conformance_failures().len(), 1);
    assert_eq!(revoke("SXYxLnNlbGY6czNjcmV0"), 204, "Iv1.self:s3cret");
    assert!(fake.oauth_revoked(&token));
    let me = conforming(&fake, "GET", "/user").set("authorization", &format!("Bearer {token}"));
    assert_eq!(outcome(me.call()).0, 401);
    fake.assert_conformant();
}

pub fn selftest_conditional_gets_answer_304() {
    let fake = FakeGithub::start();
    let first = conforming(&fake, "GET", "/user/installations")
        .call()
        .unwrap();
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = conforming(&fake, "GET", "/user/installations")
        .set("if-none-match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.into_string().unwrap(), "");
    let other = conforming(&fake, "GET", "/user/installations")
        .set("if-none-match", "W/\"0\"")
        .call()
        .unwrap();
    assert_eq!(other.status(), 200);
    // Operations that document no 304 have no ETag.
    let app = conforming(&fake, "GET", "/app").call().unwrap();
    assert!(app.header("etag").is_none());
    fake.assert_conformant();
}

pub(super) const TOKEN_OPERATION: &str = "apps/create-installation-access-token";
pub(super) const EXAMPLE_TOKEN: &str = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";

pub fn selftest_conforming_request_gets_the_example() {
    let fake = FakeGithub::start();
    let (status, body) = outcome(
        conforming(
            &fake,
            "POST",
            "/app/installations/1/access_tokens?note=a%20b+c",
        )
        .send_json(json!({ "repositories": ["a"], "permissions": { "contents": "read" } })),
    );
    assert_eq!(status, 201);
    assert_eq!(body["token"], EXAMPLE_TOKEN);
    fake.assert_conformant();

    let recorded = fake.requests_for(TOKEN_OPERATION);
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.operation.as_deref(), Some(TOKEN_OPERATION));
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/app/installations/1/access_tokens")
    );
    assert_eq!(request.query_param("note").as_deref(), Some("a b c"));
    assert_eq!(request.header("User-Agent"), Some("ghplane-selftest"));
    assert_eq!(request.json()["permissions"]["contents"], "read");

    // An operation documented with a bare 204 answers with no body.
    let (status, body) = outcome(conforming(&fake, "DELETE", "/installation/token").call());
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(fake.requests().len(), 2);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    fake.assert_conformant();
}

pub fn selftest_invalid_bodies_are_rejected() {
    let fake = FakeGithub::start();
    let token_path = "/app/installations/1/access_tokens";
    let cases = [
        (
            json!({ "repositories": [1] }),
            "$.repositories[0]: expected type string, got integer",
        ),
        (
            json!({ "permissions": { "contents": "admin" } }),
            r#"$.permissions.contents: expected one of ["read","write"]"#,
        ),
    ];
    for (body, error) in cases {
        let (status, answer) = outcome(conforming(&fake, "POST", token_path).send_json(body));
        assert_eq!(status, 422);
        let message = answer["message"].as_str().expect("a message");
        assert!(
            message.starts_with("Invalid request.\n\n") && message.contains(error),
            "{message}"
        );
        assert_eq!(answer["status"], "422");
        let failures = fake.take_conformance_failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].contains(TOKEN_OPERATION) && failures[0].contains(error),
            "{failures:?}"
        );
    }

    let (status, answer) = outcome(
        conforming(&fake, "POST", token_path)
            .set("content-type", "application/json")
            .send_string("{"),
    );
    assert_eq!(
        (status, answer["message"].as_str()),
        (400, Some("Problems parsing JSON"))
    );
    assert_eq!(fake.take_conformance_failures().len(), 1);

    let (status, _) = outcome(conforming(&fake, "POST", "/repos/o/r/deployments").call());
    assert_eq!(status, 422);
    let failures = fake.take_conformance_failures();
    assert!(
        failures[0].contains(r#"missing required property "ref""#),
        "{failures:?}"
    );

    // GitHub ignores a body it does not expect, but a client should not send one.
    let (status, _) =
        outcome(conforming(&fake, "PUT", "/app/installations/1/suspended").send_json(json!({})));
    assert_eq!(status, 204);
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains("takes none"),
        "{failures:?}"
    );
}

pub fn selftest_integer_path_params_are_checked() {
    let fake = FakeGithub::start();
    let (status, _) = outcome(
        conforming(&fake, "POST", "/app/installations/abc/access_tokens").send_json(json!({})),
    );
    assert_eq!(status, 404);
    let failures = fake.conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains("installation_id must be an integer"),
        "{failures:?}"
    );
}

pub fn selftest_unmatched_routes_are_loud() {
    let fake = FakeGithub::start();
    let (status, answer) = outcome(conforming(&fake, "GET", "/nope?x=1").call());
    assert_eq!(status, 599);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("GET /nope"),
        "{answer}"
    );
    // The path exists, but not for this method.
    let (status, _) = outcome(conforming(&fake, "PATCH", "/app/installations/1").call());
    assert_eq!(status, 599);
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 2 && failures[0].starts_with("unmatched request"),
        "{failures:?}"
    );
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.operation.is_none()));
}

pub fn selftest_headers_are_checked() {
    let fake = FakeGithub::start();
    let (status, answer) = raw_exchange(
        &fake,
        "GET /app HTTP/1.1\r\nhost: fake\r\naccept: application/json\r\nauthorization: Bearer raw\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("User-Agent"),
        "{answer}"
    );
    assert_single_failure(&fake, "no user-agent");

    let without_auth = ureq::get(&format!("{}/app", fake.base_url()))
        .set("user-agent", "ghplane-selftest")
        .set("accept", "application/vnd.github+json");
    let (status, answer) = outcome(without_auth.call());
    assert_eq!(
        (status, answer["message"].as_str()),
        (401, Some("Requires authentication"))
    );
    assert_single_failure(&fake, "no authorization");

    // ureq appends `x-` headers: this sends the right version and a wrong one.
    let (status, _) = outcome(
        conforming(&fake, "GET", "/app")
            .set("x-github-api-version", "2021-01-01")
            .call(),
    );
    assert_eq!(status, 400);
    assert_single_failure(&fake, "x-github-api-version");

    // GitHub serves these, so the answer is normal; only the record fails.
    let (status, _) = outcome(conforming(&fake, "GET", "/app").set("accept", "*/*").call());
    assert_eq!(status, 200);
    assert_single_failure(&fake, "accept");
    let (status, _) = outcome(
        conforming(&fake, "POST", "/app/installations/1/access_tokens")
            .set("content-type", "text/plain")
            .send_string("{}"),
    );
    assert_eq!(status, 201);
    assert_single_failure(&fake, "content-type");

    // The manifest conversion is the one call made before there are credentials.
    let manifest = ureq::post(&format!(
        "{}/app-manifests/code123/conversions",
        fake.base_url()
    ))
    .set("user-agent", "ghplane-selftest")
    .set("accept", "application/vnd.github+json");
    let (status, _) = outcome(manifest.call());
    assert_eq!(status, 201);
    fake.assert_conformant();
}

pub fn selftest_chunked_bodies_are_read() {
    let fake = FakeGithub::start();
    let body = r#"{"repositories":["a"]}"#;
    let (first, rest) = body.split_at(5);
    let request = format!(
        "POST /app/installations/1/access_tokens HTTP/1.1\r\nhost: fake\r\nuser-agent: raw\r\n\
         accept: application/vnd.github+json\r\nauthorization: Bearer raw\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x};ext=1\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
        first.len(),
        rest.len(),
    );
    let (status, answer) = raw_exchange(&fake, &request);
    assert_eq!(
        (status, answer["token"].as_str()),
        (201, Some(EXAMPLE_TOKEN))
    );
    assert_eq!(fake.requests()[0].body, body.as_bytes());
    fake.assert_conformant();
}

pub fn selftest_faults_apply_the_given_times() {
    let fake = FakeGithub::start();
    let error = Reply::json(502, json!({ "message": "Server Error" })).header("retry-after", "1");
    fake.on(Match::operation(TOKEN_OPERATION), error, Times::Once);
    assert_eq!(request_token(&fake, 1).0, 502);
    assert_eq!(request_token(&fake, 1).0, 201);

    fake.on(
        Match::operation_at(TOKEN_OPERATION, "/app/installations/2/access_tokens"),
        Reply::json(404, json!({ "message": "Not Found" })),
        Times::Always,
    );
    assert_eq!(request_token(&fake, 1).0, 201);
    assert_eq!(request_token(&fake, 2).0, 404);
    assert_eq!(request_token(&fake, 2).0, 404);
    fake.clear_scripts();
    assert_eq!(request_token(&fake, 2).0, 201);
    fake.assert_conformant();
}

pub fn selftest_delays_do_not_block_others() {
    let fake = FakeGithub::start();
    // Long enough that the undelayed request is surely answered first on a loaded machine.
    let delay = Duration::from_secs(5);
    let slow_reply = Reply::json(201, json!({ "token": "slow" })).delay(delay);
    fake.on(
        Match::operation_at(TOKEN_OPERATION, "/app/installations/1/access_tokens"),
        slow_reply,
        Times::Once,
    );
    thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let started = Instant::now();
            (request_token(&fake, 1), started.elapsed())
        });
        wait_until(|| fake.requests().len() == 1);
        let (status, answer) = request_token(&fake, 2);
        assert_eq!(
            (status, answer["token"].as_str()),
            (201, Some(EXAMPLE_TOKEN))
        );
        assert!(
            !slow.is_finished(),
            "the delayed reply came before the undelayed one"
        );
        let ((status, answer), elapsed) = slow.join().expect("the slow client");
        assert_eq!((status, answer["token"].as_str()), (201, Some("slow")));
        assert!(elapsed >= delay, "answered after {elapsed:?}");
    });
    fake.assert_conformant();
}

pub fn selftest_dropped_connections_fail_the_client() {
    let fake = FakeGithub::start();
    fake.on(
        Match::operation(TOKEN_OPERATION),
        Reply::dropped(),
        Times::Once,
    );
    let result =
        conforming(&fake, "POST", "/app/installations/1/access_tokens").send_json(json!({}));
    let result = status_or_transport_error(result);
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(request_token(&fake, 1).0, 201);
    assert_eq!(fake.requests_for(TOKEN_OPERATION).len(), 2);
    fake.assert_conformant();
}

pub fn selftest_handlers_answer_dynamically() {
    let fake = FakeGithub::start();
    let minted = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&minted);
    fake.on(Match::operation(TOKEN_OPERATION), Respond::with(move |request| {
        if request.path.contains("/2/") {
            return None;
        }
        let mut count = counter.lock().unwrap_or_else(PoisonError::into_inner);
        *count += 1;
        Some(Reply::json(
            201,
            json!({ "token": format!("ghs_minted_{count}"), "expires_at": "2099-01-01T00:00:00Z" }),
        ))
    }), Times::Always);
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_1");
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_2");
    assert_eq!(request_token(&fake, 2).1["token"], EXAMPLE_TOKEN);
    fake.on(
        Match::operation(TOKEN_OPERATION),
        Reply::json(500, json!({})),
        Times::Once,
    );
    assert_eq!(request_token(&fake, 1).0, 500);
    assert_eq!(request_token(&fake, 1).1["token"], "ghs_minted_3");
    assert_eq!(*minted.lock().unwrap_or_else(PoisonError::into_inner), 3);
    fake.assert_conformant();
}

pub fn selftest_drop_stops_the_server() {
    let fake = FakeGithub::start();
    fake.on(
        Match::operation(TOKEN_OPERATION),
        Reply::json(201, json!({})).delay(Duration::from_secs(60)),
        Times::Always,
    );
    let stuck = conforming(&fake, "POST", "/app/installations/1/access_tokens");
    let client = thread::spawn(move || status_or_transport_error(stuck.send_json(json!({}))));
    let _idle = TcpStream::connect(fake.addr).expect("connecting");
    wait_until(|| fake.requests().len() == 1);

    let started = Instant::now();
    drop(fake);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        started.elapsed()
    );
    let result = client.join().expect("the stuck client");
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    // Not checked: that connecting to the old port now fails. Self-tests running in parallel
    // bind port 0 too, and may be given that port again.
}

pub fn selftest_schema_validation() {
    use schema::{validate, validate_with_root};

    let one_of = json!({ "oneOf": [{ "type": "string" }, { "type": "number" }] });
    assert!(validate(&one_of, &json!("0")).is_empty());
    assert!(validate(&one_of, &json!(1)).is_empty());
    let errors = validate(&one_of, &json!(true));
    assert!(
        errors.len() == 1 && errors[0].starts_with("$: matches none of oneOf"),
        "{errors:?}"
    );
    // Every integer is a number too, so this oneOf is ambiguous for 1.
    let overlapping = json!({ "oneOf": [{ "type": "integer" }, { "type": "number" }] });
    assert_eq!(
        validate(&overlapping, &json!(1)),
        ["$: matches 2 branches of oneOf, expected exactly one"]
    );
    assert!(validate(&overlapping, &json!(1.5)).is_empty());
    assert!(validate(
        &json!({ "anyOf": [{ "type": "integer" }, { "type": "number" }] }),
        &json!(1)
    )
    .is_empty());
    assert_eq!(
        validate(
            &json!({ "allOf": [{ "minimum": 2 }, { "const": 3 }] }),
            &json!(1)
        ),
        ["$: expected at least 2, got 1", "$: expected 3, got 1"]
    );

    assert!(validate(&json!({ "type": "string", "nullable": true }), &Value::Null).is_empty());
    assert!(validate(&json!({ "type": ["string", "null"] }), &Value::Null).is_empty());
    assert_eq!(
        validate(&json!({ "type": "string" }), &Value::Null),
        ["$: expected type string, got null"]
    );

    let closed =
        json!({ "properties": { "a": { "type": "string" } }, "additionalProperties": false });
    assert_eq!(
        validate(&closed, &json!({ "a": "x", "b-c": 1 })),
        [r#"$["b-c"]: property is not allowed here"#]
    );
    let typed = json!({ "additionalProperties": { "type": "integer" } });
    assert_eq!(
        validate(&typed, &json!({ "n": 1, "m": "x" })),
        ["$.m: expected type integer, got string"]
    );
    assert_eq!(
        validate(&json!({ "enum": ["read", "write"] }), &json!("admin")),
        [r#"$: expected one of ["read","write"], got "admin""#]
    );

    let root = json!({ "components": { "schemas": {
        "Slug": { "type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "minLength": 2, "maxLength": 5 },
        "Page": { "type": "object", "required": ["items"], "properties": {
            "items": { "type": "array", "maxItems": 3, "items": { "$ref": "#/components/schemas/Slug" } },
            "count": { "type": "integer", "minimum": 0, "maximum": 10 },
        } },
    } } });
    let page = json!({ "$ref": "#/components/schemas/Page" });
    assert!(validate_with_root(&root, &page, &json!({ "items": ["ab-c"], "count": 3 })).is_empty());
    let errors = validate_with_root(
        &root,
        &page,
        &json!({ "items": ["Ab", "toolong", "x", "a"], "count": 11 }),
    );
    let expected = [
        "$.count: expected at most 10, got 11",
        "$.items: expected at most 3 items, got 4",
        r#"$.items[0]: "Ab" does not match pattern "^[a-z0-9]+(-[a-z0-9]+)*$""#,
        "$.items[1]: expected at most 5 characters, got 7",
        "$.items[2]: expected at least 2 characters, got 1",
        "$.items[3]: expected at least 2 characters, got 1",
    ];
    assert_eq!(errors, expected);
    assert_eq!(
        validate_with_root(&root, &page, &json!({})),
        [r#"$: missing required property "items""#]
    );
    assert_eq!(
        validate(&page, &json!({})),
        [r##"$: cannot resolve $ref "#/components/schemas/Page""##]
    );

    let matches = |pattern: &str, text: &str| {
        validate(&json!({ "pattern": pattern }), &json!(text)).is_empty()
    };
    assert!(matches(r"^\d{3}-\d{4}$", "555-1234") && !matches(r"^\d{3}-\d{4}$", "5555-1234"));
    assert!(matches("colou?r", "my colour!") && !matches("^colou?r$", "my color"));
    assert!(matches("^(a|bc)+$", "abca") && !matches("^(a|bc)+$", "abd"));
    assert!(
        matches(r"^[^/\s]+/[\w.-]{1,100}$", "octo/hello.world")
            && !matches(r"^[^/\s]+/[\w.-]+$", "a b/c")
    );
    assert!(matches("^(a*)*$", "aaaa") && !matches("^(a*)*b$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"));
    // Syntax beyond the supported subset is ignored, never a false failure.
    assert!(matches(r"^(?=x)\bq", "anything"));

    // The fixture's own schemas, as GitHub would apply them.
    let webhook = &operations()
        .iter()
        .find(|operation| operation.id == "repos/create-webhook")
        .and_then(|operation| operation.request_body.clone())
        .expect("create-webhook takes a body");
    assert!(validate(
        webhook,
        &json!({ "config": { "url": "https://x", "insecure_ssl": 0 }, "events": ["push"] })
    )
    .is_empty());
    assert_eq!(
        validate(webhook, &json!({ "nope": 1 })),
        ["$.nope: property is not allowed here"]
    );
}

pub(super) fn conforming(fake: &FakeGithub, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}{path}", fake.base_url()))
        .set("user-agent", "ghplane-selftest")
        .set("accept", "application/vnd.github+json")
        .set("x-github-api-version", API_VERSION)
        .set("authorization", "Bearer selftest")
}

pub(super) fn request_token(fake: &FakeGithub, installation: u32) -> (u16, Value) {
    let path = format!("/app/installations/{installation}/access_tokens");
    outcome(
        conforming(fake, "POST", &path).send_json(json!({ "permissions": { "contents": "read" } })),
    )
}

/// Status and JSON body (`Null` when empty) of any HTTP answer; panics on a
/// transport error.
pub(super) fn outcome(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("transport error: {error}"),
    };
    let status = response.status();
    let text = response.into_string().expect("reading the body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error} in {text:?}"))
    };
    (status, body)
}

/// The status of an HTTP answer, or the error when there was none.
pub(super) fn status_or_transport_error(
    result: Result<ureq::Response, ureq::Error>,
) -> Result<u16, String> {
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(response.status()),
        Err(error) => Err(error.to_string()),
    }
}

/// Sends bytes no HTTP client library would (no user-agent, chunks of our
/// choosing); `request` must ask for `connection: close`.
pub(super) fn raw_exchange(fake: &FakeGithub, request: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(fake.addr).expect("connecting");
    stream.write_all(request.as_bytes()).expect("sending");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receiving");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[track_caller]
pub(super) fn assert_single_failure(fake: &FakeGithub, reason: &str) {
    let failures = fake.take_conformance_failures();
    assert!(
        failures.len() == 1 && failures[0].contains(reason),
        "expected one {reason:?} failure: {failures:?}"
    );
}

#[track_caller]
pub(super) fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        thread::sleep(Duration::from_millis(10));
    }
}

/// `on`: the newest matching script answers, a passing one hands on to the older ones, every
/// kind of match is recorded under its `label`, and `clear_scripts` clears them all.
pub fn selftest_scripts_answer_newest_first_under_one_label_scheme() {
    let fake = FakeGithub::start();
    let at = |n: u32| {
        Match::operation_at(
            TOKEN_OPERATION,
            &format!("/app/installations/{n}/access_tokens"),
        )
    };
    // A setup-wide handler that declines installation 2; then a test's scripts on top.
    fake.on(
        Match::operation(TOKEN_OPERATION),
        Respond::with(|r| {
            (!r.path.contains("/2/")).then(|| Reply::json(201, json!({"token": "handled"})))
        }),
        Times::Always,
    );
    fake.on(at(1), Reply::json(502, json!({})), Times::Always);
    fake.on(at(1), Reply::json(503, json!({})), Times::N(2));
    fake.on(
        at(1),
        Respond::in_turn([Reply::json(500, json!({}))]),
        Times::Always,
    );
    assert_eq!(request_token(&fake, 1).0, 500, "the newest first");
    assert_eq!(
        request_token(&fake, 1).0,
        503,
        "an exhausted in_turn passes"
    );
    assert_eq!(request_token(&fake, 1).0, 503);
    assert_eq!(request_token(&fake, 1).0, 502, "N(2) used up");
    assert_eq!(request_token(&fake, 3).1["token"], "handled");
    assert_eq!(
        request_token(&fake, 2).1["token"],
        EXAMPLE_TOKEN,
        "all pass: the example"
    );
    // Routes outside the REST description, each recorded under its label.
    let web = Match::web("POST", "/settings/apps/{id}");
    let extra = Match::extra("GET", "/_x/ping");
    fake.on(
        web.clone(),
        Respond::checked(|r| {
            if r.body.is_empty() {
                Err("no form".into())
            } else {
                Ok(Reply::empty(302))
            }
        }),
        Times::Always,
    );
    fake.on(
        extra.clone(),
        Reply::json(200, json!({"pong": true})),
        Times::Once,
    );
    let (status, _) =
        outcome(ureq::post(&format!("{}/settings/apps/7", fake.base_url())).send_string("a=b"));
    assert_eq!(status, 302);
    let (status, body) =
        outcome(ureq::post(&format!("{}/settings/apps/7", fake.base_url())).call());
    assert_eq!((status, body["message"].as_str()), (422, Some("no form")));
    let failures = fake.take_conformance_failures();
    assert_eq!(
        failures,
        ["web:POST /settings/apps/{id} (POST /settings/apps/7): no form"]
    );
    let (status, body) = outcome(ureq::get(&format!("{}/_x/ping?q=1", fake.base_url())).call());
    assert_eq!((status, body["pong"].as_bool()), (200, Some(true)));
    assert_eq!(web.label(), "web:POST /settings/apps/{id}");
    assert_eq!(fake.requests_for(&web.label()).len(), 2);
    assert_eq!(extra.label(), "x:GET /_x/ping");
    assert_eq!(fake.requests_for(&extra.label()).len(), 1);
    assert_eq!(fake.requests_for(TOKEN_OPERATION).len(), 6);
    // Once: the extra route is gone, so the request is unmatched (and loud).
    assert_eq!(
        outcome(ureq::get(&format!("{}/_x/ping", fake.base_url())).call()).0,
        599
    );
    fake.take_conformance_failures();
    fake.clear_scripts();
    assert_eq!(
        outcome(ureq::post(&format!("{}/settings/apps/7", fake.base_url())).send_string("a=b")).0,
        599
    );
    assert_eq!(request_token(&fake, 1).1["token"], EXAMPLE_TOKEN);
    fake.take_conformance_failures();
    fake.assert_conformant();
}
