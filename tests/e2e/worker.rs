//! Starts the real worker: `wrangler dev` on workerd with local Durable Object storage in a
//! folder of the test's own, and always stops the whole process tree it started.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_TOKEN: &str = "e2e-admin-token-7f3c9a";
/// base64 of 32 bytes; a test key, never used outside tests.
pub const ENCRYPTION_KEY: &str = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Builds the worker once per test run: the deployed build plus the test seams of the
/// `e2e-seams` cargo feature (see `make build-e2e`).
pub fn build_worker() {
    let status = Command::new("make")
        .args(["-s", "build-e2e"])
        .current_dir(repo_root())
        .status()
        .expect("run make build");
    assert!(status.success(), "make build failed");
}

pub struct WorkerOptions {
    pub github_api_base: String,
    pub vars: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    /// `wrangler dev --test-scheduled`: `GET /__scheduled` runs the cron handler.
    pub test_scheduled: bool,
    /// Serve over https with this certificate (`wrangler dev --local-protocol https`).
    pub https: Option<Https>,
}

/// A server certificate for `wrangler dev`, and the CA clients must trust for it.
pub struct Https {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl WorkerOptions {
    pub fn new(github_api_base: &str) -> Self {
        WorkerOptions {
            github_api_base: github_api_base.to_owned(),
            vars: Vec::new(),
            secrets: Vec::new(),
            test_scheduled: false,
            https: None,
        }
    }
}

pub struct Worker {
    pub dir: PathBuf,
    options: WorkerOptions,
    child: Option<Child>,
    port: u16,
    output: Arc<Mutex<String>>,
    /// This worker's `ENVIRONMENT`, unique per worker and process, so that readiness proves
    /// the server on the port is this worker and not another one (ports are picked by binding
    /// port 0 and letting go, so another process may take the same one in between).
    environment: String,
}

static NEXT_WORKER: AtomicU32 = AtomicU32::new(1);

/// How often a worker is started on fresh ports when the port it was given was taken.
const SPAWN_ATTEMPTS: usize = 3;

impl Worker {
    /// Starts a worker whose state lives under `dir` (created; reused across restarts).
    pub fn start(dir: &Path, options: WorkerOptions) -> Worker {
        std::fs::create_dir_all(dir).expect("worker dir");
        write_config(dir);
        let mut w = Worker {
            dir: dir.to_owned(),
            options,
            child: None,
            port: 0,
            output: Arc::default(),
            environment: format!(
                "test-{}-{}",
                std::process::id(),
                NEXT_WORKER.fetch_add(1, Ordering::Relaxed)
            ),
        };
        w.write_dev_vars();
        w.spawn();
        w
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.options.https.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// An HTTP client for this worker: it trusts the worker's CA when it serves https.
    pub fn agent(&self) -> ureq::AgentBuilder {
        let agent = ureq::AgentBuilder::new();
        match &self.options.https {
            None => agent,
            Some(https) => agent.tls_config(client_tls(&https.ca)),
        }
    }

    /// The worker's own workerd socket, without wrangler's dev proxy in front of it.
    ///
    /// `wrangler dev` forwards every request through a ProxyWorker, a Durable Object that
    /// pipes the request body on to the worker. When the worker answers before the body has
    /// ended (a 413 while the upload is still coming, which is the point), that Durable
    /// Object throws "Can't read from request stream after response has been sent" and
    /// answers its next requests with "503 Your worker restarted mid-request"
    /// (cloudflare/workerd#918, cloudflare/workers-sdk#15709). Neither the deployed runtime
    /// nor workerd itself has that layer, so tests of early answers talk to workerd here.
    /// Wrangler names the address only in its debug log (always written to the log file).
    pub fn runtime_url(&self) -> String {
        let logs = self.dir.join("wrangler-logs");
        // The log is appended asynchronously: give it a moment after "ready".
        let deadline = Instant::now() + Duration::from_secs(10);
        let after = loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            // Named by start time: the newest is this run's.
            files.sort();
            let text = files
                .last()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .unwrap_or_default();
            if let Some((_, after)) = text.rsplit_once("\"userWorkerUrl\":{") {
                break after.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "wrangler logged no worker address under {}",
                logs.display()
            );
            thread::sleep(Duration::from_millis(100));
        };
        let object: Value = serde_json::from_str(&format!(
            "{{{}}}",
            after.split('}').next().expect("address object")
        ))
        .expect("address object parses");
        format!(
            "http://{}:{}",
            object["hostname"].as_str().expect("hostname"),
            object["port"].as_str().expect("port")
        )
    }

