//! Settings: the server records nothing of a device's DeviceInformation but answers it
//! as Exchange does, so a client's bootstrap goes through. Other Settings requests (Oof,
//! UserInformation) get Status 2, protocol error.

use super::{Outcome, Request};
use crate::eas::commands::settings::{SettingsRequest, SettingsResponse};
use crate::eas::WbxmlBody;

const OK: u32 = 1;
const PROTOCOL_ERROR: u32 = 2;

pub fn handle(request: &Request, body: &[u8]) -> Outcome {
    let response = match SettingsRequest::decode(body) {
        Ok(_) => SettingsResponse {
            status: OK,
            device_information_status: Some(OK),
        },
        Err(_) => SettingsResponse {
            status: PROTOCOL_ERROR,
            device_information_status: None,
        },
    };
    request.respond(response.encode())
}
