//! `ghplane`: the admin CLI, the operator's bootstrap tool. It calls the worker's admin
//! routes, so anything it does can be done with curl too. Native only: the worker (wasm32)
//! never builds it. See `USAGE` (or `ghplane --help`).
//!
//! It speaks HTTP and HTTPS (rustls with the Mozilla roots). `--ca-file` adds one more CA,
//! for a worker whose certificate is self-signed (a local `wrangler dev` over https); there is
//! deliberately no switch that turns certificate checks off.
//!
//! Exit status: 0 on success, 1 when the worker refuses or cannot be reached (the error code
//! is printed), 2 for a usage error.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main(std::env::args().skip(1).collect()));
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::sync::Arc;

    use serde_json::{json, Value};

    const USAGE: &str = "usage: ghplane [--url URL] [--ca-file PEM] [--json] admin COMMAND
commands:
  app register --app-id ID --private-key-path FILE [--webhook-secret S] [--client-id ID]
               [--client-secret S] [--slug SLUG] [--repo owner/name]
                                     register (or replace) a GitHub App from its .pem file
  app show APP_ID                    an app, secrets redacted
  tenants [--limit N] [--cursor C]   the tenants, in installation-id order
  tenant INSTALLATION_ID             one tenant's config, secrets redacted
  deliveries INSTALLATION_ID [--limit N] [--cursor C]
                                     the delivery log, newest first
  projects                           every project
  deployments SLUG                   a project's deployments, newest first
  install --repo owner/name [--user] a dedicated app for one repository
  install --org name [--exclude owner/name]...
  status INSTALLER_ID
  enroll INSTALLER_ID owner/name...
  uninstall INSTALLER_ID
