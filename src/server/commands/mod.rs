//! The EAS commands the reference server implements, one module each. Every command
//! is a synchronous function from a checked request and its body to an [`Outcome`]; only
//! Ping can park.

pub mod folder_sync;
pub mod ping;
pub mod provision;
pub mod settings;
pub mod sync;

use std::io::Write as _;
use std::sync::Arc;

use super::http::Response;
use super::parking::ParkedPing;
use super::state::ServerState;
use crate::eas::headers::{CONTENT_TYPE_WBXML, MS_SERVER_ACTIVESYNC};
use crate::eas::request::EasQuery;
use crate::eas::ProtocolVersion;

/// The version this server announces in `MS-Server-ActiveSync`.
pub const SERVER_VERSION: &str = "16.1";

/// Bodies smaller than this are not worth compressing (a Ping response is 13-20 bytes).
pub const GZIP_MIN_BYTES: usize = 256;

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

/// A 200 response with a WBXML body, gzip-compressed when the client accepts it and the
/// body is large enough to gain from it.
pub fn eas_response(body: Vec<u8>, accepts_gzip: bool) -> Response {
    let mut response = Response::new(200)
        .header("Content-Type", CONTENT_TYPE_WBXML)
        .header(MS_SERVER_ACTIVESYNC, SERVER_VERSION);
    if accepts_gzip && body.len() >= GZIP_MIN_BYTES {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 2),
            flate2::Compression::fast(),
        );
        if encoder.write_all(&body).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                response.body = compressed;
                return response.header("Content-Encoding", "gzip");
            }
        }
    }
    response.body = body;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn large_bodies_are_gzipped_when_accepted() {
        let body = vec![b'a'; 1000];
        let plain = eas_response(body.clone(), false);
        assert_eq!(plain.body, body);
        assert_eq!(plain.header_value("Content-Encoding"), None);
        let small = eas_response(vec![1, 2, 3], true);
        assert_eq!(small.header_value("Content-Encoding"), None);
        let gzipped = eas_response(body.clone(), true);
        assert_eq!(gzipped.header_value("Content-Encoding"), Some("gzip"));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzipped.body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }
}
