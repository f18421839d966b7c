//! End-to-end tests: the real worker on workerd (`wrangler dev`, local Durable Object storage)
//! against the fake GitHub. One test binary with its own `main` so it can start the shared
//! worker once, run every test (in parallel), and always stop what it started.

mod admin_access;
mod api;
mod cli_https;
mod config;
mod deliveries;
mod deploy;
mod deploy_order;
mod fake_github;
mod github_handlers;
mod hostile;
mod identity;
mod installer;
mod installer_web;
mod logs;
mod make_deploy;
mod meta;
mod mint;
mod oidc_issuer;
mod people;
mod projects;
mod schema;
mod webhooks;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::api::Api;
use crate::fake_github::FakeGithub;
use crate::worker::{Worker, WorkerOptions};

/// What every test shares: one fake GitHub, one worker in front of it, and a client.
pub struct Shared {
    pub fake: FakeGithub,
    pub worker: Worker,
    pub api: Api,
    pub run_dir: PathBuf,
}

pub type TestFn = fn(&Shared);

static NEXT_ID: AtomicU64 = AtomicU64::new(100_000);

/// A fresh installation id per call, so parallel tests never share a Durable Object.
pub fn unique_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<(&str, TestFn)> = [
        meta::TESTS,
        config::TESTS,
        identity::TESTS,
        webhooks::TESTS,
        deliveries::TESTS,
        projects::TESTS,
        admin_access::TESTS,
        people::TESTS,
        deploy::TESTS,
        deploy_order::TESTS,
        installer::TESTS,
        mint::TESTS,
        hostile::TESTS,
        cli_https::TESTS,
        logs::TESTS,
        make_deploy::TESTS,
    ]
    .concat();
    if args.list {
        let names = tests
            .iter()
            .map(|(n, _)| *n)
            .chain(fake_github::SELFTESTS.iter().map(|(n, _)| *n));
        let trials = names.map(|name| Trial::test(name, || Ok(()))).collect();
        libtest_mimic::run(&args, trials).exit();
    }

    worker::build_worker();
    let run_dir = worker::repo_root()
        .join("target/e2e")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&run_dir);
    let fake = FakeGithub::start();
    github_handlers::install(&fake);
    projects::install(&fake);
    installer_web::install(&fake);
    let mut options = WorkerOptions::new(&fake.base_url());
    options.vars.extend(projects::worker_vars());
    options.vars.push((
        "WEBHOOK_SECRET_GRACE_SECONDS".into(),
        webhooks::GRACE_SECONDS.to_string(),
    ));
    options
        .vars
        .extend(admin_access::worker_vars(&fake.base_url()));
    options.vars.extend(people::worker_vars());
    options.vars.extend([
        (
            "DEPLOY_DEBOUNCE_SECONDS".into(),
            deploy::DEBOUNCE_SECONDS.to_string(),
        ),
        (
            "DEPLOY_TIMEOUT_SECONDS".into(),
            deploy::TIMEOUT_SECONDS.to_string(),
        ),
        (
            "DEPLOY_TICKET_TTL_SECONDS".into(),
            deploy::TICKET_TTL_SECONDS.to_string(),
        ),
    ]);
    let worker = Worker::start(&run_dir.join("shared"), options);
    println!(
        "e2e: worker on workerd at {} (wrangler dev), fake GitHub at {}",
        worker.base_url(),
        fake.base_url()
    );
    let api = Api::new(&worker.base_url());
    projects::setup(&api);
    admin_access::install(&fake, &worker.base_url(), &api);
    let shared = Arc::new(Shared {
        fake,
        worker,
        api,
        run_dir: run_dir.clone(),
    });

    let selftests = fake_github::SELFTESTS.iter().map(|(name, f)| (*name, *f));
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            (
                name,
                Box::new(move |s: &Shared| f(s)) as Box<dyn Fn(&Shared) + Send + Sync>,
            )
        })
        .chain(selftests.map(|(name, f)| {
            (
                name,
                Box::new(move |_: &Shared| f()) as Box<dyn Fn(&Shared) + Send + Sync>,
            )
        }))
        .map(|(name, f)| {
            let shared = shared.clone();
            Trial::test(name, move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&shared))).map_err(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "test panicked".into());
                    Failed::from(msg)
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);

    // Checks over the whole run: GitHub never saw a request its description rejects, and no
    // secret the tests handed the worker ever appeared in its output.
    let mut problems = shared.fake.take_conformance_failures();
    // The mint's own worker (started by its first test) stops here; its output is scanned too.
    let output = shared.worker.output() + &mint::finish();
    let service_keys = identity::SERVICE_KEYS.lock().unwrap().clone();
    let hook_secrets = deploy::HOOK_SECRETS.lock().unwrap().clone();
    let never_logged = config::SECRETS_USED
        .iter()
        .chain(&[
            identity::CLIENT_SECRET,
            identity::APP_WEBHOOK_SECRET,
            github_handlers::TOKEN_PREFIX,
            oidc_issuer::REQUEST_TOKEN,
            "ghpsk_",
            // Deploy credentials tickets and hook secrets.
            "ghpdt_",
            "ghpdh_",
            installer_web::CLIENT_SECRET_PREFIX,
            installer_web::WEBHOOK_SECRET_PREFIX,
        ])
        .chain(admin_access::NEVER_LOGGED)
        .map(|s| s.to_string())
        .chain(service_keys)
        .chain(hook_secrets)
        // The mint's callers' OIDC tokens are bearer credentials too.
        .chain([oidc_issuer::b64(
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": oidc_issuer::KID_A}),
        )]);
    for secret in never_logged {
        if output.contains(&secret) {
            problems.push(format!(
                "worker output contains a secret: {}…",
                &secret[..8.min(secret.len())]
            ));
        }
    }
    drop(shared);
    if !problems.is_empty() {
        eprintln!("e2e run-wide checks failed:\n  {}", problems.join("\n  "));
        std::process::exit(101);
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    conclusion.exit();
}
