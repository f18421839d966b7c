//! Credentials tickets: what a deploy job trades, once, for a GitHub token that can only read
//! its own repository. Invariant: a ticket is redeemed at most once, only for the deployment
//! it was issued for, and only within [`TICKET_TTL_MS`] of issue.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

use crate::ids::RepoFullName;

/// Long enough for a runner to start and ask; short enough that a leaked job body is soon
/// worthless.
pub const TICKET_TTL_MS: i64 = 10 * 60 * 1000;
const TICKET_PREFIX: &str = "ghpdt_";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// `ghpdt_` + 43 base64url characters (32 random bytes): a bearer secret.
    pub id: String,
    pub deployment_id: u64,
    pub expires_at_ms: i64,
    pub redeemed: bool,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("id", &"<redacted>")
            .field("deployment_id", &self.deployment_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("redeemed", &self.redeemed)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum TicketError {
    /// No ticket with that id (never issued, or already cleaned up).
    #[error("unknown credentials ticket")]
    Unknown,
    #[error("this ticket belongs to another deployment")]
    WrongDeployment,
    #[error("this ticket was already redeemed")]
    AlreadyRedeemed,
    #[error("this ticket has expired")]
    Expired,
}

impl TicketError {
    pub fn code(self) -> &'static str {
        match self {
            TicketError::Unknown => "ticket_unknown",
            TicketError::WrongDeployment => "ticket_wrong_deployment",
            TicketError::AlreadyRedeemed => "ticket_already_redeemed",
            TicketError::Expired => "ticket_expired",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            TicketError::Unknown => 404,
            TicketError::WrongDeployment => 403,
            TicketError::AlreadyRedeemed => 409,
            TicketError::Expired => 410,
        }
    }
}

impl Ticket {
    pub fn issue(random: [u8; 32], deployment_id: u64, now_ms: i64) -> Ticket {
        Ticket {
            id: format!("{TICKET_PREFIX}{}", URL_SAFE_NO_PAD.encode(random)),
            deployment_id,
            expires_at_ms: now_ms + TICKET_TTL_MS,
            redeemed: false,
        }
    }

    /// Whether a presented string could be a ticket id at all: a cheap filter before any
    /// storage lookup, and a bound on what gets logged.
    pub fn looks_like_id(s: &str) -> bool {
        s.strip_prefix(TICKET_PREFIX).is_some_and(|rest| {
            rest.len() == 43
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    /// Marks the ticket used. A refused redemption changes nothing.
    pub fn redeem(&mut self, deployment_id: u64, now_ms: i64) -> Result<(), TicketError> {
        if deployment_id != self.deployment_id {
            return Err(TicketError::WrongDeployment);
        }
        if self.redeemed {
            return Err(TicketError::AlreadyRedeemed);
        }
        if now_ms >= self.expires_at_ms {
            return Err(TicketError::Expired);
        }
        self.redeemed = true;
        Ok(())
    }
}

/// The body of `POST /app/installations/{id}/access_tokens` for a redeemed ticket: read-only
/// contents of the one linked repository, nothing else.
pub fn token_scope(repo: &RepoFullName) -> Value {
    json!({
        "repositories": [repo.name()],
        "permissions": {"contents": "read"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn issue_makes_an_opaque_ten_minute_ticket() {
        let t = Ticket::issue([7; 32], 3, T0);
        assert!(Ticket::looks_like_id(&t.id), "{}", t.id);
        assert_eq!(t.expires_at_ms, T0 + 600_000);
        assert!(!t.redeemed);
        assert_ne!(t.id, Ticket::issue([8; 32], 3, T0).id);
        assert!(!format!("{t:?}").contains(&t.id));
        assert!(!Ticket::looks_like_id("ghpdt_short"));
        assert!(!Ticket::looks_like_id(&t.id.replace("ghpdt_", "ghp_x_")));
    }

    #[test]
    fn redeems_once() {
        let mut t = Ticket::issue([1; 32], 3, T0);
        assert_eq!(t.redeem(3, T0 + 1), Ok(()));
        assert!(t.redeemed);
        assert_eq!(t.redeem(3, T0 + 2), Err(TicketError::AlreadyRedeemed));
    }

    #[test]
    fn refuses_another_deployment_and_late_redemption_without_using_the_ticket() {
        let mut t = Ticket::issue([1; 32], 3, T0);
        assert_eq!(t.redeem(4, T0 + 1), Err(TicketError::WrongDeployment));
        assert!(!t.redeemed);
        assert_eq!(t.redeem(3, T0 + TICKET_TTL_MS), Err(TicketError::Expired));
        assert!(!t.redeemed);
        let mut fresh = Ticket::issue([1; 32], 3, T0);
        assert_eq!(fresh.redeem(3, T0 + TICKET_TTL_MS - 1), Ok(()));
    }

    #[test]
    fn errors_have_distinct_codes() {
        let all = [
            TicketError::Unknown,
            TicketError::WrongDeployment,
            TicketError::AlreadyRedeemed,
            TicketError::Expired,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.code(), b.code());
            }
            assert!((400..500).contains(&a.status()));
        }
    }

    #[test]
    fn token_scope_is_one_repo_read_only() {
        let r = RepoFullName::parse("octo-org/acme-ab12").unwrap();
        assert_eq!(
            token_scope(&r),
            json!({"repositories": ["acme-ab12"], "permissions": {"contents": "read"}})
        );
    }

    #[test]
    fn round_trips_through_storage() {
        let t = Ticket::issue([2; 32], 9, T0);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["deploymentId"], 9);
        assert_eq!(serde_json::from_value::<Ticket>(v).unwrap(), t);
    }
}
