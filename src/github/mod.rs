//! Talking to GitHub: the REST client and App JWTs. What the answers mean is decided in
//! `ghplane_core::github`.

pub mod app_jwt;
pub mod client;
pub mod oauth;
pub mod repos;
