//! Route handlers, one file per area. The table that maps paths to them is in `lib.rs`.

pub mod apps;
pub mod installations;
pub mod meta;
pub mod mint;
pub mod webhooks;
