//! The policy's configuration: fullsend's Worker variables read and checked, every problem
//! reported in fullsend's words.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::super::oidc::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use super::super::roles::{self, Permissions};
use super::super::text::{go_lower, go_quote, is_role_name, is_strict_role_name, split_csv};
use super::{vars, Policy, PolicyProblem, ProblemKind, DEFAULT_WORKFLOW_HOST_REPOS};

impl Policy {
    /// Reads and checks the variables (an unset variable and an empty one are the same,
    /// as with fullsend's `getEnv`). Every problem is reported, not just the first.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Policy, Vec<PolicyProblem>> {
        let var = |name: &str| get(name).unwrap_or_default();
        let mut problems = Vec::new();

        let custom_roles = parse_custom_roles(&var(vars::CUSTOM_ROLE_PERMISSIONS), &mut problems);

        let raw_ids = var(vars::ROLE_APP_IDS);
        let all_ids = parse_role_app_ids(&raw_ids, &mut problems);
        let role_app_ids: BTreeMap<String, String> = all_ids
            .iter()
            .filter(|(k, _)| !k.contains('/'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let legacy_app_ids_only =
            role_app_ids.is_empty() && all_ids.iter().any(|(k, _)| k.contains('/'));

        let raw_roles = var(vars::ALLOWED_ROLES);
        let allowed_roles: Vec<String> = if raw_roles.is_empty() {
            role_app_ids.keys().cloned().collect()
        } else {
            let mut roles = Vec::new();
            for entry in split_csv(&raw_roles) {
                if is_role_name(&entry) {
                    roles.push(entry);
                } else {
                    problems.push(PolicyProblem::new(
                        ProblemKind::InvalidAllowedRole,
                        format!(
                            "ALLOWED_ROLES contains invalid entry {}: must match ^[a-z][a-z0-9_-]*$",
                            go_quote(&entry)
                        ),
                    ));
                }
            }
            roles
        };
        for role in &allowed_roles {
            if !roles::is_builtin(role) && !custom_roles.contains_key(role) {
                problems.push(PolicyProblem::new(
                    ProblemKind::RoleWithoutPermissions,
                    format!(
                        "ALLOWED_ROLES contains {} but RolePermissions has no entry for it",
                        go_quote(role)
                    ),
                ));
            }
            // Exact key, as fullsend checks it; `fix` needs its own key even though it
            // signs with the coder App.
            if !role_app_ids.contains_key(role) {
                problems.push(PolicyProblem::new(
                    ProblemKind::RoleWithoutApp,
                    format!(
                        "ALLOWED_ROLES contains {} but ROLE_APP_IDS has no entry for it",
                        go_quote(role)
                    ),
                ));
            }
        }

        let issuer = match var(vars::OIDC_ISSUER).trim() {
            "" => DEFAULT_ISSUER.to_owned(),
            s => {
                if !(s.starts_with("https://") || s.starts_with("http://"))
                    || s.len() <= "https://".len()
                {
                    problems.push(PolicyProblem::new(
                        ProblemKind::InvalidIssuer,
                        format!("OIDC_ISSUER must be an http(s) URL, got {}", go_quote(s)),
                    ));
                }
                s.to_owned()
            }
        };
        let audience = match var(vars::MINT_AUDIENCE).trim() {
            "" => DEFAULT_AUDIENCE.to_owned(),
            s => s.to_owned(),
        };

        let mut workflow_host_repos: BTreeSet<String> = split_csv(&var(vars::WORKFLOW_HOST_REPOS))
            .iter()
            .map(|s| go_lower(s))
            .collect();
        if workflow_host_repos.is_empty() {
            workflow_host_repos = DEFAULT_WORKFLOW_HOST_REPOS
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policy {
            issuer,
            audience,
            role_app_ids,
            allowed_roles,
            allowed_orgs: split_csv(&var(vars::ALLOWED_ORGS)),
            per_repo_wif_repos: split_csv(&var(vars::PER_REPO_WIF_REPOS))
                .iter()
                .map(|s| go_lower(s))
                .collect(),
            workflow_host_repos,
            allowed_workflow_files: split_csv(&var(vars::ALLOWED_WORKFLOW_FILES)),
            custom_roles,
            legacy_app_ids_only,
        })
    }
}

fn parse_custom_roles(
    raw: &str,
    problems: &mut Vec<PolicyProblem>,
) -> BTreeMap<String, Permissions> {
    let mut out = BTreeMap::new();
    if raw.is_empty() {
        return out;
    }
    let bad = |problems: &mut Vec<PolicyProblem>, why: String| {
        problems.push(PolicyProblem::new(
            ProblemKind::InvalidCustomRoles,
            format!("failed to parse CUSTOM_ROLE_PERMISSIONS: {why}"),
        ));
    };
    let v: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            bad(problems, e.to_string());
            return out;
        }
    };
    let roles_obj = match v {
        Value::Null => return out,
        Value::Object(m) => m,
        _ => {
            bad(
                problems,
                "want a JSON object of role → {permission: level}".into(),
            );
            return out;
        }
    };
    let mut parsed = BTreeMap::new();
    for (role, perms) in roles_obj {
        let perms: BTreeMap<String, String> = match perms {
            Value::Null => BTreeMap::new(),
            Value::Object(p) => {
                let mut m = BTreeMap::new();
                for (k, level) in p {
                    match level {
                        Value::String(s) => m.insert(k, s),
                        Value::Null => m.insert(k, String::new()),
                        _ => {
                            bad(
                                problems,
                                format!("role {}: levels must be strings", go_quote(&role)),
                            );
                            return out;
                        }
                    };
                }
                m
            }
            _ => {
                bad(
                    problems,
                    format!("role {}: want an object", go_quote(&role)),
                );
                return out;
            }
        };
        parsed.insert(role, perms);
    }
    let before = problems.len();
    let register = |m: String| {
        PolicyProblem::new(
            ProblemKind::InvalidCustomRoles,
            format!("registering custom role permissions: {m}"),
        )
    };
    for (role, perms) in &parsed {
        if !is_strict_role_name(role) {
            problems.push(register(format!(
                "custom role name invalid: invalid role name {}",
                go_quote(role)
            )));
            continue;
        }
        if roles::is_builtin(role) {
            problems.push(register(format!(
                "custom role {} collides with built-in role",
                go_quote(role)
            )));
            continue;
        }
        for (perm, level) in perms {
            if level != "read" && level != "write" {
                problems.push(register(format!(
                    "custom role {}: permission {} has invalid level {} (must be read or write)",
                    go_quote(role),
                    go_quote(perm),
                    go_quote(level)
                )));
            }
        }
    }
    if problems.len() == before {
        out = parsed;
    }
    out
}

