//! The one EAS handler both connection engines call: authentication, the request line,
//! partition routing, protocol version, then the command. It is synchronous and does no
//! I/O; a Ping that must wait comes back as [`Outcome::Park`] for the engine to await.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use super::commands::{self, Outcome, Request};
use super::http::SERVER_VERSION;
use super::http::{Method, RequestHead, Response};
use super::metrics::bump;
use super::state::ServerState;
use crate::eas::commands::ping::PingResponse;
use crate::eas::headers::{
    parse_policy_key, MS_AS_PROTOCOL_COMMANDS, MS_AS_PROTOCOL_VERSIONS, MS_SERVER_ACTIVESYNC,
    X_MS_LOCATION,
};
use crate::eas::request::{Command, EasQuery, QueryError, QueryForm};
use crate::eas::version::UnknownVersion;
use crate::eas::{ProtocolVersion, WbxmlBody};
use crate::partition::partition_of;

/// The versions this server speaks, as OPTIONS announces them.
const VERSIONS: &str = "12.1,14.0,14.1,16.0,16.1";
/// The commands this server implements.
const COMMANDS: &str = "Sync,FolderSync,Ping,Provision,Settings";

/// Why a request's protocol version is not served (the body of its 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum VersionRefusal {
    #[error("MS-ASProtocolVersion header missing")]
    Missing,
    #[error(transparent)]
    Unknown(#[from] UnknownVersion),
    #[error("protocol {0} is not served; use {VERSIONS}")]
    NotServed(ProtocolVersion),
}

/// The request's protocol version (from its base64 query, else its header), if served.
fn served_version(form: &QueryForm, head: &RequestHead) -> Result<ProtocolVersion, VersionRefusal> {
    let version = match form {
        QueryForm::Base64(fields) => fields.version,
        QueryForm::Plain => head
            .protocol_version
            .as_deref()
            .ok_or(VersionRefusal::Missing)?
            .parse::<ProtocolVersion>()?,
    };
    match version >= ProtocolVersion::V12_1 {
        true => Ok(version),
        false => Err(VersionRefusal::NotServed(version)),
    }
}

/// Handles one request of `user`, whom the engine admitted on the head (see
/// [`super::admission`]). A bug that panics inside a command answers this request with
/// Ping Status 8 (or HTTP 500) instead of taking the connection or the server down.
pub(crate) fn handle(
    state: &Arc<ServerState>,
    head: &RequestHead,
    user: &str,
    body: &[u8],
) -> Outcome {
    let routed = std::panic::catch_unwind(AssertUnwindSafe(|| route(state, head, user, body)));
    let outcome =
        routed.unwrap_or_else(|_| Outcome::Respond(internal_error(&state.config.path, head)));
    if let Outcome::Respond(response) = &outcome {
        if response.status >= 400 {
            bump(&state.metrics.http_errors);
        }
    }
    outcome
}

/// The answer to a request whose handling failed inside the server.
fn internal_error(path: &str, head: &RequestHead) -> Response {
    let is_ping = EasQuery::parse_target_under(&head.target, path)
        .is_ok_and(|query| query.command == Command::Ping);
    if is_ping {
        super::http::eas_response(PingResponse::ServerError.encode(), false)
    } else {
        Response::text(500, "internal server error")
    }
}

fn route(state: &Arc<ServerState>, head: &RequestHead, user: &str, body: &[u8]) -> Outcome {
    match head.method {
        Method::Options => {
            bump(&state.metrics.options_requests);
            Outcome::Respond(options())
        }
        Method::Post => post(state, head, user, body),
        Method::Other(_) => Outcome::Respond(
            Response::text(501, "EAS uses OPTIONS and POST").header("Allow", "OPTIONS,POST"),
        ),
    }
}

fn options() -> Response {
    Response::new(200)
        .header("Allow", "OPTIONS,POST")
        .header(MS_SERVER_ACTIVESYNC, SERVER_VERSION)
        .header(MS_AS_PROTOCOL_VERSIONS, VERSIONS)
        .header(MS_AS_PROTOCOL_COMMANDS, COMMANDS)
        .header("Public", "OPTIONS,POST")
}

