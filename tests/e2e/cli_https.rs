//! The admin CLI against a worker served over **https** (`wrangler dev --local-protocol
//! https` with a certificate from a test CA): the operator's bootstrap (register an app from
//! its `.pem` file, let GitHub's `installation.created` make the tenant, then read tenants,
//! deliveries, projects and deployments) works over TLS, and an untrusted certificate is
//! refused rather than ignored.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::api::Api;
use crate::webhooks::{delivery_id, installation_created, post};
use crate::worker::{repo_root, Https, Worker, WorkerOptions, ADMIN_TOKEN};
use crate::{unique_id, Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[("cli_https::bootstrap_over_https", bootstrap_over_https)];

const WEBHOOK_SECRET: &str = "cli-https-webhook-secret-5d1e";

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost, written to `dir`.
fn certificates(dir: &Path) -> Https {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ghplane e2e CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let https = Https {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(&https.cert, server.pem()).unwrap();
    std::fs::write(&https.key, server_key.serialize_pem()).unwrap();
    std::fs::write(&https.ca, ca.pem()).unwrap();
    https
}

/// Runs the CLI with `args`; `GHPLANE_URL` is the https worker.
fn cli(base: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ghplane"))
        .args(args)
        .env("GHPLANE_URL", base)
        .env("GHPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("GHPLANE_CA_FILE")
        .envs(env.iter().copied())
        .output()
        .expect("run the ghplane CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bootstrap_over_https(s: &Shared) {
    let dir = s.run_dir.join("cli-https");
    let https = certificates(&dir.join("tls"));
    let ca: PathBuf = https.ca.clone();
    let ca = ca.to_str().unwrap();
    let mut options = WorkerOptions::new(&s.fake.base_url());
    options.https = Some(https);
    let worker = Worker::start(&dir.join("worker"), options);
    let base = worker.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let api = Api::with_agent(&base, worker.agent());

    // Without the CA the certificate is refused: TLS is checked, not skipped.
    let (code, out, err) = cli(&base, &[], &["admin", "projects"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with("error: unreachable: ") && err.contains("UnknownIssuer"),
        "{err}"
    );

    // Register before install: the app, from its .pem file; the secret from the environment.
    let app = unique_id();
    let key = repo_root().join("crates/core/tests/fixtures/test-rsa-2048-pkcs1.pem");
    let (code, out, err) = cli(
        &base,
        &[("GHPLANE_WEBHOOK_SECRET", WEBHOOK_SECRET)],
        &[
            "--ca-file",
            ca,
            "admin",
            "app",
            "register",
            "--app-id",
            &app.to_string(),
            "--private-key-path",
            key.to_str().unwrap(),
            "--client-id",
            "Iv1.clihttps",
            "--slug",
            "cli-https",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let registered: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(registered["appId"], app, "{out}");
    assert_eq!(registered["slug"], "cli-https");
    assert_eq!(registered["webhookSecret"], json!({"set": true}));
    assert!(
        registered["privateKey"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:"),
        "{out}"
    );
    assert!(!out.contains(WEBHOOK_SECRET) && !out.contains("PRIVATE KEY"));

    // Install: GitHub's installation.created, signed with that secret, makes the tenant.
    let installation = unique_id();
    let body = installation_created(app, installation, &[(unique_id(), "Codertocat/hello")]);
    let delivery = delivery_id();
    let r = post(
        &api,
        app,
        WEBHOOK_SECRET,
        "installation",
        &delivery,
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text());

    // Tenants: this worker's one tenant, made by that delivery, exactly.
    let ca_env = [("GHPLANE_CA_FILE", ca)];
    let (code, out, err) = cli(&base, &ca_env, &["admin", "tenants"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!("{installation}  Codertocat  active  app {app}  repositories 1\n")
    );
    let (code, out, err) = cli(
        &base,
        &ca_env,
        &["--json", "admin", "tenants", "--limit", "1"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listing["nextCursor"], serde_json::Value::Null, "{out}");
    assert_eq!(listing["installations"].as_array().map(Vec::len), Some(1));
    assert_eq!(listing["installations"][0]["id"], installation);
    assert_eq!(listing["installations"][0]["appId"], app);
    assert!(!out.contains(WEBHOOK_SECRET) && !out.contains("PRIVATE KEY"));
    let (code, out, err) = cli(
        &base,
        &ca_env,
        &["admin", "tenant", &installation.to_string()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let tenant: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tenant["installationId"], installation, "{out}");
    assert_eq!(tenant["appId"], app);
    assert_eq!(tenant["account"]["login"], "Codertocat");
    assert_eq!(tenant["repositories"][0]["fullName"], "Codertocat/hello");

    let (code, out, err) = cli(
        &base,
        &ca_env,
        &[
            "admin",
            "deliveries",
            &installation.to_string(),
            "--limit",
            "5",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].ends_with(&format!(
            "  installation.created  -  accepted 202  -  delivery {delivery}"
        )),
        "{out}"
    );

    // Projects and their deployments.
    let r = api.admin(
        "POST",
        "/projects",
        Some(&json!({"name": "Https Bootstrap"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    let (code, out, err) = cli(&base, &ca_env, &["admin", "projects"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("{slug}  draft  -  Https Bootstrap\n"));
    let (code, out, err) = cli(&base, &ca_env, &["--json", "admin", "deployments", &slug]);
    assert_eq!(code, 0, "{out}{err}");
    let deployments: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        deployments,
        json!({"deployments": [], "jobs": [], "running": null, "pending": null})
    );

    // A refusal over https carries the worker's code.
    let (code, _, err) = cli(&base, &ca_env, &["admin", "tenant", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: installation_not_found (404): "),
        "{err}"
    );
    drop(worker);
}
