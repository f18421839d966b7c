//! `openapi.json` against the code: the route table, the error codes and the body parsers.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::DOCUMENT;
use crate::routes::{Auth, ROUTES};

pub(super) fn parsed() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// `(path, method, operation)` of every operation of the document.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" {
                out.push((path.as_str(), method.as_str(), op));
            }
        }
    }
    out
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let doc = parsed();
    let paths = doc["paths"].as_object().unwrap();
    for r in ROUTES {
        let op = &paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} not described", r.path))[r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} not described", r.method, r.path);
        assert!(op["responses"].is_object());
        let scheme = match r.auth {
            Auth::Staff { min } => {
                assert_eq!(
                    op["x-ghplane-role"],
                    min.as_str(),
                    "{} {} role",
                    r.method,
                    r.path
                );
                json!([{"adminToken": []}, {"sessionCookie": []}, {"sessionToken": []}])
            }
            Auth::ServiceKey => json!([{"serviceKey": []}]),
            Auth::Public => json!([]),
            Auth::Session => json!([{"sessionCookie": []}, {"sessionToken": []}]),
            Auth::SessionOrUserToken => {
                json!([{"sessionCookie": []}, {"sessionToken": []}, {"githubUserToken": []}])
            }
        };
        assert_eq!(op["security"], scheme, "{} {} security", r.method, r.path);
    }
    for (path, method, _) in operations(&doc) {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
            "{method} {path} described but not routed"
        );
    }
}

#[test]
fn refs_resolve() {
    let doc = parsed();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = &piece[..piece.find('"').unwrap()];
        let (kind, name) = target.split_once('/').unwrap();
        assert!(
            doc["components"][kind][name].is_object(),
            "dangling $ref {target}"
        );
    }
}

#[test]
fn operation_ids_are_unique() {
    let doc = parsed();
    let mut seen = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(seen.insert(id), "operationId {id} twice");
    }
}

#[test]
fn the_error_code_enum_is_every_code_ghplane_answers_with() {
    let doc = parsed();
    let listed: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
        ["properties"]["code"]["enum"]
        .as_array()
        .expect("Error.code enum")
        .iter()
        .map(|c| c.as_str().expect("a code is a string"))
        .collect();
    assert_eq!(
        listed,
        crate::error::all_codes(),
        "openapi.json's Error.code enum (sorted) must equal error::all_codes()"
    );
}

