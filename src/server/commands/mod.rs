//! The EAS commands the reference server implements, one module each. Every command
//! is a synchronous function from a checked request and its body to an [`Outcome`]; only
//! Ping can park.

pub mod folder_sync;
pub mod ping;
pub mod provision;
pub mod settings;
pub mod sync;

use std::sync::Arc;

use super::http::{eas_response, Response};
use super::parking::ParkedPing;
use super::state::ServerState;
use crate::eas::request::EasQuery;
use crate::eas::ProtocolVersion;

/// What the handler decided.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    Park(ParkedPing),
}

/// An authenticated EAS request for a user this partition owns.
#[derive(Debug)]
pub struct Request<'a> {
    pub state: &'a Arc<ServerState>,
    pub user: &'a str,
    pub query: &'a EasQuery,
    pub version: ProtocolVersion,
    pub policy_key: Option<u32>,
    pub accepts_gzip: bool,
}

impl Request<'_> {
    pub fn device_id(&self) -> &str {
        &self.query.device_id
    }

    /// A 200 response carrying a WBXML body.
    pub fn respond(&self, body: Vec<u8>) -> Outcome {
        Outcome::Respond(eas_response(body, self.accepts_gzip))
    }

    /// Whether the device must provision first: `Some(response)` to send instead of
    /// serving the command. 12.1 and older get HTTP 449; 14.0+ get Status 142 (no key)
    /// or 144 (a stale key) in the command's own body, built by `status_body`.
    pub fn provision_gate(&self, status_body: impl Fn(u32) -> Vec<u8>) -> Option<Outcome> {
        if !self.state.config.require_provision {
            return None;
        }
        let current = self.state.store.with_user(self.user, |user| {
            user.existing_device(self.device_id())
                .map_or(0, |device| device.policy_key)
        });
        let status = match self.policy_key {
            Some(key) if key != 0 && key == current => return None,
            Some(key) if key != 0 => 144,
            _ => 142,
        };
        if self.version.has_common_status_codes() {
            Some(self.respond(status_body(status)))
        } else {
            Some(Outcome::Respond(Response::new(449)))
        }
    }
}
