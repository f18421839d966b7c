//! The daily trim alarm of the audit objects (`MintAudit`, `AdminAudit`): armed on first
//! write, re-armed by the alarm itself, so an object checks it once per life.

use std::cell::Cell;

use ghplane_core::ApiError;
use worker::State;

/// How often an audit object trims what is past its retention.
pub const TRIM_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

/// Arms the trim alarm unless one is set; `armed` remembers the check for the object's life.
pub async fn arm(state: &State, armed: &Cell<bool>) -> Result<(), ApiError> {
    if !armed.get() {
        let storage = state.storage();
        if storage.get_alarm().await.map_err(|e| fail!(e))?.is_none() {
            storage
                .set_alarm(TRIM_EVERY_MS)
                .await
                .map_err(|e| fail!(e))?;
        }
        armed.set(true);
    }
    Ok(())
}
