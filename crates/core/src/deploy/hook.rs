//! The deploy job sent to a project's hook URL: its body, its signature, and how often a
//! failed delivery is retried. Invariant: every job body is signed with HMAC-SHA256 over the
//! exact bytes sent, and retries are bounded (at most [`HOOK_RETRY_DELAYS_MS`]`.len()`).

use serde_json::{json, Value};

use super::record::Deployment;
use super::source::Source;
use super::ticket::Ticket;
use crate::projects::ProjectSlug;
use crate::time::rfc3339_from_millis;

pub const SIGNATURE_HEADER: &str = "X-Ghplane-Signature-256";
/// Waits before the 2nd, 3rd and 4th try. Quadrupling spreads the tries over ~20 s: enough to
/// ride out a receiver restart, well inside the ticket's ten minutes.
pub const HOOK_RETRY_DELAYS_MS: [u64; 3] = [1_000, 4_000, 16_000];

/// The job. `credentials_url` is where the runner trades `credentials.ticket` for a token;
/// `status_url` is where it reports (signed like this body).
pub fn hook_body(
    project: &ProjectSlug,
    source: &Source,
    deployment: &Deployment,
    ticket: &Ticket,
    credentials_url: &str,
    status_url: &str,
) -> Value {
    json!({
        "type": "ghplane.deploy",
        "project": project,
        "deployment": {
            "id": deployment.id,
            "sha": deployment.sha,
            "ref": source.branch.git_ref(),
            "trigger": deployment.trigger,
            "githubDeploymentId": deployment.github_deployment_id,
            "createdAt": deployment.created_at,
            "statusUrl": status_url,
        },
        "repository": {
            "installationId": source.installation_id,
            "id": source.repo_id,
            "nodeId": source.node_id,
            "fullName": source.full_name,
            "branch": source.branch,
        },
        "credentials": {
            "ticket": ticket.id,
            "url": credentials_url,
            "expiresAt": rfc3339_from_millis(ticket.expires_at_ms),
        },
    })
}

/// The `X-Ghplane-Signature-256` value: `sha256=<lowercase hex>`, as GitHub signs webhooks
/// (the one implementation, `crate::signature`), so receivers can reuse their verification
/// code.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    crate::signature::sign(secret, body)
}

/// Checks a deployer's signature header in constant time. A little looser than GitHub's
/// form, as it always was here: surrounding whitespace and uppercase hex are accepted.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    match header.trim().strip_prefix("sha256=") {
        Some(hex) => crate::signature::verify(
            secret,
            body,
            &format!("sha256={}", hex.to_ascii_lowercase()),
        ),
        None => false,
    }
}

/// Whether a try is worth repeating: no answer at all (`None`), or an answer that says
/// "later" (408, 425, 429, 5xx). Other 4xx mean the receiver refuses this job.
pub fn hook_should_retry(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => matches!(s, 408 | 425 | 429 | 500..=599),
    }
}

/// How long to wait after `failed_tries` failed tries (1 after the first), or `None` to give
/// up (then report `on_dispatch_failed`).
pub fn hook_retry_delay_ms(failed_tries: u32, status: Option<u16>) -> Option<u64> {
    if !hook_should_retry(status) || failed_tries == 0 {
        return None;
    }
    HOOK_RETRY_DELAYS_MS.get(failed_tries as usize - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::record::{DeploymentState, Trigger};
    use crate::deploy::source::SourceInput;
    use crate::ids::RepoFullName;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let sig = signature(b"k", b"body");
        assert!(verify_signature(b"k", b"body", &sig));
        assert!(!verify_signature(b"k", b"body2", &sig));
        assert!(!verify_signature(b"k2", b"body", &sig));
        assert!(!verify_signature(
            b"k",
            b"body",
            &sig.replace("sha256=", "sha1=")
        ));
        assert!(!verify_signature(b"k", b"body", "sha256=zz"));
        assert!(!verify_signature(b"k", b"body", &sig[..sig.len() - 1]));
    }

    #[test]
    fn retries_are_bounded_with_growing_waits() {
        let waits: Vec<_> = (1..=4).map(|n| hook_retry_delay_ms(n, None)).collect();
        assert_eq!(waits, [Some(1_000), Some(4_000), Some(16_000), None]);
        assert_eq!(hook_retry_delay_ms(1, Some(503)), Some(1_000));
        assert_eq!(hook_retry_delay_ms(2, Some(429)), Some(4_000));
        assert_eq!(hook_retry_delay_ms(1, Some(400)), None);
        assert_eq!(hook_retry_delay_ms(1, Some(401)), None);
        assert_eq!(hook_retry_delay_ms(0, None), None);
        assert!(!hook_should_retry(Some(404)));
        assert!(hook_should_retry(Some(408)));
    }

    #[test]
    fn body_carries_the_job_and_the_ticket() {
        let input = SourceInput::parse(
            br#"{"installationId": 7, "repoId": 99, "branch": "main", "deployHookUrl": "https://h/x"}"#,
        )
        .unwrap();
        let source = Source::resolve(input, RepoFullName::parse("o/r").unwrap(), "R_kg".into());
        let d = Deployment {
            id: 3,
            sha: "a".repeat(40),
            trigger: Trigger {
                delivery_id: "d-1".into(),
                pusher: "octocat".into(),
                sha: "a".repeat(40),
                message: "fix".into(),
                kind: Default::default(),
            },
            pushes: 2,
            state: DeploymentState::Queued,
            created_at: "2023-11-14T22:13:20.000Z".into(),
            started_at: None,
            finished_at: None,
            github_deployment_id: Some(11),
            outcome: None,
            error: None,
        };
        let t = Ticket::issue([0; 32], 3, 0);
        let v = hook_body(
            &ProjectSlug::parse("acme-ab12").unwrap(),
            &source,
            &d,
            &t,
            "https://ghplane.example/api/deployments/acme-ab12.3/credentials",
            "https://ghplane.example/api/deployments/acme-ab12.3/status",
        );
        assert_eq!(
            v["deployment"]["statusUrl"],
            "https://ghplane.example/api/deployments/acme-ab12.3/status"
        );
        assert_eq!(v["project"], "acme-ab12");
        assert_eq!(v["deployment"]["ref"], "refs/heads/main");
        assert_eq!(v["deployment"]["trigger"]["deliveryId"], "d-1");
        assert_eq!(v["deployment"]["githubDeploymentId"], 11);
        assert_eq!(v["repository"]["id"], 99);
        assert_eq!(v["repository"]["installationId"], 7);
        assert_eq!(v["credentials"]["ticket"], t.id.as_str());
        assert_eq!(v["credentials"]["expiresAt"], "1970-01-01T00:10:00.000Z");
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(verify_signature(b"s", &bytes, &signature(b"s", &bytes)));
    }
}
