//! The bodies of the project routes: serde types that refuse unknown fields, tell "absent"
//! from `null` in a PATCH, and name the field in every message. Deserializing one checks it,
//! so a value of these types is always valid, also after the hop to a Durable Object.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::types::SpecStatus;
use crate::error::ApiError;
use crate::ids::RepoFullName;
use crate::input::{checked, from_body, invalid};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// `POST /projects`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    #[serde(deserialize_with = "required_name")]
    pub name: String,
    #[serde(default, deserialize_with = "optional_description")]
    pub description: Option<String>,
}

/// `PATCH /projects/:slug`: `None` leaves a field alone; `Some(None)` clears the description.
/// Its serde form (for the hop to the Durable Object) keeps that distinction: an absent key is
/// `None`, `null` is `Some(None)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "new_name"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "new_description"
    )]
    pub description: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "new_status"
    )]
    pub status: Option<SpecStatus>,
}

/// `PUT /projects/:slug/github-repo`. The adapter still reads the repository from GitHub (to
/// prove access and learn its default branch) before calling `manual_override`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubRepoInput {
    #[serde(rename = "fullName", deserialize_with = "full_name")]
    pub full_name: RepoFullName,
}

fn name(v: &Value) -> Result<String, ApiError> {
    let why = "must be a string of 1 to 100 characters without control characters";
    let s = v.as_str().ok_or_else(|| invalid("name", why))?.trim();
    let chars = s.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || s.chars().any(char::is_control) {
        return Err(invalid("name", why));
    }
    Ok(s.to_owned())
}

/// An empty (or blank) description is stored as none, so "no description" has one form.
fn description(v: &Value) -> Result<Option<String>, ApiError> {
    let why = "must be a string of at most 500 characters (newlines and tabs allowed)";
    let s = v
        .as_str()
        .ok_or_else(|| invalid("description", why))?
        .trim();
    if s.chars().count() > MAX_DESCRIPTION_CHARS
        || s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(invalid("description", why));
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

fn status(v: &Value) -> Result<SpecStatus, ApiError> {
    v.as_str()
        .and_then(SpecStatus::parse)
        .ok_or_else(|| invalid("status", "must be draft, interviewing or review"))
}

/// A key that is present (even as `null`) reaches these; serde's `default` covers absence.
fn required_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked(d, name)
}

fn optional_description<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |v| match v {
        Value::Null => Ok(None),
        v => description(v),
    })
}

fn new_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |v| not_null("name", v, name))
}

/// `null` clears the description: `Some(None)`.
fn new_description<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    checked(d, |v| match v {
        Value::Null => Ok(Some(None)),
        v => description(v).map(Some),
    })
}

fn new_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SpecStatus>, D::Error> {
    checked(d, |v| not_null("status", v, status))
}

fn full_name<'de, D: Deserializer<'de>>(d: D) -> Result<RepoFullName, D::Error> {
    checked(d, |v| match v {
        Value::Null => Err(invalid("fullName", "is required")),
        v => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid("fullName", "must be \"owner/name\""))?;
            RepoFullName::parse(s).map_err(|e| invalid("fullName", &e))
        }
    })
}

/// A PATCH field that may be absent but not `null`.
fn not_null<T>(
    field: &str,
    v: &Value,
    parse: impl FnOnce(&Value) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    match v {
        Value::Null => Err(invalid(field, "cannot be null")),
        v => parse(v).map(Some),
    }
}

impl NewProject {
    pub fn parse(body: &[u8]) -> Result<NewProject, ApiError> {
        from_body(body)
    }
}

impl ProjectPatch {
    pub fn parse(body: &[u8]) -> Result<ProjectPatch, ApiError> {
        from_body(body)
    }
}

