//! Push to deploy: a project linked to one branch of one repository deploys exactly once per
//! burst of pushes, always the newest sha, with at most one follow-up queued behind a running
//! deployment.
//!
//! [`machine`] decides, [`lineage`] says which shas the branch already moved past (so no push
//! rolls it back), [`source`] says which pushes count, [`hook`] shapes and signs the job,
//! [`report`] checks a deployer's signed report, [`outbox`] queues the calls the machine's
//! effects ask for and decides what follows each try, [`retry`] spaces and bounds the
//! object's own retries, [`view`] renders the deployments for the API, [`ticket`] guards the
//! one-time credentials exchange, [`routing`] says which projects a push reaches (and why
//! none), [`error`] lists the refusals. All of it is pure: callers pass `now_ms` and random
//! bytes, and perform the returned effects.

pub mod config;
pub mod error;
pub mod hook;
pub mod lineage;
pub mod machine;
pub mod outbox;
pub mod record;
pub mod redeploy;
pub mod report;
pub mod retry;
pub mod routing;
pub mod source;
pub mod ticket;
pub mod view;

pub use error::DeployError;

pub use hook::{
    hook_body, hook_retry_delay_ms, hook_should_retry, signature, verify_signature,
    HOOK_RETRY_DELAYS_MS, SIGNATURE_HEADER,
};
pub use machine::{
    DeployConfig, DeployMachine, Effect, Ignored, Phase, Push, Reaction, Redeploy, Redeployed,
    DEBOUNCE_CAP_FACTOR, DEFAULT_DEBOUNCE_SECONDS, DEFAULT_TIMEOUT_SECONDS, MAX_DEPLOYMENTS,
    MAX_RECENT_DELIVERIES,
};
pub use record::{Deployment, DeploymentState, Outcome, ReportedState, Trigger, TriggerKind};
pub use report::{report_signature, verify_report, REPORT_WINDOW_SECS, TIMESTAMP_HEADER};
pub use routing::{
    apply_rename, check_push, combine, ignored_reason, next_push_seq, remove_link, report_refusal,
    route_push, route_rename, upsert_link, DeploymentRef, RepoLink,
};
pub use source::{is_commit_sha, pushed_branch, BranchName, HookUrl, Source, SourceInput};
pub use ticket::{
    keep_stored, redeem_stored, release_stored, token_scope, Ticket, TicketError, TICKET_TTL_MS,
};
