//! The Provision command (MS-ASPROV): phase 1 asks for the policy and gets a temporary
//! key, phase 2 acknowledges it and gets the final key; the RemoteWipe acknowledgement
//! rides on the same command.

use super::settings::{
    device_information_status, read_device_information_status, DeviceInformation,
};
use super::{
    optional_number, optional_text, required, required_number, required_text, ModelError, WbxmlBody,
};
use crate::eas::codepages::{provision, settings};
use crate::eas::wbxml::{Element, Tag};

/// The policy type of protocol 12.0 and later.
pub const POLICY_TYPE_WBXML: &str = "MS-EAS-Provisioning-WBXML";

/// Provision Status values (command level).
pub mod status {
    pub const OK: u32 = 1;
    pub const PROTOCOL_ERROR: u32 = 2;
    pub const SERVER_ERROR: u32 = 3;
}

/// A Provision request: policy phase 1 or 2, or a RemoteWipe acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvisionRequest {
    /// 14.1+: sent with the first request.
    pub device_information: Option<DeviceInformation>,
    pub policy: Option<PolicyRequest>,
    /// The client's `RemoteWipe{Status}` acknowledgement.
    pub remote_wipe_status: Option<u32>,
}

/// `Policy{PolicyType, [PolicyKey, Status]}`: without a key it is phase 1, with the
/// temporary key and a Status it is the phase-2 acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRequest {
    pub policy_type: String,
    pub policy_key: Option<String>,
    /// 1 applied, 2 partial, 3 not applied, 4 externally managed.
    pub status: Option<u32>,
}

impl PolicyRequest {
    /// Phase 1: ask for the policy.
    pub fn phase_one() -> Self {
        Self {
            policy_type: POLICY_TYPE_WBXML.into(),
            policy_key: None,
            status: None,
        }
    }

    /// Phase 2: acknowledge the temporary key as applied.
    pub fn acknowledge(temporary_key: impl Into<String>) -> Self {
        Self {
            policy_type: POLICY_TYPE_WBXML.into(),
            policy_key: Some(temporary_key.into()),
            status: Some(status::OK),
        }
    }
}

fn policies_element(policy: Element) -> Element {
    Element::new(provision::POLICIES).child(policy)
}

impl WbxmlBody for ProvisionRequest {
    const ROOT: Tag = provision::PROVISION;

    fn to_element(&self) -> Element {
        let mut root = Element::new(provision::PROVISION);
        if let Some(info) = &self.device_information {
            root.push(info.to_element());
        }
        if let Some(policy) = &self.policy {
            let element = Element::new(provision::POLICY)
                .child(Element::with_text(
                    provision::POLICY_TYPE,
                    policy.policy_type.as_str(),
                ))
                .optional_text(provision::POLICY_KEY, policy.policy_key.as_deref())
                .optional_text(provision::STATUS, policy.status.map(|s| s.to_string()));
            root.push(policies_element(element));
        }
        if let Some(status) = self.remote_wipe_status {
            root.push(
                Element::new(provision::REMOTE_WIPE)
                    .child(Element::with_text(provision::STATUS, status.to_string())),
            );
        }
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let device_information = root
            .find(settings::DEVICE_INFORMATION)
            .map(DeviceInformation::from_element)
            .transpose()?;
        let policy = match root.find(provision::POLICIES) {
            Some(policies) => {
                let policy = required(policies, provision::POLICY)?;
                Some(PolicyRequest {
                    policy_type: required_text(policy, provision::POLICY_TYPE)?,
                    policy_key: optional_text(policy, provision::POLICY_KEY),
                    status: optional_number(policy, provision::STATUS)?,
                })
            }
            None => None,
        };
        let remote_wipe_status = match root.find(provision::REMOTE_WIPE) {
            Some(wipe) => Some(required_number(wipe, provision::STATUS)?),
            None => None,
        };
        if policy.is_none() && remote_wipe_status.is_none() {
            return Err(ModelError::Invalid(
                "a <Provision> request needs <Policies> or <RemoteWipe>".into(),
            ));
        }
        Ok(Self {
            device_information,
            policy,
            remote_wipe_status,
        })
    }
}

/// A Provision response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionResponse {
    pub status: u32,
    /// 14.1+: the status of the DeviceInformation the request carried.
    pub device_information_status: Option<u32>,
    pub policy: Option<PolicyResponse>,
    /// The server asks the device to wipe itself.
    pub remote_wipe: bool,
}