/// ROLE_APP_IDS as fullsend's Worker and Go read it: present, a JSON object (the Worker
/// says which type it got), secret names not colliding, every value a string.
fn parse_role_app_ids(raw: &str, problems: &mut Vec<PolicyProblem>) -> Vec<(String, String)> {
    if raw.is_empty() {
        problems.push(PolicyProblem::new(
            ProblemKind::MissingRoleAppIds,
            "missing required Worker env: ROLE_APP_IDS",
        ));
        return Vec::new();
    }
    let invalid = |m: String| PolicyProblem::new(ProblemKind::InvalidRoleAppIds, m);
    let entries = match serde_json::from_str::<JsonTop>(raw) {
        Err(e) => {
            problems.push(invalid(format!("failed to parse ROLE_APP_IDS: {e}")));
            return Vec::new();
        }
        Ok(JsonTop::Other(kind)) => {
            problems.push(invalid(format!(
                "ROLE_APP_IDS must be a JSON object (got {kind})"
            )));
            return Vec::new();
        }
        Ok(JsonTop::Object(entries)) => entries,
    };

    // The Worker stores each role's key as `<ROLE>_APP_PEM`, hyphens as underscores.
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut collisions = Vec::new();
    for (role, _) in &entries {
        let secret = role.replace('-', "_").to_uppercase();
        // `entries` holds each key once (`JsonTop` merges a repeated key), so a match is
        // always another role.
        match seen.iter().find(|(s, _)| *s == secret) {
            Some((_, first)) => collisions.push(format!(
                "\"{first}\" and \"{role}\" both map to secret {secret}_APP_PEM"
            )),
            None => seen.push((secret, role)),
        }
    }
    if !collisions.is_empty() {
        problems.push(PolicyProblem::new(
            ProblemKind::SecretNameCollision,
            format!(
                "role name secret collision after hyphen→underscore normalization: {}",
                collisions.join("; ")
            ),
        ));
    }

    let mut ids = Vec::new();
    for (role, value) in entries {
        match value {
            Value::String(s) => ids.push((role, s)),
            Value::Null => ids.push((role, String::new())),
            other => {
                problems.push(invalid(format!(
                    "failed to parse ROLE_APP_IDS: json: cannot unmarshal {} into Go value of type string",
                    go_json_kind(&other)
                )));
                return Vec::new();
            }
        }
    }
    ids
}

fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Null => "null",
    }
}

/// A JSON document's top level: an object's entries in document order (a repeated key
/// keeps its first position and last value, as `JSON.parse` does), or its JS type name.
enum JsonTop {
    Object(Vec<(String, Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for JsonTop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonTop;
            // Every JSON type has its `visit_` below, so serde_json never asks what was
            // expected: no change here can be observed (an equivalent mutant).
            #[cfg_attr(test, mutants::skip)]
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonTop, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    match entries.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                Ok(JsonTop::Object(entries))
            }
            fn visit_unit<E>(self) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("null"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<JsonTop, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonTop::Other("array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonTop, E> {
                Ok(JsonTop::Other("string"))
            }
        }
        d.deserialize_any(V)
    }
}