    /// The `ENVIRONMENT` this worker runs with (`/healthz` shows it; deployments carry it).
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// Everything wrangler and workerd printed so far (console lines included).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The process group of the running `wrangler dev` (workerd runs in it too).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sets a secret for the next (re)start.
    pub fn set_secret(&mut self, name: &str, value: &str) {
        self.options.secrets.retain(|(k, _)| k != name);
        self.options
            .secrets
            .push((name.to_owned(), value.to_owned()));
        self.write_dev_vars();
    }

    /// Removes a secret for the next (re)start.
    pub fn remove_secret(&mut self, name: &str) {
        self.options.secrets.retain(|(k, _)| k != name);
        self.write_dev_vars();
    }

    fn write_dev_vars(&self) {
        let mut secrets = vec![
            ("ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
            ("ENCRYPTION_KEY".to_owned(), ENCRYPTION_KEY.to_owned()),
        ];
        for (k, v) in &self.options.secrets {
            secrets.retain(|(n, _)| n != k);
            secrets.push((k.clone(), v.clone()));
        }
        let dev_vars: String = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.dir.join(".dev.vars"), dev_vars).expect("write .dev.vars");
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts wrangler on fresh ports until this worker answers on one of them.
    fn spawn(&mut self) {
        for attempt in 1..=SPAWN_ATTEMPTS {
            match self.spawn_once() {
                Ok(()) => return,
                Err(why) if attempt < SPAWN_ATTEMPTS => {
                    println!("worker: retrying on fresh ports ({why})");
                    self.stop();
                }
                Err(why) => panic!("worker not started: {why}:\n{}", self.output()),
            }
        }
    }

    fn spawn_once(&mut self) -> Result<(), String> {
        self.port = free_port();
        let inspector = free_port();
        let root = repo_root();
        let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
        cmd.arg("dev")
            .arg("-c")
            .arg(self.dir.join("wrangler.json"))
            .args(["--ip", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(self.dir.join("state"))
            .args(["--show-interactive-dev-session=false", "--log-level", "log"])
            .arg("--var")
            .arg(format!("GITHUB_API_BASE:{}", self.options.github_api_base))
            .arg("--var")
            .arg(format!("ENVIRONMENT:{}", self.environment));
        if self.options.test_scheduled {
            cmd.arg("--test-scheduled");
        }
        for (k, v) in &self.options.vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        if let Some(https) = &self.options.https {
            cmd.args(["--local-protocol", "https"])
                .arg("--https-cert-path")
                .arg(&https.cert)
                .arg("--https-key-path")
                .arg(&https.key);
        }
        cmd.current_dir(&root)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("WRANGLER_LOG_PATH", self.dir.join("wrangler-logs"))
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so stopping it reaches workerd too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("spawn wrangler dev");
        pipe(child.stdout.take().unwrap(), self.output.clone());
        pipe(child.stderr.take().unwrap(), self.output.clone());
        self.child = Some(child);
        self.wait_ready()
    }

    /// Ready when `/healthz` on our port answers with this worker's own `ENVIRONMENT`. An
    /// early exit (the port was taken) or another server answering there is an `Err`, and
    /// the caller starts again on fresh ports.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let agent = self.agent().timeout(Duration::from_secs(2)).build();
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("wrangler dev exited early ({status})"));
                }
            }
            if let Ok(r) = agent.get(&format!("{}/healthz", self.base_url())).call() {
                let body: Value = r.into_json().unwrap_or_default();
                if body["environment"] == self.environment.as_str() {
                    return Ok(());
                }
                return Err(format!(
                    "another server answers on port {}: {body}",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("worker not ready after 90 s:\n{}", self.output());
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (workerd may outlive wrangler) goes now.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// rustls trusting only `ca` (a PEM file).
pub fn client_tls(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("read the CA") {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("add the CA");
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn pipe(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut out = into.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}

/// The test's wrangler config: the project's own `wrangler.jsonc`, minus the build step (the
/// harness built once already) and with `main` (`src/entry.mjs`) and the assets' folder made
/// absolute.
fn write_config(dir: &Path) {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("wrangler.jsonc")).expect("read wrangler.jsonc");
    let json: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut config: Value =
        serde_json::from_str(&json).expect("wrangler.jsonc parses once comments are stripped");
    let obj = config.as_object_mut().unwrap();
    obj.remove("build");
    obj.remove("$schema");
    let main = obj["main"].as_str().expect("main").to_owned();
    obj.insert(
        "main".into(),
        Value::String(root.join(main).display().to_string()),
    );
    // The console's static assets, built by `make build-e2e` (console/dist).
    if let Some(assets) = obj.get_mut("assets").and_then(Value::as_object_mut) {
        let directory = assets["directory"]
            .as_str()
            .expect("assets.directory")
            .to_owned();
        assets.insert(
            "directory".into(),
            Value::String(root.join(directory).display().to_string()),
        );
    }
    std::fs::write(
        dir.join("wrangler.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .expect("write config");
}