/// `Policy{PolicyType, Status, PolicyKey, [Data{EASProvisionDoc}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResponse {
    pub policy_type: String,
    pub status: u32,
    pub policy_key: Option<String>,
    /// Phase 1 only: the policy settings, as `(element, value)` pairs of the
    /// EASProvisionDoc (for example `DevicePasswordEnabled = 0`).
    pub document: Option<Vec<(Tag, String)>>,
}

impl WbxmlBody for ProvisionResponse {
    const ROOT: Tag = provision::PROVISION;

    fn to_element(&self) -> Element {
        let mut root = Element::new(provision::PROVISION);
        if let Some(status) = self.device_information_status {
            root.push(device_information_status(status));
        }
        root.push(Element::with_text(
            provision::STATUS,
            self.status.to_string(),
        ));
        if let Some(policy) = &self.policy {
            let mut element = Element::new(provision::POLICY)
                .child(Element::with_text(
                    provision::POLICY_TYPE,
                    policy.policy_type.as_str(),
                ))
                .child(Element::with_text(
                    provision::STATUS,
                    policy.status.to_string(),
                ))
                .optional_text(provision::POLICY_KEY, policy.policy_key.as_deref());
            if let Some(document) = &policy.document {
                let mut doc = Element::new(provision::EAS_PROVISION_DOC);
                for (tag, value) in document {
                    doc.push(Element::with_text(*tag, value.as_str()));
                }
                element.push(Element::new(provision::DATA).child(doc));
            }
            root.push(policies_element(element));
        }
        if self.remote_wipe {
            root.push(Element::new(provision::REMOTE_WIPE));
        }
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let policy = match root.find(provision::POLICIES) {
            Some(policies) => Some(read_policy_response(required(
                policies,
                provision::POLICY,
            )?)?),
            None => None,
        };
        Ok(Self {
            status: required_number(root, provision::STATUS)?,
            device_information_status: read_device_information_status(root)?,
            policy,
            remote_wipe: root.find(provision::REMOTE_WIPE).is_some(),
        })
    }
}

fn read_policy_response(policy: &Element) -> Result<PolicyResponse, ModelError> {
    let document = policy
        .find(provision::DATA)
        .and_then(|data| data.find(provision::EAS_PROVISION_DOC))
        .map(|doc| {
            doc.elements()
                .filter_map(|setting| Some((setting.tag, setting.text()?)))
                .collect()
        });
    Ok(PolicyResponse {
        policy_type: required_text(policy, provision::POLICY_TYPE)?,
        status: required_number(policy, provision::STATUS)?,
        policy_key: optional_text(policy, provision::POLICY_KEY),
        document,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_phases_and_remote_wipe_round_trip() {
        let phase_one = ProvisionRequest {
            device_information: Some(DeviceInformation {
                model: Some("SM-G991B".into()),
                ..DeviceInformation::default()
            }),
            policy: Some(PolicyRequest::phase_one()),
            remote_wipe_status: None,
        };
        assert_eq!(ProvisionRequest::decode(&phase_one.encode()), Ok(phase_one));
        let phase_two = ProvisionRequest {
            policy: Some(PolicyRequest::acknowledge("1307199584")),
            ..ProvisionRequest::default()
        };
        assert_eq!(ProvisionRequest::decode(&phase_two.encode()), Ok(phase_two));
        let wipe_ack = ProvisionRequest {
            remote_wipe_status: Some(1),
            ..ProvisionRequest::default()
        };
        assert_eq!(ProvisionRequest::decode(&wipe_ack.encode()), Ok(wipe_ack));
        let response = ProvisionResponse {
            status: status::OK,
            device_information_status: Some(1),
            policy: Some(PolicyResponse {
                policy_type: POLICY_TYPE_WBXML.into(),
                status: 1,
                policy_key: Some("3942919513".into()),
                document: Some(vec![
                    (provision::DEVICE_PASSWORD_ENABLED, "0".into()),
                    (provision::ATTACHMENTS_ENABLED, "1".into()),
                ]),
            }),
            remote_wipe: true,
        };
        assert_eq!(ProvisionResponse::decode(&response.encode()), Ok(response));
    }

    #[test]
    fn a_request_with_nothing_to_do_is_refused() {
        let bytes = crate::eas::wbxml::encode(&Element::new(provision::PROVISION));
        assert!(matches!(
            ProvisionRequest::decode(&bytes),
            Err(ModelError::Invalid(_))
        ));
    }
}
