//! Credentials tickets: what a deploy job trades, once, for a GitHub token that can only read
//! its own repository. Invariant: a ticket is redeemed at most once, only for the deployment
//! it was issued for, and only within [`TICKET_TTL_MS`] of issue.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use super::error::TicketError;
use crate::auth::constant_time_eq;
use crate::ids::RepoFullName;
use crate::tenancy::token::hash_secret;

/// Long enough for a runner to start and ask; short enough that a leaked job body is soon
/// worthless.
pub const TICKET_TTL_MS: i64 = 10 * 60 * 1000;
/// `DEPLOY_TICKET_TTL_SECONDS` may shorten or lengthen [`TICKET_TTL_MS`] within these bounds.
pub const MIN_TICKET_TTL_SECS: u64 = 10;
pub const MAX_TICKET_TTL_SECS: u64 = 60 * 60;

/// The ticket lifetime in milliseconds from `DEPLOY_TICKET_TTL_SECONDS` (unset: ten
/// minutes); a value that is not a whole number of seconds within
/// [`MIN_TICKET_TTL_SECS`]..=[`MAX_TICKET_TTL_SECS`] is a misconfiguration.
pub fn ticket_ttl_ms(var: Option<&str>) -> Result<i64, String> {
    let Some(v) = var.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(TICKET_TTL_MS);
    };
    match v.parse::<u64>() {
        Ok(secs) if (MIN_TICKET_TTL_SECS..=MAX_TICKET_TTL_SECS).contains(&secs) => {
            Ok(secs as i64 * 1000)
        }
        _ => Err(format!(
            "DEPLOY_TICKET_TTL_SECONDS: must be {MIN_TICKET_TTL_SECS} to {MAX_TICKET_TTL_SECS} seconds"
        )),
    }
}

const TICKET_PREFIX: &str = "ghpdt_";
/// A project keeps at most this many tickets (one per dispatched deployment) ...
pub const MAX_STORED_TICKETS: usize = 50;
/// ... and an expired one this long, so a late redemption still hears "expired", not "unknown".
const KEEP_EXPIRED_MS: i64 = 24 * 60 * 60 * 1000;

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

impl Ticket {
    /// The form kept in storage: the id replaced by its SHA-256, so what is stored cannot be
    /// presented.
    pub fn stored(&self) -> Ticket {
        Ticket {
            id: hash_secret(&self.id),
            ..self.clone()
        }
    }
}

fn find<'a>(stored: &'a mut [Ticket], presented: &str) -> Option<&'a mut Ticket> {
    if !Ticket::looks_like_id(presented) {
        return None;
    }
    let hash = hash_secret(presented);
    stored
        .iter_mut()
        .find(|t| constant_time_eq(t.id.as_bytes(), hash.as_bytes()))
}

/// Redeems a presented ticket against the stored ones (see [`Ticket::redeem`]).
pub fn redeem_stored(
    stored: &mut [Ticket],
    presented: &str,
    deployment_id: u64,
    now_ms: i64,
) -> Result<(), TicketError> {
    find(stored, presented)
        .ok_or(TicketError::Unknown)?
        .redeem(deployment_id, now_ms)
}

/// Gives a redeemed ticket back when the token it was redeemed for could not be fetched, so
/// the runner can try again; the ticket is marked used first so two racing redemptions can
/// never both succeed.
pub fn release_stored(stored: &mut [Ticket], presented: &str) {
    if let Some(t) = find(stored, presented) {
        t.redeemed = false;
    }
}

