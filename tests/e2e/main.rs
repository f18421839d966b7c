//! End-to-end tests: the real worker on workerd (`wrangler dev`, local Durable Object storage)
//! against the fake GitHub. One test binary with its own `main` so it can start the shared
//! worker once, run every test (in parallel), and always stop what it started.

mod admin_access;
mod api;
mod cli_https;
mod config;
mod console;
mod console_admin;
mod console_apps;
mod deliveries;
mod deploy;
mod deploy_order;
mod fake_github;
mod github_handlers;
mod hostile;
mod identity;
mod installer;
mod installer_web;
mod lists;
mod logs;
mod make_deploy;
mod meta;
mod mint;
mod oidc_issuer;
mod people;
mod projects;
mod schema;
mod webdriver;
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

/// What a test module needs of the shared run, declared beside its tests (`pub const SETUP`)
/// and folded by `main`: nothing is wired by hand here.
pub struct Setup {
    /// Vars of the shared worker, given the fake GitHub's base URL.
    pub vars: fn(&str) -> Vec<(String, String)>,
    /// Secrets of the shared worker.
    pub secrets: &'static [(&'static str, &'static str)],
    /// Scripts of the fake GitHub, before the worker starts.
    pub install: fn(&FakeGithub),
    /// Once the worker answers, before any test runs (registering apps through the API).
    pub ready: fn(&Shared),
    /// Strings (or prefixes) that must never appear in any worker's output.
    pub never_logged: &'static [&'static str],
    /// More of them, known only once the tests ran (keys and secrets they were handed).
    pub never_logged_seen: fn() -> Vec<String>,
    /// At the end of the run: stops a worker of the module's own; its output is scanned too.
    pub finish: fn() -> String,
}

impl Setup {
    pub const NONE: Setup = Setup {
        vars: |_| Vec::new(),
        secrets: &[],
        install: |_| {},
        ready: |_| {},
        never_logged: &[],
        never_logged_seen: Vec::new,
        finish: String::new,
    };
}

/// Every test module: its tests and its setup.
const MODULES: &[(&[(&str, TestFn)], &Setup)] = &[
    (meta::TESTS, &Setup::NONE),
    (config::TESTS, &config::SETUP),
    (identity::TESTS, &identity::SETUP),
    (webhooks::TESTS, &webhooks::SETUP),
    (deliveries::TESTS, &Setup::NONE),
    (projects::TESTS, &projects::SETUP),
    (admin_access::TESTS, &admin_access::SETUP),
    (people::TESTS, &people::SETUP),
    (console::TESTS, &console::SETUP),
    (console_admin::TESTS, &Setup::NONE),
    (console_apps::TESTS, &Setup::NONE),
    (deploy::TESTS, &deploy::SETUP),
    (deploy_order::TESTS, &Setup::NONE),
    (installer::TESTS, &Setup::NONE),
    (lists::TESTS, &Setup::NONE),
    (mint::TESTS, &mint::SETUP),
    (hostile::TESTS, &Setup::NONE),
    (cli_https::TESTS, &Setup::NONE),
    (logs::TESTS, &Setup::NONE),
    (make_deploy::TESTS, &Setup::NONE),
    // Answers of the fake GitHub that several modules' tests rely on.
    (&[], &github_handlers::SETUP),
    (&[], &installer_web::SETUP),
];

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<(&str, TestFn)> = MODULES
        .iter()
        .flat_map(|(t, _)| t.iter().copied())
        .collect();
    let setups = || MODULES.iter().map(|(_, setup)| *setup);
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
    let mut options = WorkerOptions::new(&fake.base_url());
    for setup in setups() {
        (setup.install)(&fake);
        options.vars.extend((setup.vars)(&fake.base_url()));
        options.secrets.extend(
            setup
                .secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
    let worker = Worker::start(&run_dir.join("shared"), options);
    println!(
        "e2e: worker on workerd at {} (wrangler dev), fake GitHub at {}",
        worker.base_url(),
        fake.base_url()
    );
    let api = Api::new(&worker.base_url());
    let shared = Shared {
        fake,
        worker,
        api,
        run_dir: run_dir.clone(),
    };
    for setup in setups() {
        (setup.ready)(&shared);
    }
    let shared = Arc::new(shared);

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
    // Workers of a module's own (the mint's, started by its first test) stop here; their
    // output is scanned too.
    let output = shared.worker.output() + &setups().map(|s| (s.finish)()).collect::<String>();
    let never_logged = setups().flat_map(|s| {
        s.never_logged
            .iter()
            .map(|n| n.to_string())
            .chain((s.never_logged_seen)())
    });
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
