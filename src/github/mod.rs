//! Talking to GitHub: the REST client. What the answers mean is decided in
//! `ghplane_core::github`.

pub mod client;
