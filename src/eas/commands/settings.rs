//! The Settings command's DeviceInformation (MS-ASCMD 2.2.1.18): what a device tells the
//! server about itself. Provision (14.1+) carries the same element in its first request.

use super::{optional_number, optional_text, required, required_number, ModelError, WbxmlBody};
use crate::eas::codepages::settings;
use crate::eas::wbxml::{Element, Tag};

/// `settings:DeviceInformation{Set{...}}` fields, each optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInformation {
    pub model: Option<String>,
    pub imei: Option<String>,
    pub friendly_name: Option<String>,
    pub os: Option<String>,
    pub os_language: Option<String>,
    pub phone_number: Option<String>,
    pub user_agent: Option<String>,
    pub mobile_operator: Option<String>,
}

impl DeviceInformation {
    /// `DeviceInformation{Set{...}}`.
    pub fn to_element(&self) -> Element {
        let set = Element::new(settings::SET)
            .optional_text(settings::MODEL, self.model.as_deref())
            .optional_text(settings::IMEI, self.imei.as_deref())
            .optional_text(settings::FRIENDLY_NAME, self.friendly_name.as_deref())
            .optional_text(settings::OS, self.os.as_deref())
            .optional_text(settings::OS_LANGUAGE, self.os_language.as_deref())
            .optional_text(settings::PHONE_NUMBER, self.phone_number.as_deref())
            .optional_text(settings::USER_AGENT, self.user_agent.as_deref())
            .optional_text(settings::MOBILE_OPERATOR, self.mobile_operator.as_deref());
        Element::new(settings::DEVICE_INFORMATION).child(set)
    }

    /// Reads `DeviceInformation{Set{...}}`.
    pub fn from_element(element: &Element) -> Result<Self, ModelError> {
        let set = required(element, settings::SET)?;
        Ok(Self {
            model: optional_text(set, settings::MODEL),
            imei: optional_text(set, settings::IMEI),
            friendly_name: optional_text(set, settings::FRIENDLY_NAME),
            os: optional_text(set, settings::OS),
            os_language: optional_text(set, settings::OS_LANGUAGE),
            phone_number: optional_text(set, settings::PHONE_NUMBER),
            user_agent: optional_text(set, settings::USER_AGENT),
            mobile_operator: optional_text(set, settings::MOBILE_OPERATOR),
        })
    }
}

/// `Settings{DeviceInformation{Set{...}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SettingsRequest {
    pub device_information: DeviceInformation,
}

impl WbxmlBody for SettingsRequest {
    const ROOT: Tag = settings::SETTINGS;

    fn to_element(&self) -> Element {
        Element::new(settings::SETTINGS).child(self.device_information.to_element())
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let device_information = required(root, settings::DEVICE_INFORMATION)?;
        Ok(Self {
            device_information: DeviceInformation::from_element(device_information)?,
        })
    }
}

/// `Settings{Status, DeviceInformation{Status}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsResponse {
    pub status: u32,
    pub device_information_status: Option<u32>,
}

/// Builds `DeviceInformation{Status}` as responses carry it.
pub(super) fn device_information_status(status: u32) -> Element {
    Element::new(settings::DEVICE_INFORMATION)
        .child(Element::with_text(settings::STATUS, status.to_string()))
}

/// Reads the status of a response's `DeviceInformation{Status}`, if present.
pub(super) fn read_device_information_status(parent: &Element) -> Result<Option<u32>, ModelError> {
    parent
        .find(settings::DEVICE_INFORMATION)
        .map(|element| optional_number(element, settings::STATUS))
        .transpose()
        .map(Option::flatten)
}

impl WbxmlBody for SettingsResponse {
    const ROOT: Tag = settings::SETTINGS;

    fn to_element(&self) -> Element {
        let mut root = Element::new(settings::SETTINGS).child(Element::with_text(
            settings::STATUS,
            self.status.to_string(),
        ));
        if let Some(status) = self.device_information_status {
            root.push(device_information_status(status));
        }
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            status: required_number(root, settings::STATUS)?,
            device_information_status: read_device_information_status(root)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip() {
        let request = SettingsRequest {
            device_information: DeviceInformation {
                model: Some("Pixel 8".into()),
                os: Some("Android 14".into()),
                user_agent: Some("pingfleet/0.1".into()),
                ..DeviceInformation::default()
            },
        };
        assert_eq!(SettingsRequest::decode(&request.encode()), Ok(request));
        let response = SettingsResponse {
            status: 1,
            device_information_status: Some(1),
        };
        assert_eq!(SettingsResponse::decode(&response.encode()), Ok(response));
    }
}