#[test]
fn the_version_is_the_crates() {
    assert_eq!(parsed()["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(parsed()["openapi"], "3.1.0");
}

#[test]
fn the_file_is_in_canonical_form() {
    // Sorted keys and serde_json's pretty layout: an edit shows as the lines it changed.
    let canonical = serde_json::to_string_pretty(&parsed()).unwrap() + "\n";
    if canonical != DOCUMENT {
        let line = canonical
            .lines()
            .zip(DOCUMENT.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!("openapi.json is not in canonical form (sorted keys, 2-space indent); first difference at line {line}");
    }
}

fn object(body: &[u8]) -> Map<String, Value> {
    crate::input::parse_object(body).expect("a JSON object")
}

/// The test key stands in for the document's elided PEM.
const PEM_PLACEHOLDER: &str =
    "-----BEGIN PRIVATE KEY-----\n(the app's private key, PKCS#1 or PKCS#8)\n-----END PRIVATE KEY-----\n";
const TEST_KEY: &str = include_str!("../../tests/fixtures/test-rsa-2048-pkcs8.pem");

type Parser = fn(&[u8]) -> Result<(), String>;

fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// Each operation with a request body, and the parser its route hands the body to. Routes whose
/// body is read in the worker (`src/routes/`) rather than by a core function are marked so.
fn parsers() -> Vec<(&'static str, Parser)> {
    use crate::tenancy::config::{PlainInput, PlainPatch, SealedSecret};
    fn mint(b: &[u8]) -> Result<(), String> {
        crate::mint::request::parse_token_request(b, |_| true)
            .map(drop)
            .map_err(err)
    }
    vec![
        ("mintToken", mint),
        ("mintTokenAlias", mint),
        ("putApp", |b| {
            let text = String::from_utf8(b.to_vec()).unwrap();
            let placeholder = serde_json::to_string(PEM_PLACEHOLDER).unwrap();
            assert!(
                text.contains(&placeholder),
                "putApp's example elides its key"
            );
            let body = text.replace(&placeholder, &serde_json::to_string(TEST_KEY).unwrap());
            crate::tenancy::app::PlainAppInput::parse(body.as_bytes())
                .map(drop)
                .map_err(err)
        }),
        ("rotateWebhookSecret", |b| {
            crate::tenancy::app::RotateInput::parse(b)
                .map(drop)
                .map_err(err)
        }),
        ("reportDeploymentStatus", |b| {
            crate::deploy::ReportedState::parse_body(b)
                .map(drop)
                .map_err(err)
        }),
        ("putInstallationConfig", |b| {
            PlainInput::parse(b).map(drop).map_err(err)
        }),
        ("patchInstallationConfig", |b| {
            PlainPatch::parse(b).map(drop).map_err(err)
        }),
        ("installationToken", |b| {
            let config = PlainInput::parse(br#"{"appId":1,"repositories":["acme/api","acme/web"],"permissions":{"canProcessIssues":true}}"#)
                .unwrap()
                .with_secrets::<SealedSecret, SealedSecret>(None, None);
            let record = crate::tenancy::config::InstallationRecord::replace(
                crate::ids::InstallationId::parse("5").unwrap(),
                config,
                None,
                "t",
            );
            crate::tenancy::token::parse_token_request(b, &record)
                .map(drop)
                .map_err(err)
        }),
        ("createInstaller", |b| {
            crate::installer::parse_input(b).map(drop).map_err(err)
        }),
        ("enrollRepositories", |b| {
            crate::installer::parse_enroll(b, "acme")
                .map(drop)
                .map_err(err)
        }),
        ("githubConnectStart", |b| {
            let map = object(b);
            crate::admin_access::state::start_input(&map).map_err(err)?;
            crate::admin_access::state::code_challenge(&map)
                .map_err(err)?
                .map(drop)
                .ok_or_else(|| "the example shows a code_challenge".to_owned())
        }),
        ("githubUserReposSync", |b| {
            crate::admin_access::repos::sync_input(&object(b))
                .map(drop)
                .map_err(err)
        }),
        // Parsed in src/routes/github_connect.rs (`session`, `disconnect`) and
        // src/routes/reseal.rs (`input`): only the JSON object is checked here.
        ("githubConnectSession", |b| {
            object(b).get("code").map(drop).ok_or_else(|| "code".into())
        }),
        ("githubDisconnect", |b| {
            object(b)
                .is_empty()
                .then_some(())
                .ok_or_else(|| "must be {}".into())
        }),
        ("reseal", |b| {
            object(b)
                .get("limit")
                .map(drop)
                .ok_or_else(|| "limit".into())
        }),
        ("createProject", |b| {
            crate::projects::NewProject::parse(b).map(drop).map_err(err)
        }),
        ("patchProject", |b| {
            crate::projects::ProjectPatch::parse(b)
                .map(drop)
                .map_err(err)
        }),
        ("putProjectGithubRepo", |b| {
            crate::projects::GithubRepoInput::parse(b)
                .map(drop)
                .map_err(err)
        }),
        ("putProjectSource", |b| {
            crate::deploy::SourceInput::parse(b).map(drop).map_err(err)
        }),
        ("githubWebhook", |b| {
            crate::webhook::parse_event("ping", b)
                .map(drop)
                .map_err(err)
        }),
    ]
}

#[test]
fn every_request_body_example_parses_with_its_routes_parser() {
    let doc = parsed();
    let parsers = parsers();
    let mut used = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let Some(body) = op.get("requestBody") else {
            continue;
        };
        let id = op["operationId"].as_str().unwrap();
        let example = &body["content"]["application/json"]["example"];
        assert!(
            !example.is_null(),
            "{method} {path} ({id}): the request body has no example"
        );
        let (_, parse) = parsers
            .iter()
            .find(|(name, _)| *name == id)
            .unwrap_or_else(|| panic!("{id}: no parser listed in openapi/tests.rs"));
        let bytes = serde_json::to_vec(example).unwrap();
        if let Err(e) = parse(&bytes) {
            panic!("{id}: the example {example} is refused: {e}");
        }
        used.insert(id);
    }
    for (name, _) in &parsers {
        assert!(
            used.contains(name),
            "{name}: listed in tests.rs but has no request body"
        );
    }
}
