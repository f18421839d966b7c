//! The HTML pages of the setup flow. Everything interpolated is escaped; the manifest travels
//! as a hidden form field, exactly as GitHub's manifest flow expects.

use serde_json::Value;

use crate::installer::manifest::{EVENTS, PERMISSIONS};
use crate::installer::{InstallerRecord, Phase, Target};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:46rem;margin:2.5rem auto;padding:0 1.25rem;color:#1f2328;line-height:1.5}\
h1{font-size:1.6rem;margin-bottom:.25rem}.sub{color:#59636e;margin-top:0}\
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border:1px solid #d1d9e0;padding:.4rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa;width:11rem}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;white-space:nowrap}\
button,.button{background:#1f883d;color:#fff;border:0;border-radius:6px;padding:.6rem 1.1rem;font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}\
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:.6rem .9rem}\
.ok{background:#dafbe1;border:1px solid #1a7f3766;border-radius:6px;padding:.6rem .9rem}\
.err{background:#ffebe9;border:1px solid #cf222e66;border-radius:6px;padding:.6rem .9rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{} · ghplane</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

fn what(record: &InstallerRecord) -> (String, String) {
    match &record.target {
        Target::Repo { repository, .. } => (
            format!("Dedicated GitHub App for {repository}"),
            format!(
                "This app serves <strong>only {}</strong>. It is independent of any organisation-level installation: the repository is never served by both.",
                escape(repository.as_str())
            ),
        ),
        Target::Org { org, .. } => (
            format!("Org-level GitHub App for {org}"),
            format!(
                "This app is installed on the organisation <strong>{}</strong>. Repositories with dedicated apps are never served through it.",
                escape(org)
            ),
        ),
    }
}

/// The page that explains the app and posts its manifest to GitHub. With `?autosubmit=1`
/// the form submits itself on load (for scripted runs).
pub fn setup(record: &InstallerRecord, manifest: &Value, action: &str) -> String {
    let (title, intro) = what(record);
    let permissions: String = PERMISSIONS
        .iter()
        .map(|(k, v)| format!("<code>{k}: {v}</code> "))
        .collect();
    let events: String = EVENTS
        .iter()
        .map(|e| format!("<code>{e}</code> "))
        .collect();
    let manifest_text = manifest.to_string();
    let str_of = |k: &str| manifest[k].as_str().unwrap_or_default().to_owned();
    let body = format!(
        "<h1>{title}</h1><p class=\"sub\">ghplane installer <code>{id}</code></p><p>{intro}</p>\
<table><tr><th>App name</th><td><code>{name}</code> (private)</td></tr>\
<tr><th>Created under</th><td>{owner}</td></tr>\
<tr><th>Permissions</th><td>{permissions}</td></tr>\
<tr><th>Events</th><td>{events}</td></tr>\
<tr><th>Webhook URL</th><td><code>{hook}</code></td></tr>\
<tr><th>Returns to</th><td><code>{redirect}</code></td></tr></table>\
<p class=\"note\">GitHub shows the app before creating it. Afterwards you come back here and install it on {target}.</p>\
<form id=\"manifest-form\" method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"manifest\" value=\"{manifest}\">\
<button type=\"submit\" id=\"create\">Create the GitHub App on GitHub</button></form>\
<script>if(new URLSearchParams(location.search).get('autosubmit')==='1'){{document.getElementById('manifest-form').submit();}}</script>",
        title = escape(&title),
        id = escape(record.id.as_str()),
        name = escape(&str_of("name")),
        owner = match record.target.account() {
            crate::installer::AccountKind::Organization => format!("the organisation <code>{}</code>", escape(record.target.owner())),
            crate::installer::AccountKind::User => "your personal account".to_owned(),
        },
        hook = escape(manifest["hook_attributes"]["url"].as_str().unwrap_or_default()),
        redirect = escape(&str_of("redirect_url")),
        target = escape(&record.target.describe()),
        action = escape(action),
        manifest = escape(&manifest_text),
    );
    page(&title, &body)
}

/// The setup page once the app exists: where the installer stands and what to do next.
pub fn progress(record: &InstallerRecord, web_base: &str, message: Option<&str>) -> String {
    let (title, _) = what(record);
    let app = record.app.as_ref();
    let banner = match message {
        Some(m) => format!("<p class=\"ok\">{}</p>", escape(m)),
        None => String::new(),
    };
    let install = match (record.phase(), record.install_url()) {
        (Phase::AwaitingInstallation | Phase::Misconfigured, Some(url)) => format!(
            "<p><a class=\"button\" id=\"install\" href=\"{}\">Install the app on {}</a></p>",
            escape(&url),
            escape(&record.target.describe())
        ),
        _ => String::new(),
    };
    let body = format!(
        "<h1>{title}</h1><p class=\"sub\">ghplane installer <code>{id}</code></p>{banner}\
<table><tr><th>Phase</th><td id=\"phase\">{phase}</td></tr>\
<tr><th>App</th><td>{app}</td></tr>\
<tr><th>Installation</th><td>{inst}</td></tr></table>\
<p id=\"next-step\"><strong>Next step:</strong> {next}</p>{install}",
        title = escape(&title),
        id = escape(record.id.as_str()),
        phase = record.phase().as_str(),
        app = app.map_or("not created yet".to_owned(), |a| format!(
            "<a href=\"{}\"><code>{}</code></a> (id {})",
            escape(&a.html_url),
            escape(&a.slug),
            a.app_id
        )),
        inst = record
            .installation_id
            .map_or("not installed yet".to_owned(), |i| i.to_string()),
        next = escape(&record.next_step(web_base, 0)),
    );
    page(&title, &body)
}

pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1><p class=\"err\" id=\"error\">{}</p><p>Nothing was stored. Start again from the installer's setup page.</p>",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{manifest, parse_input, InstallerId};

    #[test]
    fn setup_page_escapes_and_carries_the_manifest() {
        let r = InstallerRecord::new(
            InstallerId::from_random(&[2; 8]),
            parse_input(br#"{"mode":"repo","repository":"octo/api"}"#).unwrap(),
            "https://gp.example",
            "t",
        );
        let m = manifest::manifest(&r);
        let html = setup(
            &r,
            &m,
            "https://github.com/organizations/octo/settings/apps/new?state=a.b",
        );
        assert!(html.contains("name=\"manifest\" value=\"{&quot;"));
        assert!(!html.contains("value=\"{\""));
        assert!(html.contains("autosubmit"));
        assert!(html.contains(
            "action=\"https://github.com/organizations/octo/settings/apps/new?state=a.b\""
        ));
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let e = error("Setup failed", "<script>");
        assert!(e.contains("&lt;script&gt;") && !e.contains("<script>"));
    }
}
