//! The hand-off of a verified delivery to the Durable Object that owns it, and that object's
//! answer, as they cross the object boundary: the webhook route builds a [`DeliveryRequest`],
//! the object (an installation's, or the app's when the delivery names no installation)
//! claims, handles and logs it, and answers a [`Delivered`] the route sends GitHub as is.

use serde::{Deserialize, Serialize};

use crate::ids::AppId;
use crate::webhook::{Action, DeliveryOutcome};

/// What the log records of one delivery when it is claimed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Received {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub received_at_ms: i64,
}

/// What the webhook route hands to the object that owns a delivery: the log entry, the app
/// whose secret verified it, and what ghplane is to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub received: Received,
    pub app_id: AppId,
    pub action: Action,
}

/// How a delivery was handled: the body of the answer to GitHub
/// (`{"status", "delivery", "reason"?}`), sent with [`Delivered::status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    #[serde(rename = "status")]
    pub outcome: DeliveryOutcome,
    pub delivery: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Delivered {
    /// 200 for a duplicate (GitHub's delivery already succeeded), 202 otherwise.
    pub fn status(&self) -> u16 {
        if self.outcome == DeliveryOutcome::Duplicate {
            200
        } else {
            202
        }
    }
}

/// One page of a delivery log listing: at most `limit` (the log's default when absent),
/// after the opaque `cursor` a previous page returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPage {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_body_github_gets() {
        let d = Delivered {
            outcome: DeliveryOutcome::Ignored,
            delivery: "d-1".into(),
            reason: Some("not_a_branch".into()),
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"status": "ignored", "delivery": "d-1", "reason": "not_a_branch"})
        );
        assert_eq!(d.status(), 202);
        let dup = Delivered {
            outcome: DeliveryOutcome::Duplicate,
            delivery: "d-1".into(),
            reason: None,
        };
        assert_eq!(
            serde_json::to_value(&dup).unwrap(),
            serde_json::json!({"status": "duplicate", "delivery": "d-1"})
        );
        assert_eq!(dup.status(), 200);
        let back: Delivered = serde_json::from_value(serde_json::to_value(&dup).unwrap()).unwrap();
        assert_eq!(back, dup);
    }
}
