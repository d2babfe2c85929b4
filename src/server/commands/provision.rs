//! Provision, both phases with real policy keys: phase 1 hands out a temporary key and a
//! small policy, phase 2 trades an acknowledged temporary key for the final one, which
//! `--require-provision` then demands on FolderSync and Sync.

use super::{Outcome, Request};
use crate::eas::codepages::provision as prov;
use crate::eas::commands::provision::{
    status, PolicyRequest, PolicyResponse, ProvisionRequest, ProvisionResponse, POLICY_TYPE_WBXML,
};
use crate::eas::wbxml::Tag;
use crate::eas::WbxmlBody;

/// Policy Status: the device acknowledged a key it was not given.
const POLICY_WRONG_KEY: u32 = 5;
/// Policy Status: a policy type this server does not have.
const POLICY_UNKNOWN_TYPE: u32 = 3;

/// The policy every device gets: no password, attachments allowed.
const POLICY: [(Tag, &str); 4] = [
    (prov::DEVICE_PASSWORD_ENABLED, "0"),
    (prov::ALPHANUMERIC_DEVICE_PASSWORD_REQUIRED, "0"),
    (prov::ATTACHMENTS_ENABLED, "1"),
    (prov::ALLOW_HTML_EMAIL, "1"),
];

pub fn handle(request: &Request, body: &[u8]) -> Outcome {
    let Ok(provision) = ProvisionRequest::decode(body) else {
        return request.respond(failed(status::PROTOCOL_ERROR).encode());
    };
    let device_information_status = provision.device_information.as_ref().map(|_| status::OK);
    let policy = provision
        .policy
        .map(|policy| answer_policy(request, policy));
    let response = ProvisionResponse {
        status: status::OK,
        device_information_status,
        policy,
        remote_wipe: false,
    };
    request.respond(response.encode())
}

fn failed(status: u32) -> ProvisionResponse {
    ProvisionResponse {
        status,
        device_information_status: None,
        policy: None,
        remote_wipe: false,
    }
}

fn answer_policy(request: &Request, policy: PolicyRequest) -> PolicyResponse {
    let mut response = PolicyResponse {
        policy_type: policy.policy_type.clone(),
        status: status::OK,
        policy_key: None,
        document: None,
    };
    if policy.policy_type != POLICY_TYPE_WBXML {
        response.status = POLICY_UNKNOWN_TYPE;
        return response;
    }
    let state = request.state;
    let new_key = state.next_policy_key();
    let acknowledged = policy
        .policy_key
        .as_deref()
        .and_then(|key| key.trim().parse::<u32>().ok());
    state.store.with_user(request.user, |user| {
        let device = user.device(request.device_id());
        match acknowledged {
            // Phase 1: the policy and a temporary key.
            None => {
                device.pending_policy_key = new_key;
                response.policy_key = Some(new_key.to_string());
                response.document = Some(
                    POLICY
                        .iter()
                        .map(|(tag, value)| (*tag, (*value).to_owned()))
                        .collect(),
                );
            }
            // Phase 2: the acknowledged temporary key becomes a final key.
            Some(key) if key != 0 && key == device.pending_policy_key => {
                device.pending_policy_key = 0;
                device.policy_key = new_key;
                response.policy_key = Some(new_key.to_string());
            }
            Some(_) => response.status = POLICY_WRONG_KEY,
        }
    });
    response
}
