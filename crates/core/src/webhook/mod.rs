//! GitHub App webhook ingest (`POST /webhooks/github`) as pure decisions.
//!
//! **Invariant:** the body is parsed only after its exact bytes verify. The adapter runs, in
//! this order: [`check_headers`] (413, 415, 400), [`check_body_len`] on the bytes read, look
//! up the app named by `target_app` ([`WebhookError::UnknownApp`] when none, 401), [`verify`]
//! with that app's current and previous secrets (401), [`parse_event`] (400),
//! [`check_installation_app`] (403), then dedupe on the delivery id and carry out
//! [`classify`]'s [`Action`]. Nothing here does I/O or reads a clock.

pub mod claim;
pub mod delivery;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod headers;
mod json_depth;
pub mod quota;
pub mod redelivery;
pub mod retention;
pub mod signature;

pub use claim::{decide, ClaimDecision, Seen};
pub use dispatch::{classify, push_target, work_item_key, Action, IgnoreReason, PushSkip};
pub use error::WebhookError;
pub use event::parse::parse_event;
pub use event::{CommitSha, Event, EventKind};
pub use headers::{check_body_len, check_headers, DeliveryHeaders, DeliveryId, MAX_PAYLOAD_BYTES};
pub use quota::{admit, prune, Admission};
pub use retention::{expired, log_cap, DeliveryOutcome, MAX_DELIVERY_RECORDS, RETENTION_MS};
pub use signature::{sign, verify, Claim, SignatureError};

use crate::ids::AppId;

/// An installation must belong to the app whose secret verified the delivery: as the
/// payload says (`installation.app_id`, sent on installation events) and as ghplane stored
/// it (`stored_app`, when the installation is known). Otherwise one app's secret could
/// steer another app's tenant.
pub fn check_installation_app(
    event: &Event,
    verified_app: AppId,
    stored_app: Option<AppId>,
) -> Result<(), WebhookError> {
    let Some(installation) = &event.installation else {
        return Ok(());
    };
    let claimed = [installation.app_id, stored_app];
    if claimed.iter().flatten().any(|&app| app != verified_app) {
        return Err(WebhookError::InstallationAppMismatch {
            installation: installation.id.get(),
            app: verified_app.get(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: u64) -> AppId {
        AppId::from_u64(n).unwrap()
    }

    fn installation_event(app_id: Option<u64>) -> Event {
        let body = match app_id {
            Some(a) => format!(r#"{{"action":"created","installation":{{"id":5,"app_id":{a}}}}}"#),
            None => r#"{"action":"created","installation":{"id":5}}"#.to_owned(),
        };
        parse_event("installation", body.as_bytes()).unwrap()
    }

    #[test]
    fn installation_must_belong_to_the_verified_app() {
        let ev = installation_event(Some(9));
        assert_eq!(check_installation_app(&ev, app(9), None), Ok(()));
        assert_eq!(check_installation_app(&ev, app(9), Some(app(9))), Ok(()));
        let e = check_installation_app(&ev, app(8), None).unwrap_err();
        assert_eq!((e.code(), e.status()), ("installation_app_mismatch", 403));
        let e = check_installation_app(&ev, app(9), Some(app(8))).unwrap_err();
        assert_eq!(e.code(), "installation_app_mismatch");

        let bare = installation_event(None);
        assert_eq!(check_installation_app(&bare, app(9), None), Ok(()));
        assert!(check_installation_app(&bare, app(9), Some(app(7))).is_err());

        let none = parse_event("star", b"{}").unwrap();
        assert_eq!(check_installation_app(&none, app(9), Some(app(7))), Ok(()));
    }

    #[test]
    fn the_whole_pipeline_on_one_delivery() {
        let body = br#"{"action":"deleted","installation":{"id":5,"app_id":9},"sender":{"login":"u","id":1,"type":"User"}}"#;
        let signature = sign(b"s3cret", body);
        let headers = check_headers(|name| {
            match name {
                "Content-Type" => Some("application/json"),
                "X-GitHub-Event" => Some("installation"),
                "X-GitHub-Delivery" => Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                "X-GitHub-Hook-Installation-Target-Type" => Some("integration"),
                "X-GitHub-Hook-Installation-Target-ID" => Some("9"),
                "X-Hub-Signature-256" => Some(signature.as_str()),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();
        check_body_len(body.len()).unwrap();
        verify(&[b"s3cret"], body, headers.signature.as_deref()).unwrap();
        let ev = parse_event(&headers.event, body).unwrap();
        check_installation_app(&ev, headers.target_app.unwrap(), None).unwrap();
        let action = classify(&ev);
        assert_eq!(action.kind(), "purge_tenant");
        assert_eq!(action.installation_id().map(|i| i.get()), Some(5));
    }
}