impl GithubRepoInput {
    pub fn parse(body: &[u8]) -> Result<GithubRepoInput, ApiError> {
        from_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_project_parses_and_trims() {
        let p = NewProject::parse(br#"{"name":"  Acme  ","description":"Line1\nLine2"}"#).unwrap();
        assert_eq!(p.name, "Acme");
        assert_eq!(p.description.as_deref(), Some("Line1\nLine2"));
        let p = NewProject::parse(br#"{"name":"A","description":null}"#).unwrap();
        assert_eq!(p.description, None);
        let p = NewProject::parse(br#"{"name":"A","description":"   "}"#).unwrap();
        assert_eq!(p.description, None);
        let p = NewProject::parse(format!(r#"{{"name":"{}"}}"#, "é".repeat(100)).as_bytes());
        assert!(p.is_ok(), "100 characters, not bytes");
    }

    #[test]
    fn bad_bodies_name_their_field() {
        let long_desc = format!(r#"{{"name":"A","description":"{}"}}"#, "d".repeat(501));
        let long_name = format!(r#"{{"name":"{}"}}"#, "n".repeat(101));
        let cases: Vec<(&[u8], &str)> = vec![
            (b"{", "malformed_json"),
            (b"[]", "validation_failed"),
            (b"{}", "name: is required"),
            (br#"{"name":""}"#, "name:"),
            (br#"{"name":"   "}"#, "name:"),
            (br#"{"name":7}"#, "name:"),
            (br#"{"name":"a\u0007b"}"#, "name:"),
            (long_name.as_bytes(), "name:"),
            (br#"{"name":"A","description":5}"#, "description:"),
            (br#"{"name":"A","description":"a\u0000"}"#, "description:"),
            (long_desc.as_bytes(), "description:"),
            (br#"{"name":"A","slug":"x"}"#, "unknown field slug"),
        ];
        for (body, needle) in cases {
            let err = NewProject::parse(body).unwrap_err();
            let text = format!("{} {}", err.code(), err);
            assert!(
                text.contains(needle),
                "{}: {text}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let p = ProjectPatch::parse(b"{}").unwrap();
        assert_eq!(p, ProjectPatch::default());
        let p = ProjectPatch::parse(br#"{"description":null,"status":"interviewing"}"#).unwrap();
        assert_eq!(p.description, Some(None));
        assert_eq!(p.status, Some(SpecStatus::Interviewing));
        let p = ProjectPatch::parse(br#"{"description":"x","name":"B"}"#).unwrap();
        assert_eq!(p.description, Some(Some("x".into())));
        assert_eq!(p.name.as_deref(), Some("B"));
        for (body, needle) in [
            (&br#"{"name":null}"#[..], "name: cannot be null"),
            (br#"{"status":null}"#, "status: cannot be null"),
            (br#"{"status":"approved"}"#, "status: must be"),
            (br#"{"githubRepo":{}}"#, "unknown field githubRepo"),
        ] {
            let err = ProjectPatch::parse(body).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn patch_round_trips_through_serde_keeping_null_apart_from_absent() {
        for body in [
            &b"{}"[..],
            br#"{"description":null}"#,
            br#"{"description":"d","name":"N","status":"review"}"#,
        ] {
            let p = ProjectPatch::parse(body).unwrap();
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(
                serde_json::from_str::<ProjectPatch>(&text).unwrap(),
                p,
                "{text}"
            );
        }
        let cleared = ProjectPatch::parse(br#"{"description":null}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&cleared).unwrap(),
            r#"{"description":null}"#
        );
    }

    #[test]
    fn github_repo_input() {
        let r = GithubRepoInput::parse(br#"{"fullName":"octo/app"}"#).unwrap();
        assert_eq!(r.full_name.as_str(), "octo/app");
        for body in [
            &b"{}"[..],
            br#"{"fullName":null}"#,
            br#"{"fullName":1}"#,
            br#"{"fullName":"nope"}"#,
        ] {
            let err = GithubRepoInput::parse(body).unwrap_err();
            assert!(err.to_string().starts_with("fullName"), "{err}");
        }
        assert!(GithubRepoInput::parse(br#"{"fullName":"o/a","private":true}"#).is_err());
    }
}
