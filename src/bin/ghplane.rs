//! `ghplane`: the admin CLI. It calls the worker's installer routes, so anything it does can
//! be done with curl too. Native only: the worker (wasm32) never builds it.
//!
//! ```text
//! ghplane admin install --repo owner/name [--user]   a dedicated app for one repository
//! ghplane admin install --org name [--exclude owner/name]…
//! ghplane admin status ID
//! ghplane admin enroll ID owner/name…
//! ghplane admin uninstall ID
//! ```
//!
//! `GHPLANE_URL` (default `http://127.0.0.1:8787`) and `GHPLANE_ADMIN_TOKEN` (required).
//! Exit status: 0 on success, 1 when the worker refuses (the error code is printed),
//! 2 for a usage error.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main(std::env::args().skip(1).collect()));
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use serde_json::{json, Value};

    const USAGE: &str = "usage:
  ghplane admin install --repo owner/name [--user]
  ghplane admin install --org name [--exclude owner/name]...
  ghplane admin status ID
  ghplane admin enroll ID owner/name...
  ghplane admin uninstall ID
env: GHPLANE_URL (default http://127.0.0.1:8787), GHPLANE_ADMIN_TOKEN";

    #[derive(Debug, PartialEq)]
    pub enum Command {
        Install(Value),
        Status(String),
        Enroll(String, Vec<String>),
        Uninstall(String),
    }

    pub fn parse(args: &[String]) -> Result<Command, String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["admin", "install", rest @ ..] => {
                let (mut repo, mut org, mut user, mut exclude) = (None, None, false, Vec::new());
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    match *a {
                        "--repo" => repo = Some(it.next().ok_or("--repo needs owner/name")?),
                        "--org" => org = Some(it.next().ok_or("--org needs a name")?),
                        "--exclude" => {
                            exclude.push(*it.next().ok_or("--exclude needs owner/name")?)
                        }
                        "--user" => user = true,
                        other => return Err(format!("unknown option {other}")),
                    }
                }
                match (repo, org) {
                    (Some(r), None) if exclude.is_empty() => {
                        let mut body = json!({"mode": "repo", "repository": r});
                        if user {
                            body["account"] = json!("user");
                        }
                        Ok(Command::Install(body))
                    }
                    (None, Some(o)) if !user => Ok(Command::Install(
                        json!({"mode": "org", "org": o, "exclude": exclude}),
                    )),
                    _ => Err("give either --repo owner/name or --org name".into()),
                }
            }
            ["admin", "status", id] => Ok(Command::Status(id.to_string())),
            ["admin", "uninstall", id] => Ok(Command::Uninstall(id.to_string())),
            ["admin", "enroll", id, repos @ ..] if !repos.is_empty() => Ok(Command::Enroll(
                id.to_string(),
                repos.iter().map(|r| r.to_string()).collect(),
            )),
            _ => Err("unknown command".into()),
        }
    }

    /// The installer as lines a person reads.
    pub fn render(v: &Value) -> String {
        let mut out = String::new();
        let mut line = |k: &str, val: &Value| {
            let text = match val {
                Value::Null => return,
                Value::String(s) => s.clone(),
                Value::Array(a) if a.is_empty() => return,
                other => other.to_string(),
            };
            out.push_str(&format!("{k}: {text}\n"));
        };
        line("installer", &v["id"]);
        line("mode", &v["mode"]);
        line("repository", &v["repository"]);
        line("org", &v["org"]);
        line("exclude", &v["exclude"]);
        line("phase", &v["phase"]);
        line("setup URL", &v["setupUrl"]);
        line("app", &v["appSlug"]);
        line("app id", &v["appId"]);
        line("install URL", &v["installUrl"]);
        line("installation", &v["installationId"]);
        line("misconfiguration", &v["misconfiguration"]);
        line("service key id", &v["serviceKey"]["id"]);
        line("service key (shown once)", &v["serviceKey"]["key"]);
        line("enrolled", &v["enrolled"]);
        line("claims", &v["claims"]);
        line("conflicts", &v["conflicts"]);
        line("delete the app at", &v["deleteAppUrl"]);
        line("next step", &v["nextStep"]);
        out
    }

    fn call(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let base = std::env::var("GHPLANE_URL").unwrap_or_else(|_| "http://127.0.0.1:8787".into());
        let token = std::env::var("GHPLANE_ADMIN_TOKEN")
            .map_err(|_| "GHPLANE_ADMIN_TOKEN is not set".to_owned())?;
        let req = ureq::request(method, &format!("{}{path}", base.trim_end_matches('/')))
            .set("authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match result {
            Ok(r) => r.into_json().map_err(|e| format!("unreadable answer: {e}")),
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = r.into_json().unwrap_or_default();
                Err(format!(
                    "{} ({status}): {}",
                    v["error"]["code"].as_str().unwrap_or("http_error"),
                    v["error"]["message"].as_str().unwrap_or("")
                ))
            }
            Err(e) => Err(format!("unreachable: {e}")),
        }
    }

    pub fn main(args: Vec<String>) -> i32 {
        let command = match parse(&args) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return 2;
            }
        };
        let result = match &command {
            Command::Install(body) => call("POST", "/api/installers", Some(body)),
            Command::Status(id) => call("GET", &format!("/api/installers/{id}"), None),
            Command::Enroll(id, repos) => call(
                "POST",
                &format!("/api/installers/{id}/enroll"),
                Some(&json!({"repositories": repos})),
            ),
            Command::Uninstall(id) => call("DELETE", &format!("/api/installers/{id}"), None),
        };
        match result {
            Ok(v) => {
                print!("{}", render(&v));
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn args(s: &str) -> Vec<String> {
            s.split_whitespace().map(str::to_owned).collect()
        }

        #[test]
        fn parses_every_command() {
            assert_eq!(
                parse(&args("admin install --repo o/r")).unwrap(),
                Command::Install(json!({"mode": "repo", "repository": "o/r"}))
            );
            assert_eq!(
                parse(&args("admin install --org o --exclude o/a --exclude o/b")).unwrap(),
                Command::Install(json!({"mode": "org", "org": "o", "exclude": ["o/a", "o/b"]}))
            );
            assert_eq!(
                parse(&args("admin enroll abc o/a o/b")).unwrap(),
                Command::Enroll("abc".into(), vec!["o/a".into(), "o/b".into()])
            );
            assert_eq!(
                parse(&args("admin status x")).unwrap(),
                Command::Status("x".into())
            );
            assert_eq!(
                parse(&args("admin uninstall x")).unwrap(),
                Command::Uninstall("x".into())
            );
            for bad in [
                "",
                "admin",
                "admin install",
                "admin install --repo o/r --org o",
                "admin enroll x",
                "admin install --repo",
            ] {
                assert!(parse(&args(bad)).is_err(), "{bad}");
            }
        }

        #[test]
        fn renders_what_the_admin_needs() {
            let text = render(
                &json!({"id": "ab", "mode": "repo", "repository": "o/r", "phase": "awaiting_app",
                "setupUrl": "http://x/setup/ab", "nextStep": "Open it", "claims": [], "serviceKey": null}),
            );
            assert!(
                text.contains("installer: ab\n") && text.contains("setup URL: http://x/setup/ab\n")
            );
            assert!(text.contains("next step: Open it\n") && !text.contains("claims"));
        }
    }
}
