//! One record per mint decision, granted or denied, for the operator's audit trail.
//!
//! **Invariant:** a record never holds a credential: no installation token, no OIDC
//! token, no App JWT or key. It is built only from verified claims, a validated request,
//! the policy's decision and GitHub's grant *metadata*, and is kept
//! [`AUDIT_RETENTION_DAYS`] days.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::denial::Denial;
use super::oidc::ActionsClaims;
use super::policy::{CallerMode, Decision};
use super::request::TokenRequest;
use super::wire::GrantedToken;
use crate::ids::{truncate, InstallationId};

/// How long records are kept.
pub const AUDIT_RETENTION_DAYS: i64 = 90;
pub const AUDIT_RETENTION_MS: i64 = AUDIT_RETENTION_DAYS * 86_400_000;

/// A stored record is at most this long as JSON ([`MintAuditRecord::bounded`]).
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// Repository names a bounded record keeps of each list (the full count is kept too).
const KEPT_REPO_NAMES: usize = 20;
/// Text fields of a bounded record are cut to this many bytes.
const KEPT_TEXT_BYTES: usize = 256;

/// The audit's storage budget: past either bound, the oldest rows are dropped (and the
/// drop is counted, reported and logged).
pub const AUDIT_MAX_ROWS: i64 = 200_000;
pub const AUDIT_MAX_BYTES: i64 = 512 * 1024 * 1024;

/// Whether `rows` records of `bytes` JSON in all are over the budget.
pub fn over_budget(rows: i64, bytes: i64, max_rows: i64, max_bytes: i64) -> bool {
    rows > max_rows || bytes > max_bytes
}

/// Requests refused before their OIDC token verified are only counted, per reason and
/// minute, for this long.
pub const DENIAL_COUNT_RETENTION_MS: i64 = 7 * 86_400_000;

/// The minute (unix milliseconds, rounded down) a denial is counted in.
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(60_000)
}

/// Whether `reason` is a code a denial counter may be kept under: a stable code of the
/// mint (`[a-z0-9_]`, at most 64 bytes), never text from the request.
pub fn is_counter_reason(reason: &str) -> bool {
    (1..=64).contains(&reason.len())
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Granted,
    Denied,
}

/// A mint decision. Caller fields come from verified claims only (absent when the request
/// was refused before its token verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintAuditRecord {
    /// RFC 3339 UTC.
    pub at: String,
    pub at_ms: i64,
    pub outcome: Outcome,
    /// The HTTP status answered.
    pub status: u16,
    /// The denial's stable code (`None` when granted).
    pub reason_code: Option<String>,
    /// Internal cause (which check, which GitHub call); never sent to the client.
    pub reason_detail: Option<String>,

    pub repository: Option<String>,
    pub repository_owner: Option<String>,
    pub job_workflow_ref: Option<String>,
    pub workflow_ref: Option<String>,
    pub run_id: Option<String>,
    pub run_attempt: Option<String>,
    pub actor: Option<String>,
    /// The OIDC token's id: lets a record be matched to GitHub's own logs, not replayed.
    pub jti: Option<String>,
    pub event_name: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub caller_mode: Option<CallerMode>,

    pub role: Option<String>,
    pub target_org: Option<String>,
    /// As asked: `["*"]` for the whole installation.
    pub repos_requested: Option<Vec<String>>,

    pub app_id: Option<String>,
    pub installation_id: Option<InstallationId>,
    pub repos_granted: Option<Vec<String>>,
    pub permissions_granted: Option<BTreeMap<String, String>>,
    pub repository_selection: Option<String>,
    pub expires_at: Option<String>,

    /// Set when the record was cut to [`MAX_RECORD_BYTES`]: the lists then keep their first
    /// names, and these counts say how many there were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repos_requested_count: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repos_granted_count: Option<usize>,
}

impl MintAuditRecord {
    fn base(now_ms: i64, claims: Option<&ActionsClaims>, request: Option<&TokenRequest>) -> Self {
        let c = |f: fn(&ActionsClaims) -> Option<String>| claims.and_then(f);
        MintAuditRecord {
            at: crate::time::rfc3339_from_millis(now_ms),
            at_ms: now_ms,
            outcome: Outcome::Denied,
            status: 0,
            reason_code: None,
            reason_detail: None,
            repository: c(|c| Some(c.repository.clone())),
            repository_owner: c(|c| Some(c.repository_owner.clone())),
            job_workflow_ref: c(|c| Some(c.job_workflow_ref.clone())),
            workflow_ref: c(|c| c.workflow_ref.clone()),
            run_id: c(|c| c.run_id.clone()),
            run_attempt: c(|c| c.run_attempt.clone()),
            actor: c(|c| c.actor.clone()),
            jti: c(|c| c.jti.clone()),
            event_name: c(|c| c.event_name.clone()),
            git_ref: c(|c| c.git_ref.clone()),
            sha: c(|c| c.sha.clone()),
            caller_mode: None,
            role: request.map(|r| r.role.clone()),
            target_org: request.and_then(|r| r.target_org.clone()),
            repos_requested: request.map(|r| match &r.repos {
                super::request::RepoScope::Installation => vec!["*".to_owned()],
                super::request::RepoScope::Repos(names) => names.clone(),
            }),
            app_id: None,
            installation_id: None,
            repos_granted: None,
            permissions_granted: None,
            repository_selection: None,
            expires_at: None,
            truncated: None,
            repos_requested_count: None,
            repos_granted_count: None,
        }
    }

    fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// The record cut to at most [`MAX_RECORD_BYTES`] of JSON: first the repository lists
    /// (their first names, with the full counts), then every text field. A record within
    /// the bound is returned as it is.
    pub fn bounded(mut self) -> Self {
        if self.encoded_len() <= MAX_RECORD_BYTES {
            return self;
        }
        self.truncated = Some(true);
        let cut = |list: &mut Option<Vec<String>>| -> Option<usize> {
            let list = list.as_mut()?;
            let count = list.len();
            list.truncate(KEPT_REPO_NAMES);
            for name in list.iter_mut() {
                *name = truncate(name, 100);
            }
            Some(count)
        };
        self.repos_requested_count = cut(&mut self.repos_requested);
        self.repos_granted_count = cut(&mut self.repos_granted);
        if self.encoded_len() <= MAX_RECORD_BYTES {
            return self;
        }
        for field in [
            &mut self.reason_code,
            &mut self.reason_detail,
            &mut self.repository,
            &mut self.repository_owner,
            &mut self.job_workflow_ref,
            &mut self.workflow_ref,
            &mut self.run_id,
            &mut self.run_attempt,
            &mut self.actor,
            &mut self.jti,
            &mut self.event_name,
            &mut self.git_ref,
            &mut self.sha,
            &mut self.role,
            &mut self.target_org,
            &mut self.app_id,
            &mut self.repository_selection,
            &mut self.expires_at,
        ] {
            if let Some(text) = field.as_mut() {
                *text = truncate(text, KEPT_TEXT_BYTES);
            }
        }
        if let Some(perms) = self.permissions_granted.as_mut() {
            while perms.len() > 64 {
                perms.pop_last();
            }
            for v in perms.values_mut() {
                *v = truncate(v, 32);
            }
        }
        self
    }

    /// A refusal. Pass `claims` only once the token's signature verified.
    pub fn denied(
        now_ms: i64,
        claims: Option<&ActionsClaims>,
        request: Option<&TokenRequest>,
        denial: &Denial,
    ) -> Self {
        MintAuditRecord {
            status: denial.status,
            reason_code: Some(denial.code.to_owned()),
            reason_detail: denial.detail.as_deref().map(|d| truncate(d, 500)),
            ..Self::base(now_ms, claims, request)
        }
    }

    /// A token handed out. Only the grant's metadata is copied, never `granted.token`.
    pub fn granted(
        now_ms: i64,
        claims: &ActionsClaims,
        request: &TokenRequest,
        decision: &Decision,
        installation: InstallationId,
        granted: &GrantedToken,
    ) -> Self {
        MintAuditRecord {
            outcome: Outcome::Granted,
            status: 200,
            caller_mode: Some(decision.caller_mode),
            target_org: Some(decision.target_org.clone()),
            app_id: Some(decision.app_id.clone()),
            installation_id: Some(installation),
            repos_granted: Some(granted.repositories.clone()),
            permissions_granted: Some(granted.permissions.clone()),
            repository_selection: Some(granted.repository_selection.clone()),
            expires_at: Some(granted.expires_at.clone()),
            ..Self::base(now_ms, Some(claims), Some(request))
        }
    }

