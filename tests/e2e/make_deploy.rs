//! `make deploy` refuses early and clearly: without `CLOUDFLARE_API_TOKEN`, or with an unknown
//! environment, it stops before installing or building anything (the dry-runs of both
//! environments are `make deploy-check`, part of `make test`).

use std::process::Command;

use crate::worker::repo_root;
use crate::{Shared, TestFn};

pub const TESTS: &[(&str, TestFn)] = &[(
    "make_deploy::refuses_without_a_token_or_an_environment",
    refuses_without_a_token_or_an_environment,
)];

fn make_deploy(args: &[&str]) -> (i32, String) {
    let out = Command::new("make")
        .args(["-s", "deploy"])
        .args(args)
        .current_dir(repo_root())
        .env_remove("CLOUDFLARE_API_TOKEN")
        .output()
        .expect("run make deploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn refuses_without_a_token_or_an_environment(_: &Shared) {
    let (code, out) = make_deploy(&["ENV=staging"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("make deploy: CLOUDFLARE_API_TOKEN is not set.")
            && out.contains("Nothing was built or deployed. See docs/deploying.md."),
        "{out}"
    );
    assert!(
        !out.contains("wrangler") && !out.contains("Compiling"),
        "{out}"
    );

    for env in ["ENV=prod", "ENV="] {
        let (code, out) = make_deploy(&[env]);
        assert_eq!(code, 2, "{env}: {out}");
        assert!(
            out.starts_with("make deploy: ENV must be one of: staging production"),
            "{env}: {out}"
        );
    }
}
