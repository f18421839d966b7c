//! `wrangler.jsonc` against the names the code reads: every var named in `src/settings.rs` and
//! in the mint's policy (`ghplane_core::mint::policy::vars`) is declared in the `vars` of every
//! environment (local, staging, production), or is a binding there, or is a secret listed in
//! `.dev.vars.example`. So an operator who copies an environment block has every setting to
//! fill in, and a new setting cannot be forgotten in one environment.

use std::collections::BTreeSet;

use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The values of `pub const NAME: &str = "VALUE";` lines whose value looks like an env name.
fn names_in(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let value = rest.split_once(": &str = \"")?.1.strip_suffix("\";")?;
            let env_like = value.starts_with(|c: char| c.is_ascii_uppercase())
                && value
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            env_like.then(|| value.to_owned())
        })
        .collect()
}

/// Names the code reads.
fn read_by_code() -> BTreeSet<String> {
    let mut names = names_in(&read("src/settings.rs"));
    for file in ["mod.rs", "config.rs", "authorize.rs", "foreign.rs"] {
        names.extend(names_in(&read(&format!(
            "crates/core/src/mint/policy/{file}"
        ))));
    }
    names
}

fn wrangler() -> Value {
    let text: String = read("wrangler.jsonc")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&text).expect("wrangler.jsonc parses once comments are stripped")
}

/// Secrets named in `.dev.vars.example`, set or commented out (`# NAME=`).
fn secrets() -> BTreeSet<String> {
    read(".dev.vars.example")
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches('#').trim();
            let (name, _) = l.split_once('=')?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .then(|| name.to_owned())
        })
        .collect()
}

fn declared(env: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = env["vars"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    for binding in env["durable_objects"]["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(env["ratelimits"].as_array().into_iter().flatten())
    {
        names.insert(binding["name"].as_str().unwrap().to_owned());
    }
    if let Some(assets) = env["assets"]["binding"].as_str() {
        names.insert(assets.to_owned());
    }
    names
}

#[test]
fn every_name_the_code_reads_is_in_every_environment() {
    let config = wrangler();
    let secrets = secrets();
    let code = read_by_code();
    for (label, env) in [
        ("top level (make dev)", &config),
        ("env.staging", &config["env"]["staging"]),
        ("env.production", &config["env"]["production"]),
    ] {
        let declared = declared(env);
        let missing: Vec<&String> = code
            .iter()
            .filter(|n| !declared.contains(*n) && !secrets.contains(*n))
            .collect();
        assert!(
            missing.is_empty(),
            "{label} of wrangler.jsonc lacks {missing:?} (add them to its vars, or to .dev.vars.example if secret)"
        );
    }
}

#[test]
fn staging_and_production_use_different_orgs() {
    let config = wrangler();
    let org = |env: &str| config["env"][env]["vars"]["GITHUB_ORG"].clone();
    assert!(org("staging").is_string() && org("production").is_string());
    assert_ne!(org("staging"), org("production"));
}

#[test]
fn the_name_reader_sees_what_it_must() {
    let code = read_by_code();
    for name in [
        "GITHUB_ORG",
        "ADMIN_TOKEN",
        "ROLE_APP_IDS",
        "INSTALLATIONS",
        "MINT_RATE_LIMITER",
    ] {
        assert!(code.contains(name), "{name} not read from the sources");
    }
    let got = names_in("pub const A_B: &str = \"A_B\";\npub const X: &str = \"not-env\";\n  pub const C: &str = \"C2\";");
    assert_eq!(got, ["A_B", "C2"].iter().map(|s| s.to_string()).collect());
    assert!(secrets().contains("ENCRYPTION_KEY_PREVIOUS") && secrets().contains("ADMIN_TOKEN"));
}