    /// When the record may be deleted.
    pub fn expires_at_ms(&self) -> i64 {
        self.at_ms.saturating_add(AUDIT_RETENTION_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::oidc::check_claims;
    use crate::mint::policy::{ForeignGrants, Policy};
    use crate::mint::request::parse_token_request;
    use crate::mint::wire::parse_token_response;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> ActionsClaims {
        let c = serde_json::json!({
            "iss": crate::mint::oidc::DEFAULT_ISSUER, "aud": "fullsend-mint",
            "iat": NOW, "exp": NOW + 300,
            "repository": "test-org/test-repo", "repository_owner": "test-org",
            "job_workflow_ref": "test-org/.fullsend/.github/workflows/code.yml@refs/heads/main",
            "run_id": "77", "run_attempt": "1", "actor": "octocat", "jti": "j-1",
        });
        check_claims(
            c.to_string().as_bytes(),
            crate::mint::oidc::DEFAULT_ISSUER,
            "fullsend-mint",
            NOW,
        )
        .unwrap()
    }

    #[test]
    fn granted_record_holds_no_token() {
        let policy = Policy::from_vars(|k| match k {
            "ROLE_APP_IDS" => Some(r#"{"coder":"200"}"#.into()),
            "ALLOWED_ORGS" => Some("test-org".into()),
            "ALLOWED_WORKFLOW_FILES" => Some("*".into()),
            _ => None,
        })
        .unwrap();
        let req = parse_token_request(br#"{"role":"coder","repos":["test-repo"]}"#, |r| {
            policy.allows_role(r)
        })
        .unwrap();
        let claims = claims();
        let decision = policy.check(&claims, &req, &ForeignGrants::new()).unwrap();
        let granted = parse_token_response(
            201,
            br#"{"token":"ghs_SECRET","expires_at":"2027-01-15T08:00:00Z","permissions":{"contents":"write"},"repositories":[{"full_name":"test-org/test-repo"}],"repository_selection":"selected"}"#,
        )
        .unwrap();
        let id = InstallationId::from_u64(5).unwrap();
        let rec = MintAuditRecord::granted(NOW * 1000, &claims, &req, &decision, id, &granted);
        let json = serde_json::to_string(&rec).unwrap();
        assert!(!json.contains("ghs_SECRET"));
        assert_eq!(rec.outcome, Outcome::Granted);
        assert_eq!(rec.run_id.as_deref(), Some("77"));
        assert_eq!(rec.jti.as_deref(), Some("j-1"));
        assert_eq!(
            rec.repos_requested.as_deref(),
            Some(&["test-repo".to_owned()][..])
        );
        assert_eq!(
            rec.repos_granted.as_deref(),
            Some(&["test-org/test-repo".to_owned()][..])
        );
        assert_eq!(rec.at, "2027-01-15T08:00:00.000Z");
        assert_eq!(rec.expires_at_ms() - rec.at_ms, 90 * 86_400_000);
        let back: MintAuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn records_are_bounded() {
        let names: Vec<String> = (0..500)
            .map(|i| format!("r{i:03}{}", "x".repeat(96)))
            .collect();
        let req = parse_token_request(
            serde_json::json!({"role": "coder", "repos": names})
                .to_string()
                .as_bytes(),
            |_| true,
        )
        .unwrap();
        let mut long = claims();
        long.actor = Some("a".repeat(40_000));
        let rec = MintAuditRecord::denied(0, Some(&long), Some(&req), &Denial::rate_limited());
        assert!(serde_json::to_vec(&rec).unwrap().len() > MAX_RECORD_BYTES);
        let bounded = rec.clone().bounded();
        let json = serde_json::to_vec(&bounded).unwrap();
        assert!(json.len() <= MAX_RECORD_BYTES, "{}", json.len());
        assert_eq!(bounded.truncated, Some(true));
        assert_eq!(bounded.repos_requested_count, Some(500));
        assert_eq!(bounded.repos_requested.as_ref().unwrap().len(), 20);
        assert_eq!(bounded.repos_requested.as_ref().unwrap()[0], names[0]);
        assert!(bounded.actor.as_ref().unwrap().len() <= 256 + "…".len());
        // A small record is kept as it is.
        let small = MintAuditRecord::denied(0, Some(&claims()), None, &Denial::rate_limited());
        assert_eq!(small.clone().bounded(), small);
        assert!(small.truncated.is_none());
    }

    #[test]
    fn budget_minutes_and_counter_reasons() {
        assert!(!over_budget(10, 100, 10, 100));
        assert!(over_budget(11, 100, 10, 100));
        assert!(over_budget(10, 101, 10, 100));
        assert_eq!(minute_of(120_001), 120_000);
        assert_eq!(minute_of(179_999), 120_000);
        assert_eq!(minute_of(-1), -60_000);
        for ok in ["bad_signature", "missing_bearer", "payload_too_large", "a1"] {
            assert!(is_counter_reason(ok), "{ok}");
        }
        for bad in ["", "Bad", "a b", "x.y.z", &"a".repeat(65), "r\u{e9}"] {
            assert!(!is_counter_reason(bad), "{bad}");
        }
    }

    #[test]
    fn denied_record_keeps_code_and_detail() {
        let d = Denial::authentication_failed("token expired");
        let rec = MintAuditRecord::denied(0, None, None, &d);
        assert_eq!(rec.status, 401);
        assert_eq!(rec.reason_code.as_deref(), Some("authentication_failed"));
        assert_eq!(rec.reason_detail.as_deref(), Some("token expired"));
        assert!(rec.repository.is_none() && rec.role.is_none());
        let req = parse_token_request(
            br#"{"role":"e2e","repos":["*"],"target_org":"pool"}"#,
            |_| true,
        )
        .unwrap();
        let rec = MintAuditRecord::denied(0, Some(&claims()), Some(&req), &Denial::rate_limited());
        assert_eq!(rec.repos_requested.as_deref(), Some(&["*".to_owned()][..]));
        assert_eq!(rec.target_org.as_deref(), Some("pool"));
        assert_eq!(rec.actor.as_deref(), Some("octocat"));
    }
}
