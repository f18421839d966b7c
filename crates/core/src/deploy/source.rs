//! Where a project deploys from: one repository (by GitHub's stable id, so renames don't
//! break the link) and one branch of one installation. Invariant: only a push that updates
//! exactly `refs/heads/<branch>` of that repository deploys; tags and deletions never do.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::ids::{truncate, InstallationId, RepoFullName, RepoId};
use crate::input::{invalid, not_null, parse_object, reject_unknown};

const MAX_BRANCH_LEN: usize = 255;
const MAX_URL_LEN: usize = 2048;
/// The `after` of a push that deletes the ref (SHA-1 and SHA-256 repositories).
const ZERO_SHA1: &str = "0000000000000000000000000000000000000000";

/// A branch name as `git check-ref-format --branch` accepts it (the rules that matter for a
/// name typed by a person), without the `refs/heads/` prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BranchName(String);

impl BranchName {
    pub fn parse(s: &str) -> Result<BranchName, String> {
        let fail = |why: &str| Err(format!("{why}; got {:?}", truncate(s, 80)));
        if s.is_empty() || s.len() > MAX_BRANCH_LEN {
            return fail("must be 1 to 255 bytes");
        }
        if s.starts_with("refs/") {
            return fail("give the branch name without refs/heads/");
        }
        if s == "@" || s == "HEAD" || s.starts_with('-') {
            return fail("is not a usable branch name");
        }
        if s.chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
        {
            return fail("must not contain spaces, control characters or any of ~^:?*[\\");
        }
        if s.contains("..") || s.contains("@{") || s.contains("//") {
            return fail("must not contain '..', '@{' or '//'");
        }
        if s.starts_with('/') || s.ends_with('/') || s.ends_with('.') {
            return fail("must not start or end with '/' or end with '.'");
        }
        if s.split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"))
        {
            return fail("no path component may start with '.' or end with '.lock'");
        }
        Ok(BranchName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `refs/heads/<branch>`.
    pub fn git_ref(&self) -> String {
        format!("refs/heads/{}", self.0)
    }
}

impl<'de> Deserialize<'de> for BranchName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BranchName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for BranchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where deploy jobs are POSTed. HTTPS only, because the signed body carries a credentials
/// ticket; plain HTTP is allowed to the local machine so tests can run a receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HookUrl(String);

impl HookUrl {
    pub fn parse(s: &str) -> Result<HookUrl, String> {
        let fail = |why: &str| Err(format!("{why}; got {:?}", truncate(s, 120)));
        if s.len() > MAX_URL_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return fail("must be at most 2048 printable ASCII characters");
        }
        let (secure, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return fail("must be an https:// URL");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return fail("must not carry credentials");
        }
        let (host, port) = if authority.starts_with('[') {
            let end = authority.find(']').map_or(authority.len(), |i| i + 1);
            match authority.get(end..) {
                Some("") => (&authority[..end], None),
                Some(p) if p.starts_with(':') => (&authority[..end], Some(&p[1..])),
                _ => return fail("must name a host"),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let host_ok = if let Some(v6) = host.strip_prefix('[') {
            v6.strip_suffix(']').is_some_and(|a| {
                !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
            })
        } else {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        };
        if !host_ok {
            return fail("must name a host");
        }
        if let Some(p) = port {
            if !p.parse::<u16>().is_ok_and(|n| n > 0) || p.starts_with('0') {
                return fail("has an invalid port");
            }
        }
        if !secure
            && !matches!(
                host.to_ascii_lowercase().as_str(),
                "127.0.0.1" | "localhost"
            )
        {
            return fail("must be https:// (http:// only to 127.0.0.1 or localhost)");
        }
        Ok(HookUrl(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HookUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `PUT /projects/:slug/source`, as received: `{installationId, repoId, branch,
/// deployHookUrl?}`. The adapter reads the repository by id with the installation's token
/// (which also proves the installation covers it) and then calls [`Source::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInput {
    pub installation_id: InstallationId,
    pub repo_id: RepoId,
    pub branch: BranchName,
    pub deploy_hook_url: Option<HookUrl>,
}

impl SourceInput {
    pub fn parse(body: &[u8]) -> Result<SourceInput, ApiError> {
        let map = parse_object(body)?;
        reject_unknown(
            &map,
            &["installationId", "repoId", "branch", "deployHookUrl"],
        )?;
        let required = |key: &str| -> Result<&Value, ApiError> {
            not_null(&map, key)?.ok_or_else(|| invalid(key, "is required"))
        };
        let number = |key: &str| -> Result<u64, ApiError> {
            required(key)?
                .as_u64()
                .ok_or_else(|| invalid(key, "must be a positive integer"))
        };
        let installation_id = InstallationId::from_u64(number("installationId")?)
            .map_err(|e| invalid("installationId", &e))?;
        let repo_id = RepoId::from_u64(number("repoId")?).map_err(|e| invalid("repoId", &e))?;
        let branch = required("branch")?
            .as_str()
            .ok_or_else(|| invalid("branch", "must be a string"))
            .and_then(|s| BranchName::parse(s).map_err(|e| invalid("branch", &e)))?;
        let deploy_hook_url = match map.get("deployHookUrl") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| invalid("deployHookUrl", "must be a string"))
                    .and_then(|s| HookUrl::parse(s).map_err(|e| invalid("deployHookUrl", &e)))?,
            ),
        };
        Ok(SourceInput {
            installation_id,
            repo_id,
            branch,
            deploy_hook_url,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub installation_id: InstallationId,
    pub repo_id: RepoId,
    pub node_id: String,
    /// As of linking; pushes are matched by `repo_id`, so a rename only makes this stale.
    pub full_name: RepoFullName,
    pub branch: BranchName,
    pub deploy_hook_url: Option<HookUrl>,
}

impl Source {
    pub fn resolve(input: SourceInput, full_name: RepoFullName, node_id: String) -> Source {
        Source {
            installation_id: input.installation_id,
            repo_id: input.repo_id,
            node_id,
            full_name,
            branch: input.branch,
            deploy_hook_url: input.deploy_hook_url,
        }
    }

    /// Whether a push event (its `repository.id`, `ref`, `deleted` and `after`) deploys
    /// this project.
    pub fn wants_push(&self, repo_id: RepoId, git_ref: &str, deleted: bool, after: &str) -> bool {
        repo_id == self.repo_id
            && pushed_branch(git_ref, deleted, after) == Some(self.branch.as_str())
    }
}

/// The branch a push moved, or `None` when it deployed nothing: tags (`refs/tags/…`), other
/// refs, and deletions (`deleted: true` or an all-zero `after`).
pub fn pushed_branch<'a>(git_ref: &'a str, deleted: bool, after: &str) -> Option<&'a str> {
    let deleting = deleted || after.is_empty() || after.bytes().all(|b| b == b'0');
    if deleting {
        return None;
    }
    git_ref
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
}

/// Lowercase hex of SHA-1 (40) or SHA-256 (64) length, and not the deletion marker.
pub fn is_commit_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s != ZERO_SHA1
        && !s.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

    #[test]
    fn branch_names_follow_git_rules() {
        for good in [
            "main",
            "release/1.2",
            "feature/x-y_z",
            "ünïcode",
            "a.b",
            "v1@x",
        ] {
            assert!(BranchName::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "refs/heads/main",
            "@",
            "HEAD",
            "-x",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[1]",
            "a\\b",
            "a\u{7f}",
            "a..b",
            "a@{1}",
            "a//b",
            "/a",
            "a/",
            "a.",
            ".hidden",
            "x/.y",
            "a.lock",
            "x.lock/y",
            &"b".repeat(256),
        ] {
            assert!(BranchName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            BranchName::parse("main").unwrap().git_ref(),
            "refs/heads/main"
        );
    }

    #[test]
    fn hook_urls_are_https_or_local_http() {
        for good in [
            "https://deploy.example.com/hook",
            "https://deploy.example.com:8443/hook?x=1",
            "https://[2001:db8::1]/h",
            "https://[2001:db8::1]:8443/h",
            "https://host",
            "http://127.0.0.1:9999/hook",
            "http://localhost:8080/",
            "http://LOCALHOST/",
        ] {
            assert!(HookUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ftp://x/",
            "http://example.com/hook",
            "http://10.0.0.1/",
            "http://127.0.0.1.evil.com/",
            "https://user:pw@host/",
            "https://localhost@evil.com/",
            "https:///nohost",
            "https://host:0/",
            "https://host:99999/",
            "https://host:/x",
            "https://[zz]/",
            "https://[::1/",
            "https://[::1]x/",
            "https://ho st/",
            "https://host/a b",
            "https://hé.com/",
            &format!("https://h/{}", "a".repeat(2048)),
        ] {
            assert!(HookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_a_source_body() {
        let s = SourceInput::parse(
            br#"{"installationId": 7, "repoId": 99, "branch": "main", "deployHookUrl": "https://h/x"}"#,
        )
        .unwrap();
        assert_eq!(s.installation_id.get(), 7);
        assert_eq!(s.repo_id.get(), 99);
        assert_eq!(s.branch.as_str(), "main");
        assert_eq!(s.deploy_hook_url.unwrap().as_str(), "https://h/x");
        let s = SourceInput::parse(
            br#"{"installationId": 7, "repoId": 99, "branch": "main", "deployHookUrl": null}"#,
        )
        .unwrap();
        assert_eq!(s.deploy_hook_url, None);
    }

    #[test]
    fn source_errors_name_their_field() {
        let cases: &[(&str, &str)] = &[
            ("{", "malformed_json"),
            (
                r#"{"repoId": 1, "branch": "m"}"#,
                "installationId: is required",
            ),
            (
                r#"{"installationId": 0, "repoId": 1, "branch": "m"}"#,
                "installationId:",
            ),
            (
                r#"{"installationId": 1, "repoId": "1", "branch": "m"}"#,
                "repoId:",
            ),
            (
                r#"{"installationId": 1, "repoId": null, "branch": "m"}"#,
                "repoId: cannot be null",
            ),
            (
                r#"{"installationId": 1, "repoId": 1}"#,
                "branch: is required",
            ),
            (
                r#"{"installationId": 1, "repoId": 1, "branch": "a..b"}"#,
                "branch:",
            ),
            (
                r#"{"installationId": 1, "repoId": 1, "branch": "m", "deployHookUrl": "http://x.com"}"#,
                "deployHookUrl:",
            ),
            (
                r#"{"installationId": 1, "repoId": 1, "branch": "m", "repo": 1}"#,
                "unknown field repo",
            ),
        ];
        for (body, needle) in cases {
            let err = SourceInput::parse(body.as_bytes()).unwrap_err();
            let text = format!("{} {}", err.code(), err);
            assert!(text.contains(needle), "{body}: {text}");
        }
    }

    #[test]
    fn only_branch_heads_deploy() {
        assert_eq!(pushed_branch("refs/heads/main", false, SHA), Some("main"));
        assert_eq!(pushed_branch("refs/heads/a/b", false, SHA), Some("a/b"));
        assert_eq!(pushed_branch("refs/tags/v1", false, SHA), None);
        assert_eq!(pushed_branch("refs/pull/1/head", false, SHA), None);
        assert_eq!(pushed_branch("main", false, SHA), None);
        assert_eq!(pushed_branch("refs/heads/main", true, SHA), None);
        assert_eq!(pushed_branch("refs/heads/main", false, ZERO_SHA1), None);
        assert_eq!(pushed_branch("refs/heads/", false, SHA), None);
    }

    #[test]
    fn sources_match_their_repo_and_branch_only() {
        let input =
            SourceInput::parse(br#"{"installationId": 1, "repoId": 5, "branch": "main"}"#).unwrap();
        let src = Source::resolve(input, RepoFullName::parse("o/r").unwrap(), "R_1".into());
        let repo = RepoId::from_u64(5).unwrap();
        assert!(src.wants_push(repo, "refs/heads/main", false, SHA));
        assert!(!src.wants_push(repo, "refs/heads/main2", false, SHA));
        assert!(!src.wants_push(repo, "refs/tags/main", false, SHA));
        assert!(!src.wants_push(repo, "refs/heads/main", true, SHA));
        assert!(!src.wants_push(RepoId::from_u64(6).unwrap(), "refs/heads/main", false, SHA));
        let stored = serde_json::to_string(&src).unwrap();
        assert_eq!(serde_json::from_str::<Source>(&stored).unwrap(), src);
    }

    #[test]
    fn commit_shas() {
        assert!(is_commit_sha(SHA));
        assert!(is_commit_sha(&"a".repeat(64)));
        assert!(!is_commit_sha(&SHA.to_uppercase()));
        assert!(!is_commit_sha(ZERO_SHA1));
        assert!(!is_commit_sha("abc"));
    }
}
