//! A small W3C WebDriver client for the console's browser tests: Debian's `chromedriver`
//! driving Debian's headless `chromium` (both from apt; `make chromium` installs them), over
//! plain HTTP with the suite's own `ureq`. Only what the tests use: open a page, wait for an
//! element, read text, click, type, run a script, take a screenshot.
//!
//! One `chromedriver` process per run (started on first use, killed with its process group
//! when the run ends); one browser session per test, with its own profile, so cookies never
//! leak from one test's person to another's.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::worker::free_port;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Tab key, for [`Browser::press`].
pub const TAB: &str = "\u{E004}";

struct Driver {
    base: String,
    child: Mutex<Child>,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

fn driver() -> &'static Driver {
    DRIVER.get_or_init(|| {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver (make test installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            base,
            child: Mutex::new(child),
        }
    })
}

/// Stops chromedriver (called once at the end of the run).
pub fn shutdown() {
    if let Some(d) = DRIVER.get() {
        let mut child = d.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn send(method: &str, url: &str, body: Option<Value>) -> Value {
    let req = ureq::request(method, url).timeout(Duration::from_secs(60));
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("webdriver {method} {url}: {e}"),
    };
    let status = resp.status();
    let v: Value = resp.into_json().expect("webdriver answers JSON");
    assert!(
        status < 400,
        "webdriver {method} {url}: {status} {}",
        v["value"]
    );
    v["value"].clone()
}

/// One headless browser with its own profile.
pub struct Browser {
    url: String,
}

impl Browser {
    /// A browser `width` × `height` CSS pixels.
    pub fn open(width: u32, height: u32) -> Browser {
        Browser::start(width, height, json!({}))
    }

    /// A phone's screen, `width` × `height` CSS pixels: Chromium keeps a window at least
    /// 500 px wide, so narrower screens are emulated.
    pub fn phone(width: u32, height: u32) -> Browser {
        let metrics =
            json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}});
        Browser::start(
            width.max(500),
            height,
            json!({ "mobileEmulation": metrics }),
        )
    }

    fn start(width: u32, height: u32, extra: Value) -> Browser {
        let d = driver();
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", format!("--window-size={width},{height}")]
        });
        if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options
        }}});
        let v = send("POST", &format!("{}/session", d.base), Some(caps));
        let id = v["sessionId"].as_str().expect("a session id").to_owned();
        Browser {
            url: format!("{}/session/{id}", d.base),
        }
    }

    pub fn goto(&self, url: &str) {
        send(
            "POST",
            &format!("{}/url", self.url),
            Some(json!({"url": url})),
        );
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        send("POST", &format!("{}/refresh", self.url), Some(json!({})));
    }

    pub fn current_url(&self) -> String {
        send("GET", &format!("{}/url", self.url), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn run(&self, script: &str, args: Value) -> Value {
        send(
            "POST",
            &format!("{}/execute/sync", self.url),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` (a function body whose last argument is the callback to call with the
    /// result) and waits for it, as for a `fetch` in the page.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        send(
            "POST",
            &format!("{}/execute/async", self.url),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The whole page's HTML as it is now (every attribute and text node).
    pub fn html(&self) -> String {
        send("GET", &format!("{}/source", self.url), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets a cookie for the page's origin (visit the origin first), e.g. a session signed
    /// in outside the browser.
    pub fn add_cookie(&self, name: &str, value: &str) {
        send(
            "POST",
            &format!("{}/cookie", self.url),
            Some(json!({"cookie": {"name": name, "value": value, "path": "/",
                "secure": true, "httpOnly": true, "sameSite": "Lax"}})),
        );
        let kept = send("GET", &format!("{}/cookie/{name}", self.url), None);
        assert_eq!(kept["name"], name, "the browser did not keep the cookie");
    }

    /// Presses a key (a WebDriver key code such as [`TAB`]) on the focused element.
    pub fn press(&self, key: &str) {
        send(
            "POST",
            &format!("{}/actions", self.url),
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
            ),
        );
    }

    /// Grants the page a permission (`clipboard-read`, `clipboard-write`, …).
    pub fn grant(&self, permission: &str) {
        send(
            "POST",
            &format!("{}/permissions", self.url),
            Some(json!({"descriptor": {"name": permission}, "state": "granted"})),
        );
    }

    fn find_now(&self, css: &str) -> Option<String> {
        let v = send(
            "POST",
            &format!("{}/elements", self.url),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .and_then(|a| a.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(str::to_owned)
    }

    /// Waits (up to 20 s) for an element matching `css` and returns its reference.
    pub fn wait(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_now(css) {
                return e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no element {css} on {}: {}",
                self.current_url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's HTML as it is now (for failure messages), cut to 2,000 characters.
    pub fn source(&self) -> String {
        self.html().chars().take(2000).collect()
    }

    /// Whether an element matching `css` is on the page now.
    pub fn has(&self, css: &str) -> bool {
        self.find_now(css).is_some()
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        send(
            "POST",
            &format!("{}/elements", self.url),
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    /// The rendered text of the first element matching `css` (waiting for it).
    pub fn text(&self, css: &str) -> String {
        let e = match self.find_now(css) {
            Some(e) => e,
            None => return String::new(),
        };
        send("GET", &format!("{}/element/{e}/text", self.url), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the text of `css` contains `needle`, and returns it.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let t = self.text(css);
            if t.contains(needle) {
                return t;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css} never said {needle:?}; it says {t:?} on {}: {}",
                self.current_url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let e = self.wait(css);
        send(
            "POST",
            &format!("{}/element/{e}/click", self.url),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait(css);
        send(
            "POST",
            &format!("{}/element/{e}/clear", self.url),
            Some(json!({})),
        );
        send(
            "POST",
            &format!("{}/element/{e}/value", self.url),
            Some(json!({"text": text})),
        );
    }

    /// Resizes the window to `width` × `height`.
    pub fn resize(&self, width: u32, height: u32) {
        send(
            "POST",
            &format!("{}/window/rect", self.url),
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Presses Tab `times` times from the page's start and answers what had the focus after
    /// each press: its `data-testid`, else its tag and text (the keyboard path through the page).
    pub fn tab_path(&self, times: usize) -> Vec<String> {
        self.run(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            json!([]),
        );
        (0..times)
            .map(|_| {
                send(
                    "POST",
                    &format!("{}/actions", self.url),
                    Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                        {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]})),
                );
                self.run(
                    "const e = document.activeElement; return e.dataset.testid || \
                     (e.tagName.toLowerCase() + ':' + (e.getAttribute('name') || e.textContent.trim()).slice(0, 40));",
                    json!([]),
                )
                .as_str()
                .unwrap_or_default()
                .to_owned()
            })
            .collect()
    }

    /// The page's scroll width and the viewport's width (CSS pixels): equal when nothing
    /// scrolls sideways.
    pub fn widths(&self) -> (i64, i64) {
        let v = self.run(
            "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];",
            json!([]),
        );
        (v[0].as_i64().unwrap_or(-1), v[1].as_i64().unwrap_or(-1))
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        let b64 = send("GET", &format!("{}/screenshot", self.url), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url).call();
    }
}