fn post(state: &Arc<ServerState>, head: &RequestHead, user: &str, body: &[u8]) -> Outcome {
    let query = match EasQuery::parse_target_under(&head.target, &state.config.path) {
        Ok(query) => query,
        Err(err @ QueryError::NotActiveSync(..)) => {
            return Outcome::Respond(Response::text(404, &err.to_string()))
        }
        Err(err) => return Outcome::Respond(Response::text(400, &err.to_string())),
    };
    if !state.config.partition.owns(user) {
        return Outcome::Respond(redirect(state, user));
    }
    let version = match served_version(&query.form, head) {
        Ok(version) => version,
        Err(refusal) => return Outcome::Respond(Response::text(400, &refusal.to_string())),
    };
    let policy_key = match &query.form {
        QueryForm::Base64(fields) => fields.policy_key,
        QueryForm::Plain => head.policy_key.as_deref().and_then(parse_policy_key),
    };
    if let Some(refused) = refuse_device(state, user, &query.device_id) {
        bump(&state.metrics.devices_refused);
        return Outcome::Respond(refused);
    }
    state.metrics.count_command(&query.command);
    let request = Request {
        state,
        user,
        query: &query,
        version,
        policy_key,
        accepts_gzip: head.accepts_gzip,
    };
    match query.command {
        Command::Ping => commands::ping::handle(&request, body),
        Command::FolderSync => commands::folder_sync::handle(&request, body),
        Command::Sync => commands::sync::handle(&request, body),
        Command::Provision => commands::provision::handle(&request, body),
        Command::Settings => commands::settings::handle(&request, body),
        _ => Outcome::Respond(Response::text(
            501,
            &format!(
                "command {} is not implemented by this server",
                query.command.name()
            ),
        )),
    }
}

/// The longest DeviceId kept (MS-ASHTTP's own limit is 32 characters).
pub(crate) const MAX_DEVICE_ID_BYTES: usize = 64;
/// Devices kept per user; a further one is refused (403) rather than stored.
pub(crate) const MAX_DEVICES_PER_USER: usize = 100;

/// Why a request's device cannot be served, if it cannot: a DeviceId too long (400),
/// or a new device for a user who has [`MAX_DEVICES_PER_USER`] already (403).
fn refuse_device(state: &ServerState, user: &str, device_id: &str) -> Option<Response> {
    if device_id.is_empty() || device_id.len() > MAX_DEVICE_ID_BYTES {
        let message = format!("DeviceId must be 1 to {MAX_DEVICE_ID_BYTES} bytes");
        return Some(Response::text(400, &message));
    }
    let full = state.store.with_user(user, |user| {
        user.devices.len() >= MAX_DEVICES_PER_USER && user.existing_device(device_id).is_none()
    });
    full.then(|| {
        let message = format!("user {user} has {MAX_DEVICES_PER_USER} devices already");
        Response::text(403, &message)
    })
}

/// 451 to the partition that owns the user, when the partition URLs are known.
fn redirect(state: &ServerState, user: &str) -> Response {
    let owner = partition_of(user, state.config.partition.count) as usize;
    let response = Response::text(451, &format!("user {user} lives on partition {owner}"));
    match state.config.partition_urls.get(owner) {
        Some(url) => response.header(X_MS_LOCATION, url.clone()),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eas::request::ACTIVESYNC_PATH;
    use crate::server::http::Method;

    #[test]
    fn an_internal_failure_is_status_8_for_ping_and_500_otherwise() {
        let ping = RequestHead::new(
            Method::Post,
            "/Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=a&DeviceType=b",
        );
        let response = internal_error(ACTIVESYNC_PATH, &ping);
        assert_eq!(response.status, 200);
        assert_eq!(
            PingResponse::decode(&response.body),
            Ok(PingResponse::ServerError)
        );
        let sync = RequestHead::new(
            Method::Post,
            "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=a&DeviceType=b",
        );
        assert_eq!(internal_error(ACTIVESYNC_PATH, &sync).status, 500);
    }

    #[test]
    fn a_version_missing_unknown_or_too_old_is_refused_in_words() {
        let mut head = RequestHead::new(Method::Post, "/");
        let served = |head: &RequestHead| served_version(&QueryForm::Plain, head);
        assert_eq!(served(&head), Err(VersionRefusal::Missing));
        head.protocol_version = Some("9.9".into());
        let unknown = served(&head).unwrap_err();
        assert_eq!(
            unknown,
            VersionRefusal::Unknown(UnknownVersion("9.9".into()))
        );
        assert!(unknown
            .to_string()
            .starts_with("unknown EAS protocol version \"9.9\""));
        head.protocol_version = Some("12.0".into());
        let old = served(&head).unwrap_err();
        assert_eq!(old, VersionRefusal::NotServed(ProtocolVersion::V12_0));
        assert_eq!(
            old.to_string(),
            format!("protocol 12.0 is not served; use {VERSIONS}")
        );
        head.protocol_version = Some("14.1".into());
        assert_eq!(served(&head), Ok(ProtocolVersion::V14_1));
    }
}