/// Keeps `ticket` (in stored form) as its deployment's only ticket and bounds the list:
/// tickets expired over a day ago go, then the oldest beyond [`MAX_STORED_TICKETS`].
pub fn keep_stored(stored: &mut Vec<Ticket>, ticket: Ticket, now_ms: i64) {
    stored.retain(|t| {
        t.deployment_id != ticket.deployment_id && now_ms < t.expires_at_ms + KEEP_EXPIRED_MS
    });
    stored.push(ticket);
    stored.sort_by_key(|t| std::cmp::Reverse(t.expires_at_ms));
    stored.truncate(MAX_STORED_TICKETS);
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
    fn ticket_lifetime_setting_is_checked() {
        assert_eq!(ticket_ttl_ms(None), Ok(TICKET_TTL_MS));
        assert_eq!(ticket_ttl_ms(Some("")), Ok(TICKET_TTL_MS));
        assert_eq!(ticket_ttl_ms(Some("10")), Ok(10_000));
        assert_eq!(ticket_ttl_ms(Some(" 3600 ")), Ok(3_600_000));
        for bad in ["9", "0", "3601", "-5", "1.5", "ten", "600s"] {
            assert!(ticket_ttl_ms(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_debug_form_shows_everything_but_the_id() {
        let t = Ticket::issue([7; 32], 3, T0);
        assert_eq!(
            format!("{t:?}"),
            format!(
                "Ticket {{ id: \"<redacted>\", deployment_id: 3, expires_at_ms: {}, redeemed: false }}",
                T0 + TICKET_TTL_MS
            )
        );
    }

    #[test]
    fn an_id_is_the_prefix_and_43_base64url_characters() {
        let body = "A".repeat(43);
        assert!(Ticket::looks_like_id(&format!("ghpdt_{body}")));
        // `-` and `_` are base64url's own, anywhere in the body.
        for c in ['-', '_', 'z', '9'] {
            for at in [0, 21, 42] {
                let mut b: Vec<char> = body.chars().collect();
                b[at] = c;
                let id = format!("ghpdt_{}", b.iter().collect::<String>());
                assert!(Ticket::looks_like_id(&id), "{id}");
            }
        }
        // Anything else is refused: standard base64, padding, separators, non-ASCII.
        for c in ['+', '/', '=', '.', ' ', 'é', '\0'] {
            for at in [0, 21, 42] {
                let mut b: Vec<char> = body.chars().collect();
                b[at] = c;
                let id = format!("ghpdt_{}", b.iter().collect::<String>());
                assert!(!Ticket::looks_like_id(&id), "{id:?}");
            }
        }
        assert!(!Ticket::looks_like_id(&format!("ghpdt_{}", "A".repeat(42))));
        assert!(!Ticket::looks_like_id(&format!("ghpdt_{}", "A".repeat(44))));
        assert!(!Ticket::looks_like_id(&format!("ghpdX_{body}")));
    }

    #[test]
    fn an_expired_ticket_is_kept_for_a_day() {
        let t = Ticket::issue([1; 32], 1, T0);
        let expired = t.expires_at_ms;
        let day = 24 * 60 * 60 * 1000;
        let keep_at = |now: i64| {
            let mut stored = vec![t.stored()];
            keep_stored(&mut stored, Ticket::issue([2; 32], 2, now).stored(), now);
            stored.iter().any(|s| s.deployment_id == 1)
        };
        assert!(keep_at(expired), "just expired");
        assert!(keep_at(expired + day - 1), "a day less a millisecond after");
        assert!(!keep_at(expired + day), "a day after");
        let mut stored = vec![t.stored()];
        assert_eq!(
            redeem_stored(&mut stored, &t.id, 1, expired + day - 1),
            Err(TicketError::Expired),
            "a late redemption hears expired, not unknown"
        );
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
    fn stored_tickets_hold_no_usable_id_and_redeem_once() {
        let t = Ticket::issue([3; 32], 4, T0);
        let other = Ticket::issue([4; 32], 5, T0);
        let mut stored = Vec::new();
        keep_stored(&mut stored, t.stored(), T0);
        keep_stored(&mut stored, other.stored(), T0);
        assert!(stored.iter().all(|s| !Ticket::looks_like_id(&s.id)));
        assert_ne!(stored[0].id, t.id);
        assert_eq!(
            redeem_stored(&mut stored, &other.id, 4, T0 + 1),
            Err(TicketError::WrongDeployment)
        );
        assert_eq!(
            redeem_stored(&mut stored, "ghpdt_nope", 4, T0 + 1),
            Err(TicketError::Unknown)
        );
        assert_eq!(
            redeem_stored(&mut stored, &Ticket::issue([9; 32], 4, T0).id, 4, T0 + 1),
            Err(TicketError::Unknown)
        );
        // The stored hash itself is not a ticket.
        let hash = stored[0].id.clone();
        assert_eq!(
            redeem_stored(&mut stored, &hash, 4, T0 + 1),
            Err(TicketError::Unknown)
        );
        assert_eq!(redeem_stored(&mut stored, &t.id, 4, T0 + 1), Ok(()));
        assert_eq!(
            redeem_stored(&mut stored, &t.id, 4, T0 + 2),
            Err(TicketError::AlreadyRedeemed)
        );
        release_stored(&mut stored, &t.id);
        assert_eq!(redeem_stored(&mut stored, &t.id, 4, T0 + 3), Ok(()));
        assert_eq!(
            redeem_stored(&mut stored, &other.id, 5, T0 + TICKET_TTL_MS),
            Err(TicketError::Expired)
        );
    }

    #[test]
    fn stored_tickets_are_bounded() {
        let mut stored = Vec::new();
        keep_stored(&mut stored, Ticket::issue([1; 32], 1, T0).stored(), T0);
        // A new ticket for the same deployment replaces the old one.
        keep_stored(&mut stored, Ticket::issue([2; 32], 1, T0).stored(), T0);
        assert_eq!(stored.len(), 1);
        // Expired over a day ago: dropped.
        let later = T0 + TICKET_TTL_MS + KEEP_EXPIRED_MS;
        keep_stored(
            &mut stored,
            Ticket::issue([3; 32], 2, later).stored(),
            later,
        );
        assert_eq!(stored.len(), 1);
        for n in 0..(MAX_STORED_TICKETS as u64 + 5) {
            keep_stored(
                &mut stored,
                Ticket::issue([n as u8; 32], 10 + n, later + n as i64).stored(),
                later,
            );
        }
        assert_eq!(stored.len(), MAX_STORED_TICKETS);
        assert_eq!(stored[0].deployment_id, 10 + MAX_STORED_TICKETS as u64 + 4);
    }

    #[test]
    fn round_trips_through_storage() {
        let t = Ticket::issue([2; 32], 9, T0);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["deploymentId"], 9);
        assert_eq!(serde_json::from_value::<Ticket>(v).unwrap(), t);
    }
}
