//! Route handlers, one file per area. The table that maps paths to them is in `lib.rs`.

pub mod apps;
pub mod console;
pub mod deploy;
pub mod github_connect;
pub mod installations;
pub mod installers;
pub mod meta;
pub mod mint;
pub mod org_access;
pub mod people;
pub mod projects;
pub mod redeliveries;
pub mod reseal;
pub mod setup;
pub mod webhooks;
