//! What ghplane understands of GitHub's REST API, without making any call.

pub mod branches;
pub mod error;
pub mod pages;
pub mod retry;