options:
  --url URL       the worker (else GHPLANE_URL, else http://127.0.0.1:8787)
  --ca-file PEM   also trust this CA (else GHPLANE_CA_FILE), e.g. for a self-signed local https worker
  --json          print the worker's JSON answer as it is
env: GHPLANE_ADMIN_TOKEN (required); GHPLANE_WEBHOOK_SECRET and GHPLANE_CLIENT_SECRET stand in
for --webhook-secret and --client-secret, so secrets need not be on the command line";

    /// Where and how to reach the worker.
    #[derive(Debug, Default, PartialEq)]
    pub struct Options {
        pub url: Option<String>,
        pub ca_file: Option<String>,
        pub json: bool,
    }

    #[derive(Debug, PartialEq)]
    pub enum Command {
        Help,
        Install(Value),
        Status(String),
        Enroll(String, Vec<String>),
        Uninstall(String),
        /// `PUT /api/apps/{id}`: the id, the path of the `.pem` file, and the rest of the body.
        AppRegister {
            app_id: String,
            key_path: String,
            body: Value,
        },
        AppShow(String),
        Tenants(Vec<(String, String)>),
        Tenant(String),
        Deliveries(String, Vec<(String, String)>),
        Projects,
        Deployments(String),
    }

    /// Leading options, then the command.
    pub fn parse_all(args: &[String]) -> Result<(Options, Command), String> {
        let mut options = Options::default();
        let mut rest = args;
        loop {
            match rest {
                [flag, value, tail @ ..] if flag == "--url" => {
                    options.url = Some(value.clone());
                    rest = tail;
                }
                [flag, value, tail @ ..] if flag == "--ca-file" => {
                    options.ca_file = Some(value.clone());
                    rest = tail;
                }
                [flag, tail @ ..] if flag == "--json" => {
                    options.json = true;
                    rest = tail;
                }
                [flag] if flag == "--url" || flag == "--ca-file" => {
                    return Err(format!("{flag} needs a value"))
                }
                _ => break,
            }
        }
        Ok((options, parse(rest)?))
    }

    /// `--name value` pairs of a command; unknown names and missing values are usage errors.
    fn flags<'a>(
        rest: &[&'a str],
        known: &[&str],
        switches: &[&str],
    ) -> Result<Vec<(&'a str, &'a str)>, String> {
        let mut out = Vec::new();
        let mut it = rest.iter();
        while let Some(name) = it.next() {
            if switches.contains(name) {
                out.push((*name, ""));
            } else if known.contains(name) {
                let value = it.next().ok_or(format!("{name} needs a value"))?;
                out.push((*name, *value));
            } else {
                return Err(format!("unknown option {name}"));
            }
        }
        Ok(out)
    }

    fn flag<'a>(flags: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
        flags
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    pub fn parse(args: &[String]) -> Result<Command, String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["--help" | "-h" | "help"] | ["admin", "--help" | "-h" | "help"] => Ok(Command::Help),
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
            ["admin", "app", "register", rest @ ..] => {
                let f = flags(
                    rest,
                    &[
                        "--app-id",
                        "--private-key-path",
                        "--webhook-secret",
                        "--client-id",
                        "--client-secret",
                        "--slug",
                        "--repo",
                    ],
                    &[],
                )?;
                let app_id = flag(&f, "--app-id").ok_or("--app-id is required")?;
                let key_path =
                    flag(&f, "--private-key-path").ok_or("--private-key-path is required")?;
                let mut body = json!({});
                for (name, field) in [
                    ("--webhook-secret", "webhookSecret"),
                    ("--client-id", "clientId"),
                    ("--client-secret", "clientSecret"),
                    ("--slug", "slug"),
                ] {
                    if let Some(v) = flag(&f, name) {
                        body[field] = json!(v);
                    }
                }
                if let Some(repo) = flag(&f, "--repo") {
                    body["mode"] = json!("repo");
                    body["repository"] = json!(repo);
                }
                Ok(Command::AppRegister {
                    app_id: app_id.to_owned(),
                    key_path: key_path.to_owned(),
                    body,
                })
            }
            ["admin", "app", "show", id] => Ok(Command::AppShow(id.to_string())),
            ["admin", "tenants", rest @ ..] => Ok(Command::Tenants(page_flags(rest)?)),
            ["admin", "tenant", id] => Ok(Command::Tenant(id.to_string())),
            ["admin", "deliveries", id, rest @ ..] => {
                Ok(Command::Deliveries(id.to_string(), page_flags(rest)?))
            }
            ["admin", "projects"] => Ok(Command::Projects),
            ["admin", "deployments", slug] => Ok(Command::Deployments(slug.to_string())),
            _ => Err("unknown command".into()),
        }
    }

    /// `--limit N` and `--cursor C` of a paged listing, as query pairs.
    fn page_flags(rest: &[&str]) -> Result<Vec<(String, String)>, String> {
        let f = flags(rest, &["--limit", "--cursor"], &[])?;
        Ok(f.iter()
            .map(|(n, v)| (n.trim_start_matches('-').to_owned(), v.to_string()))
            .collect())
    }

    /// `?k=v&…` of a listing's query pairs; empty without any.
    fn query_string(query: &[(String, String)]) -> String {
        let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
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

    fn text(v: &Value) -> String {
        match v {
            Value::Null => "-".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// One line per project.
    pub fn render_projects(v: &Value) -> String {
        let rows = v["projects"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return "no projects\n".into();
        }
        rows.iter()
            .map(|p| {
                format!(
                    "{}  {}  {}  {}\n",
                    text(&p["slug"]),
                    text(&p["status"]),
                    text(&p["githubRepo"]["fullName"]),
                    text(&p["name"])
                )
            })
            .collect()
    }

    /// One line per delivery, and how to ask for the next page.
    pub fn render_deliveries(v: &Value, id: &str) -> String {
        let rows = v["deliveries"].as_array().cloned().unwrap_or_default();
        let mut out: String = rows
            .iter()
            .map(|d| {
                let event = match d["action"].as_str() {
                    Some(action) => format!("{}.{action}", text(&d["event"])),
                    None => text(&d["event"]),
                };
                let why = if d["reason"].is_null() {
                    &d["errorCode"]
                } else {
                    &d["reason"]
                };
                format!(
                    "{}  {event}  {}  {} {}  {}  delivery {}\n",
                    text(&d["receivedAt"]),
                    text(&d["repository"]),
                    text(&d["outcome"]),
                    text(&d["status"]),
                    text(why),
                    text(&d["id"])
                )
            })
            .collect();
        if rows.is_empty() {
            out.push_str("no deliveries\n");
        }
        if let Some(cursor) = v["nextCursor"].as_str() {
            out.push_str(&format!(
                "more: ghplane admin deliveries {id} --cursor {cursor}\n"
            ));
        }
        out
    }

    /// One line per deployment, then what is running and pending.
    pub fn render_deployments(v: &Value) -> String {
        let rows = v["deployments"].as_array().cloned().unwrap_or_default();
        let mut out: String = rows
            .iter()
            .map(|d| {
                format!(
                    "{}  {}  {}  {}  {}  {}\n",
                    text(&d["id"]),
                    text(&d["state"]),
                    text(&d["outcome"]),
                    d["sha"]
                        .as_str()
                        .map(|s| &s[..s.len().min(7)])
                        .unwrap_or("-"),
                    text(&d["trigger"]["pusher"]),
                    text(&d["createdAt"])
                )
            })
            .collect();
        if rows.is_empty() {
            out.push_str("no deployments\n");
        }
        out.push_str(&format!("running: {}\n", text(&v["running"])));
        out.push_str(&format!("pending: {}\n", text(&v["pending"]["sha"])));
        out
    }

    /// A page of the tenant listing: each row's id, account, status, app and repository
    /// count; then how to get the next page.
    pub fn render_tenants(v: &Value) -> String {
        let rows = v["installations"].as_array().cloned().unwrap_or_default();
        let mut out: String = rows
            .iter()
            .map(|t| {
                format!(
                    "{}  {}  {}  app {}  repositories {}\n",
                    text(&t["id"]),
                    text(&t["account"]["login"]),
                    text(&t["status"]),
                    text(&t["appId"]),
                    text(&t["repositoryCount"])
                )
            })
            .collect();
        if rows.is_empty() {
            out.push_str("no tenants\n");
        }
        if let Some(cursor) = v["nextCursor"].as_str() {
            out.push_str(&format!("more: ghplane admin tenants --cursor {cursor}\n"));
        }
        out
    }

    /// The TLS setup: the Mozilla roots, plus the CA of `ca_file` when given.
    fn tls_config(ca_file: Option<&str>) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let Some(path) = ca_file else {
            return Ok(None);
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--ca-file {path}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--ca-file {path}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("--ca-file {path}: no certificate in it"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("--ca-file {path}: {e}"))?;
        }
        // The crate's one crypto provider (ring, as ureq's `tls` builds it).
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }

    /// What a refusal prints: the worker's stable code, its status and message.
    #[derive(Debug)]
    struct Refusal {
        text: String,
    }

    fn call(
        options: &Options,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        let fail = |text: String| Refusal { text };
        let base = options
            .url
            .clone()
            .or_else(|| std::env::var("GHPLANE_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8787".into());
        let token = std::env::var("GHPLANE_ADMIN_TOKEN")
            .map_err(|_| fail("GHPLANE_ADMIN_TOKEN is not set".into()))?;
        let ca_file = options
            .ca_file
            .clone()
            .or_else(|| std::env::var("GHPLANE_CA_FILE").ok());
        let mut agent = ureq::AgentBuilder::new();
        if let Some(config) = tls_config(ca_file.as_deref()).map_err(fail)? {
            agent = agent.tls_config(config);
        }
        let req = agent
            .build()
            .request(method, &format!("{}{path}", base.trim_end_matches('/')))
            .set("authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match result {
            Ok(r) if r.status() == 204 => Ok(Value::Null),
            Ok(r) => r
                .into_json()
                .map_err(|e| fail(format!("unreadable answer: {e}"))),
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = r.into_json().unwrap_or_default();
                let code = v["error"]["code"]
                    .as_str()
                    .unwrap_or("http_error")
                    .to_owned();
                Err(Refusal {
                    text: format!(
                        "{code} ({status}): {}",
                        v["error"]["message"].as_str().unwrap_or("")
                    ),
                })
            }
            Err(e) => Err(fail(format!("unreachable: {e}"))),
        }
    }

    /// `--flag` value, else the environment variable (secrets stay off the command line).
    fn from_env(body: &mut Value, field: &str, var: &str) {
        if body.get(field).is_none() {
            if let Ok(v) = std::env::var(var) {
                body[field] = json!(v);
            }
        }
    }

    pub fn main(args: Vec<String>) -> i32 {
        let (options, command) = match parse_all(&args) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return 2;
            }
        };
        let call =
            |method: &str, path: &str, body: Option<&Value>| call(&options, method, path, body);
        let result = match &command {
            Command::Help => {
                println!("{USAGE}");
                return 0;
            }
            Command::Install(body) => call("POST", "/api/installers", Some(body)),
            Command::Status(id) => call("GET", &format!("/api/installers/{id}"), None),
            Command::Enroll(id, repos) => call(
                "POST",
                &format!("/api/installers/{id}/enroll"),
                Some(&json!({"repositories": repos})),
            ),
            Command::Uninstall(id) => call("DELETE", &format!("/api/installers/{id}"), None),
            Command::AppRegister {
                app_id,
                key_path,
                body,
            } => {
                let key = match std::fs::read_to_string(key_path) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("error: --private-key-path {key_path}: {e}");
                        return 1;
                    }
                };
                let mut body = body.clone();
                body["privateKey"] = json!(key);
                from_env(&mut body, "webhookSecret", "GHPLANE_WEBHOOK_SECRET");
                from_env(&mut body, "clientSecret", "GHPLANE_CLIENT_SECRET");
                call("PUT", &format!("/api/apps/{app_id}"), Some(&body))
            }
            Command::AppShow(id) => call("GET", &format!("/api/apps/{id}"), None),
            Command::Tenants(query) => call(
                "GET",
                &format!("/api/installations{}", query_string(query)),
                None,
            ),
            Command::Tenant(id) => call("GET", &format!("/api/installations/{id}/config"), None),
            Command::Deliveries(id, query) => call(
                "GET",
                &format!("/api/installations/{id}/deliveries{}", query_string(query)),
                None,
            ),
            Command::Projects => call("GET", "/projects", None),
            Command::Deployments(slug) => {
                call("GET", &format!("/projects/{slug}/deployments"), None)
            }
        };
        match result {
            Ok(v) if options.json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                0
            }
            Ok(v) => {
                let out = match &command {
                    Command::Projects => render_projects(&v),
                    Command::Deliveries(id, _) => render_deliveries(&v, id),
                    Command::Deployments(_) => render_deployments(&v),
                    Command::Tenants(_) => render_tenants(&v),
                    // Records the worker already redacted: shown whole.
                    Command::AppRegister { .. } | Command::AppShow(_) | Command::Tenant(_) => {
                        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
                    }
                    _ => render(&v),
                };
                print!("{out}");
                0
            }
            Err(e) => {
                eprintln!("error: {}", e.text);
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
        fn parses_the_bootstrap_commands() {
            assert_eq!(
                parse(&args(
                    "admin app register --app-id 42 --private-key-path k.pem --webhook-secret w \
                     --client-id Iv1.a --client-secret c --slug s"
                ))
                .unwrap(),
                Command::AppRegister {
                    app_id: "42".into(),
                    key_path: "k.pem".into(),
                    body: json!({"webhookSecret": "w", "clientId": "Iv1.a", "clientSecret": "c", "slug": "s"}),
                }
            );
            assert_eq!(
                parse(&args(
                    "admin app register --private-key-path k.pem --app-id 7 --repo o/r"
                ))
                .unwrap(),
                Command::AppRegister {
                    app_id: "7".into(),
                    key_path: "k.pem".into(),
                    body: json!({"mode": "repo", "repository": "o/r"}),
                }
            );
            assert_eq!(
                parse(&args("admin app show 7")).unwrap(),
                Command::AppShow("7".into())
            );
            assert_eq!(
                parse(&args("admin tenants")).unwrap(),
                Command::Tenants(vec![])
            );
            assert_eq!(
                parse(&args("admin tenants --limit 2 --cursor 9")).unwrap(),
                Command::Tenants(vec![
                    ("limit".into(), "2".into()),
                    ("cursor".into(), "9".into())
                ])
            );
            assert_eq!(
                parse(&args("admin tenant 9")).unwrap(),
                Command::Tenant("9".into())
            );
            assert_eq!(
                parse(&args("admin deliveries 9 --limit 5 --cursor c1")).unwrap(),
                Command::Deliveries(
                    "9".into(),
                    vec![("limit".into(), "5".into()), ("cursor".into(), "c1".into())]
                )
            );
            assert_eq!(parse(&args("admin projects")).unwrap(), Command::Projects);
            assert_eq!(
                parse(&args("admin deployments acme-ab12")).unwrap(),
                Command::Deployments("acme-ab12".into())
            );
            assert_eq!(parse(&args("--help")).unwrap(), Command::Help);
            for bad in [
                "admin app register --app-id 7",
                "admin app register --private-key-path k.pem",
                "admin app register --app-id 7 --private-key-path k.pem --bogus x",
                "admin app register --app-id 7 --private-key-path",
                "admin deliveries",
                "admin deliveries 9 --limit",
                "admin tenant",
                "admin projects extra",
            ] {
                assert!(parse(&args(bad)).is_err(), "{bad}");
            }
        }

        #[test]
        fn leading_options_choose_the_worker_and_its_ca() {
            let (options, command) = parse_all(&args(
                "--url https://w.example --ca-file ca.pem --json admin projects",
            ))
            .unwrap();
            assert_eq!(
                options,
                Options {
                    url: Some("https://w.example".into()),
                    ca_file: Some("ca.pem".into()),
                    json: true
                }
            );
            assert_eq!(command, Command::Projects);
            assert_eq!(
                parse_all(&args("admin projects")).unwrap().0,
                Options::default()
            );
            assert!(parse_all(&args("--url")).is_err());
            assert!(parse_all(&args("--ca-file ca.pem")).is_err());
        }

        #[test]
        fn lists_render_one_line_per_row() {
            assert_eq!(
                render_projects(&json!({"projects": [
                    {"slug": "acme-ab12", "status": "review", "name": "Acme", "githubRepo": {"fullName": "o/acme"}},
                    {"slug": "b-cd34", "status": "draft", "name": "B", "githubRepo": null}]})),
                "acme-ab12  review  o/acme  Acme\nb-cd34  draft  -  B\n"
            );
            assert_eq!(render_projects(&json!({"projects": []})), "no projects\n");
            assert_eq!(
                render_deliveries(
                    &json!({"deliveries": [{"id": "d1", "receivedAt": "2026-01-01T00:00:00Z", "event": "push",
                        "action": null, "repository": "o/r", "outcome": "ignored", "status": 202,
                        "errorCode": null, "reason": "other_branch", "durationMs": 3, "attempts": 1}],
                        "nextCursor": "c2"}),
                    "9"
                ),
                "2026-01-01T00:00:00Z  push  o/r  ignored 202  other_branch  delivery d1\n\
                 more: ghplane admin deliveries 9 --cursor c2\n"
            );
            assert_eq!(
                render_deployments(
                    &json!({"deployments": [{"id": 3, "state": "success", "outcome": null,
                    "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "trigger": {"pusher": "octocat"},
                    "createdAt": "2026-01-01T00:00:00Z"}], "running": null, "pending": null})
                ),
                "3  success  -  6dcb09b  octocat  2026-01-01T00:00:00Z\nrunning: -\npending: -\n"
            );
            assert_eq!(
                render_tenants(&json!({"installations": [
                    {"id": 42, "appId": 7, "account": {"login": "octo-org", "id": 77, "type": "Organization"},
                        "status": "active", "repositoryCount": 2,
                        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"},
                    {"id": 43, "appId": 7, "account": null, "status": "suspended", "repositoryCount": 0,
                        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}],
                    "nextCursor": "43"})),
                "42  octo-org  active  app 7  repositories 2\n\
                 43  -  suspended  app 7  repositories 0\n\
                 more: ghplane admin tenants --cursor 43\n"
            );
            assert_eq!(
                render_tenants(&json!({"installations": [], "nextCursor": null})),
                "no tenants\n"
            );
        }

        #[test]
        fn a_ca_file_without_a_certificate_is_refused() {
            let path =
                std::env::temp_dir().join(format!("ghplane-cli-empty-{}.pem", std::process::id()));
            std::fs::write(&path, "not a certificate\n").unwrap();
            let err = tls_config(path.to_str()).unwrap_err();
            std::fs::remove_file(&path).unwrap();
            assert!(err.ends_with("no certificate in it"), "{err}");
            assert!(tls_config(None).unwrap().is_none());
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
