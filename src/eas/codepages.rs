//! EAS code pages (MS-ASWBXML): the token of every element name on the pages pingfleet
//! speaks, as constants for the command models (`airsync::SYNC_KEY`) and as a table for
//! the XML view (`tag_name`, `lookup`).
//!
//! Names are spelled as libwbxml's `wbxml2xml -l ACTIVESYNC` prints them, so our XML and
//! theirs can be compared directly. A page or token missing here is not an error: it is
//! shown as a visible placeholder (`Unknown0x3A` on namespace `Page27:`) that encodes back
//! to the same bytes.

use super::wbxml::Tag;

/// One code page: its number, the XML namespace prefix name, and its tokens.
#[derive(Debug)]
pub struct CodePage {
    pub number: u8,
    pub namespace: &'static str,
    pub tokens: &'static [(u8, &'static str)],
}

macro_rules! code_pages {
    ($( $module:ident = $page:literal, $namespace:literal {
        $( $constant:ident = $token:literal $name:literal, )*
    } )*) => {
        $(
            #[doc = concat!("Tokens of the ", $namespace, " code page.")]
            pub mod $module {
                use super::Tag;
                pub const PAGE: u8 = $page;
                $( pub const $constant: Tag = Tag::new($page, $token); )*
            }
        )*
        /// Every code page known to pingfleet, in page order.
        pub static CODE_PAGES: &[CodePage] = &[
            $( CodePage { number: $page, namespace: $namespace, tokens: &[ $( ($token, $name), )* ] }, )*
        ];
    };
}

code_pages! {
    airsync = 0x00, "AirSync" {
        SYNC = 0x05 "Sync",
        RESPONSES = 0x06 "Responses",
        ADD = 0x07 "Add",
        CHANGE = 0x08 "Change",
        DELETE = 0x09 "Delete",
        FETCH = 0x0a "Fetch",
        SYNC_KEY = 0x0b "SyncKey",
        CLIENT_ID = 0x0c "ClientId",
        SERVER_ID = 0x0d "ServerId",
        STATUS = 0x0e "Status",
        COLLECTION = 0x0f "Collection",
        CLASS = 0x10 "Class",
        VERSION = 0x11 "Version",
        COLLECTION_ID = 0x12 "CollectionId",
        GET_CHANGES = 0x13 "GetChanges",
        MORE_AVAILABLE = 0x14 "MoreAvailable",
        WINDOW_SIZE = 0x15 "WindowSize",
        COMMANDS = 0x16 "Commands",
        OPTIONS = 0x17 "Options",
        FILTER_TYPE = 0x18 "FilterType",
        TRUNCATION = 0x19 "Truncation",
        RTF_TRUNCATION = 0x1a "RTFTruncation",
        CONFLICT = 0x1b "Conflict",
        COLLECTIONS = 0x1c "Collections",
        APPLICATION_DATA = 0x1d "ApplicationData",
        DELETES_AS_MOVES = 0x1e "DeletesAsMoves",
        NOTIFY_GUID = 0x1f "NotifyGUID",
        SUPPORTED = 0x20 "Supported",
        SOFT_DELETE = 0x21 "SoftDelete",
        MIME_SUPPORT = 0x22 "MIMESupport",
        MIME_TRUNCATION = 0x23 "MIMETruncation",
        WAIT = 0x24 "Wait",
        LIMIT = 0x25 "Limit",
        PARTIAL = 0x26 "Partial",
        CONVERSATION_MODE = 0x27 "ConversationMode",
        MAX_ITEMS = 0x28 "MaxItems",
        HEARTBEAT_INTERVAL = 0x29 "HeartbeatInterval",
    }
    contacts = 0x01, "Contacts" {
        ANNIVERSARY = 0x05 "Anniversary",
        ASSISTANT_NAME = 0x06 "AssistantName",
        ASSISTANT_TELEPHONE_NUMBER = 0x07 "AssistantTelephoneNumber",
        BIRTHDAY = 0x08 "Birthday",
        BODY = 0x09 "Body",
        BODY_SIZE = 0x0a "BodySize",
        BODY_TRUNCATED = 0x0b "BodyTruncated",
        BUSINESS2_PHONE_NUMBER = 0x0c "Business2PhoneNumber",
        BUSINESS_CITY = 0x0d "BusinessCity",
        BUSINESS_COUNTRY = 0x0e "BusinessCountry",
        BUSINESS_POSTAL_CODE = 0x0f "BusinessPostalCode",
        BUSINESS_STATE = 0x10 "BusinessState",
        BUSINESS_STREET = 0x11 "BusinessStreet",
        BUSINESS_FAX_NUMBER = 0x12 "BusinessFaxNumber",
        BUSINESS_PHONE_NUMBER = 0x13 "BusinessPhoneNumber",
        CAR_PHONE_NUMBER = 0x14 "CarPhoneNumber",
        CATEGORIES = 0x15 "Categories",
        CATEGORY = 0x16 "Category",
        CHILDREN = 0x17 "Children",
        CHILD = 0x18 "Child",
        COMPANY_NAME = 0x19 "CompanyName",
        DEPARTMENT = 0x1a "Department",
        EMAIL1_ADDRESS = 0x1b "Email1Address",
        EMAIL2_ADDRESS = 0x1c "Email2Address",
        EMAIL3_ADDRESS = 0x1d "Email3Address",
        FILE_AS = 0x1e "FileAs",
        FIRST_NAME = 0x1f "FirstName",
        HOME2_PHONE_NUMBER = 0x20 "Home2PhoneNumber",
        HOME_CITY = 0x21 "HomeCity",
        HOME_COUNTRY = 0x22 "HomeCountry",
        HOME_POSTAL_CODE = 0x23 "HomePostalCode",
        HOME_STATE = 0x24 "HomeState",
        HOME_STREET = 0x25 "HomeStreet",
        HOME_FAX_NUMBER = 0x26 "HomeFaxNumber",
        HOME_PHONE_NUMBER = 0x27 "HomePhoneNumber",
        JOB_TITLE = 0x28 "JobTitle",
        LAST_NAME = 0x29 "LastName",
        MIDDLE_NAME = 0x2a "MiddleName",
        MOBILE_PHONE_NUMBER = 0x2b "MobilePhoneNumber",
        OFFICE_LOCATION = 0x2c "OfficeLocation",
        OTHER_CITY = 0x2d "OtherCity",
        OTHER_COUNTRY = 0x2e "OtherCountry",
        OTHER_POSTAL_CODE = 0x2f "OtherPostalCode",
        OTHER_STATE = 0x30 "OtherState",
        OTHER_STREET = 0x31 "OtherStreet",
        PAGER_NUMBER = 0x32 "PagerNumber",
        RADIO_PHONE_NUMBER = 0x33 "RadioPhoneNumber",
        SPOUSE = 0x34 "Spouse",
        SUFFIX = 0x35 "Suffix",
        TITLE = 0x36 "Title",
        WEB_PAGE = 0x37 "WebPage",
        YOMI_COMPANY_NAME = 0x38 "YomiCompanyName",
        YOMI_FIRST_NAME = 0x39 "YomiFirstName",
        YOMI_LAST_NAME = 0x3a "YomiLastName",
        COMPRESSED_RTF = 0x3b "CompressedRTF",
        PICTURE = 0x3c "Picture",
        ALIAS = 0x3d "Alias",
        WEIGHTED_RANK = 0x3e "WeightedRank",
    }
    email = 0x02, "Email" {
        ATTACHMENT = 0x05 "Attachment",
        ATTACHMENTS = 0x06 "Attachments",
        ATT_NAME = 0x07 "AttName",
        ATT_SIZE = 0x08 "AttSize",
        ATT_O_ID = 0x09 "AttOId",
        ATT_METHOD = 0x0a "AttMethod",
        ATT_REMOVED = 0x0b "AttRemoved",
        BODY = 0x0c "Body",
        BODY_SIZE = 0x0d "BodySize",
        BODY_TRUNCATED = 0x0e "BodyTruncated",
        DATE_RECEIVED = 0x0f "DateReceived",
        DISPLAY_NAME = 0x10 "DisplayName",
        DISPLAY_TO = 0x11 "DisplayTo",
        IMPORTANCE = 0x12 "Importance",
        MESSAGE_CLASS = 0x13 "MessageClass",
        SUBJECT = 0x14 "Subject",
        READ = 0x15 "Read",
        TO = 0x16 "To",
        CC = 0x17 "Cc",
        FROM = 0x18 "From",
        REPLY_TO = 0x19 "Reply-To",
        ALL_DAY_EVENT = 0x1a "AllDayEvent",
        CATEGORIES = 0x1b "Categories",
        CATEGORY = 0x1c "Category",
        DT_STAMP = 0x1d "DTStamp",
        END_TIME = 0x1e "EndTime",
        INSTANCE_TYPE = 0x1f "InstanceType",
        BUSY_STATUS = 0x20 "BusyStatus",
        LOCATION = 0x21 "Location",
        MEETING_REQUEST = 0x22 "MeetingRequest",
        ORGANIZER = 0x23 "Organizer",
        RECURRENCE_ID = 0x24 "RecurrenceId",
        REMINDER = 0x25 "Reminder",
        RESPONSE_REQUESTED = 0x26 "ResponseRequested",
        RECURRENCES = 0x27 "Recurrences",
        RECURRENCE = 0x28 "Recurrence",
        RECURRENCE_TYPE = 0x29 "Recurrence_Type",
        RECURRENCE_UNTIL = 0x2a "Recurrence_Until",
        RECURRENCE_OCCURRENCES = 0x2b "Recurrence_Occurrences",
        RECURRENCE_INTERVAL = 0x2c "Recurrence_Interval",
        RECURRENCE_DAY_OF_WEEK = 0x2d "Recurrence_DayOfWeek",
        RECURRENCE_DAY_OF_MONTH = 0x2e "Recurrence_DayOfMonth",
        RECURRENCE_WEEK_OF_MONTH = 0x2f "Recurrence_WeekOfMonth",
        RECURRENCE_MONTH_OF_YEAR = 0x30 "Recurrence_MonthOfYear",
        START_TIME = 0x31 "StartTime",
        SENSITIVITY = 0x32 "Sensitivity",
        TIME_ZONE = 0x33 "TimeZone",
        GLOBAL_OBJ_ID = 0x34 "GlobalObjId",
        THREAD_TOPIC = 0x35 "ThreadTopic",
        MIME_DATA = 0x36 "MIMEData",
        MIME_TRUNCATED = 0x37 "MIMETruncated",
        MIME_SIZE = 0x38 "MIMESize",
        INTERNET_CPID = 0x39 "InternetCPID",
        FLAG = 0x3a "Flag",
        FLAG_STATUS = 0x3b "FlagStatus",
        CONTENT_CLASS = 0x3c "ContentClass",
        FLAG_TYPE = 0x3d "FlagType",
        COMPLETE_TIME = 0x3e "CompleteTime",
        DISALLOW_NEW_TIME_PROPOSAL = 0x3f "DisallowNewTimeProposal",
    }
    folder_hierarchy = 0x07, "FolderHierarchy" {
        FOLDERS = 0x05 "Folders",
        FOLDER = 0x06 "Folder",
        DISPLAY_NAME = 0x07 "DisplayName",
        SERVER_ID = 0x08 "ServerId",
        PARENT_ID = 0x09 "ParentId",
        TYPE = 0x0a "Type",
        RESPONSE = 0x0b "Response",
        STATUS = 0x0c "Status",
        CONTENT_CLASS = 0x0d "ContentClass",
        CHANGES = 0x0e "Changes",
        ADD = 0x0f "Add",
        DELETE = 0x10 "Delete",
        UPDATE = 0x11 "Update",
        SYNC_KEY = 0x12 "SyncKey",
        FOLDER_CREATE = 0x13 "FolderCreate",
        FOLDER_DELETE = 0x14 "FolderDelete",
        FOLDER_UPDATE = 0x15 "FolderUpdate",
        FOLDER_SYNC = 0x16 "FolderSync",
        COUNT = 0x17 "Count",
        VERSION = 0x18 "Version",
    }
    ping = 0x0d, "Ping" {
        PING = 0x05 "Ping",
        AUTD_STATE = 0x06 "AutdState",
        STATUS = 0x07 "Status",
        HEARTBEAT_INTERVAL = 0x08 "HeartbeatInterval",
        FOLDERS = 0x09 "Folders",
        FOLDER = 0x0a "Folder",
        ID = 0x0b "Id",
        CLASS = 0x0c "Class",
        MAX_FOLDERS = 0x0d "MaxFolders",
    }
    provision = 0x0e, "Provision" {
        PROVISION = 0x05 "Provision",
        POLICIES = 0x06 "Policies",
        POLICY = 0x07 "Policy",
        POLICY_TYPE = 0x08 "PolicyType",
        POLICY_KEY = 0x09 "PolicyKey",
        DATA = 0x0a "Data",
        STATUS = 0x0b "Status",
        REMOTE_WIPE = 0x0c "RemoteWipe",
        EAS_PROVISION_DOC = 0x0d "EASProvisionDoc",
        DEVICE_PASSWORD_ENABLED = 0x0e "DevicePasswordEnabled",
        ALPHANUMERIC_DEVICE_PASSWORD_REQUIRED = 0x0f "AlphanumericDevicePasswordRequired",
        DEVICE_ENCRYPTION_ENABLED = 0x10 "DeviceEncryptionEnabled",
        PASSWORD_RECOVERY_ENABLED = 0x11 "PasswordRecoveryEnabled",
        DOCUMENT_BROWSE_ENABLED = 0x12 "DocumentBrowseEnabled",
        ATTACHMENTS_ENABLED = 0x13 "AttachmentsEnabled",
        MIN_DEVICE_PASSWORD_LENGTH = 0x14 "MinDevicePasswordLength",
        MAX_INACTIVITY_TIME_DEVICE_LOCK = 0x15 "MaxInactivityTimeDeviceLock",
        MAX_DEVICE_PASSWORD_FAILED_ATTEMPTS = 0x16 "MaxDevicePasswordFailedAttempts",
        MAX_ATTACHMENT_SIZE = 0x17 "MaxAttachmentSize",
        ALLOW_SIMPLE_DEVICE_PASSWORD = 0x18 "AllowSimpleDevicePassword",
        DEVICE_PASSWORD_EXPIRATION = 0x19 "DevicePasswordExpiration",
        DEVICE_PASSWORD_HISTORY = 0x1a "DevicePasswordHistory",
        ALLOW_STORAGE_CARD = 0x1b "AllowStorageCard",
        ALLOW_CAMERA = 0x1c "AllowCamera",
        REQUIRE_DEVICE_ENCRYPTION = 0x1d "RequireDeviceEncryption",
        ALLOW_UNSIGNED_APPLICATIONS = 0x1e "AllowUnsignedApplications",
        ALLOW_UNSIGNED_INSTALLATION_PACKAGES = 0x1f "AllowUnsignedInstallationPackages",
        MIN_DEVICE_PASSWORD_COMPLEX_CHARACTERS = 0x20 "MinDevicePasswordComplexCharacters",
        ALLOW_WI_FI = 0x21 "AllowWiFi",
        ALLOW_TEXT_MESSAGING = 0x22 "AllowTextMessaging",
        ALLOW_POPIMAP_EMAIL = 0x23 "AllowPOPIMAPEmail",
        ALLOW_BLUETOOTH = 0x24 "AllowBluetooth",
        ALLOW_IR_DA = 0x25 "AllowIrDA",
        REQUIRE_MANUAL_SYNC_WHEN_ROAMING = 0x26 "RequireManualSyncWhenRoaming",
        ALLOW_DESKTOP_SYNC = 0x27 "AllowDesktopSync",
        MAX_CALENDAR_AGE_FILTER = 0x28 "MaxCalendarAgeFilter",
        ALLOW_HTML_EMAIL = 0x29 "AllowHTMLEmail",
        MAX_EMAIL_AGE_FILTER = 0x2a "MaxEmailAgeFilter",
        MAX_EMAIL_BODY_TRUNCATION_SIZE = 0x2b "MaxEmailBodyTruncationSize",
        MAX_EMAIL_HTML_BODY_TRUNCATION_SIZE = 0x2c "MaxEmailHTMLBodyTruncationSize",
        REQUIRE_SIGNED_SMIME_MESSAGES = 0x2d "RequireSignedSMIMEMessages",
        REQUIRE_ENCRYPTED_SMIME_MESSAGES = 0x2e "RequireEncryptedSMIMEMessages",
        REQUIRE_SIGNED_SMIME_ALGORITHM = 0x2f "RequireSignedSMIMEAlgorithm",
        REQUIRE_ENCRYPTION_SMIME_ALGORITHM = 0x30 "RequireEncryptionSMIMEAlgorithm",
        ALLOW_SMIME_ENCRYPTION_ALGORITHM_NEGOTIATION = 0x31 "AllowSMIMEEncryptionAlgorithmNegotiation",
        ALLOW_SMIME_SOFT_CERTS = 0x32 "AllowSMIMESoftCerts",
        ALLOW_BROWSER = 0x33 "AllowBrowser",
        ALLOW_CONSUMER_EMAIL = 0x34 "AllowConsumerEmail",
        ALLOW_REMOTE_DESKTOP = 0x35 "AllowRemoteDesktop",
        ALLOW_INTERNET_SHARING = 0x36 "AllowInternetSharing",
        UNAPPROVED_IN_ROM_APPLICATION_LIST = 0x37 "UnapprovedInROMApplicationList",
        APPLICATION_NAME = 0x38 "ApplicationName",
        APPROVED_APPLICATION_LIST = 0x39 "ApprovedApplicationList",
        HASH = 0x3a "Hash",
    }
    airsyncbase = 0x11, "AirSyncBase" {
        BODY_PREFERENCE = 0x05 "BodyPreference",
        TYPE = 0x06 "Type",
        TRUNCATION_SIZE = 0x07 "TruncationSize",
        ALL_OR_NONE = 0x08 "AllOrNone",
        BODY = 0x0a "Body",
        DATA = 0x0b "Data",
        ESTIMATED_DATA_SIZE = 0x0c "EstimatedDataSize",
        TRUNCATED = 0x0d "Truncated",
        ATTACHMENTS = 0x0e "Attachments",
        ATTACHMENT = 0x0f "Attachment",
        DISPLAY_NAME = 0x10 "DisplayName",
        FILE_REFERENCE = 0x11 "FileReference",
        METHOD = 0x12 "Method",
        CONTENT_ID = 0x13 "ContentId",
        CONTENT_LOCATION = 0x14 "ContentLocation",
        IS_INLINE = 0x15 "IsInline",
        NATIVE_BODY_TYPE = 0x16 "NativeBodyType",
        CONTENT_TYPE = 0x17 "ContentType",
        PREVIEW = 0x18 "Preview",
        BODY_PART_PREFERENCE = 0x19 "BodyPartPreference",
        BODY_PART = 0x1a "BodyPart",
        STATUS = 0x1b "Status",
        ADD = 0x1c "Add",
        DELETE = 0x1d "Delete",
        CLIENT_ID = 0x1e "ClientId",
        CONTENT = 0x1f "Content",
        LOCATION = 0x20 "Location",
        ANNOTATION = 0x21 "Annotation",
        STREET = 0x22 "Street",
        CITY = 0x23 "City",
        STATE = 0x24 "State",
        COUNTRY = 0x25 "Country",
        POSTAL_CODE = 0x26 "PostalCode",
        LATITUDE = 0x27 "Latitude",
        LONGITUDE = 0x28 "Longitude",
        ACCURACY = 0x29 "Accuracy",
        ALTITUDE = 0x2a "Altitude",
        ALTITUDE_ACCURACY = 0x2b "AltitudeAccuracy",
        LOCATION_URI = 0x2c "LocationUri",
        INSTANCE_ID = 0x2d "InstanceId",
    }
    settings = 0x12, "Settings" {
        SETTINGS = 0x05 "Settings",
        STATUS = 0x06 "Status",
        GET = 0x07 "Get",
        SET = 0x08 "Set",
        OOF = 0x09 "Oof",
        OOF_STATE = 0x0a "OofState",
        START_TIME = 0x0b "StartTime",
        END_TIME = 0x0c "EndTime",
        OOF_MESSAGE = 0x0d "OofMessage",
        APPLIES_TO_INTERNAL = 0x0e "AppliesToInternal",
        APPLIES_TO_EXTERNAL_KNOWN = 0x0f "AppliesToExternalKnown",
        APPLIES_TO_EXTERNAL_UNKNOWN = 0x10 "AppliesToExternalUnknown",
        ENABLED = 0x11 "Enabled",
        REPLY_MESSAGE = 0x12 "ReplyMessage",
        BODY_TYPE = 0x13 "BodyType",
        DEVICE_PASSWORD = 0x14 "DevicePassword",
        PASSWORD = 0x15 "Password",
        DEVICE_INFORMATION = 0x16 "DeviceInformation",
        MODEL = 0x17 "Model",
        IMEI = 0x18 "IMEI",
        FRIENDLY_NAME = 0x19 "FriendlyName",
        OS = 0x1a "OS",
        OS_LANGUAGE = 0x1b "OSLanguage",
        PHONE_NUMBER = 0x1c "PhoneNumber",
        USER_INFORMATION = 0x1d "UserInformation",
        EMAIL_ADDRESSES = 0x1e "EmailAddresses",
        SMTP_ADDRESS = 0x1f "SmtpAddress",
        USER_AGENT = 0x20 "UserAgent",
        ENABLE_OUTBOUND_SMS = 0x21 "EnableOutboundSMS",
        MOBILE_OPERATOR = 0x22 "MobileOperator",
        PRIMARY_SMTP_ADDRESS = 0x23 "PrimarySmtpAddress",
        ACCOUNTS = 0x24 "Accounts",
        ACCOUNT = 0x25 "Account",
        ACCOUNT_ID = 0x26 "AccountId",
        ACCOUNT_NAME = 0x27 "AccountName",
        USER_DISPLAY_NAME = 0x28 "UserDisplayName",
        SEND_DISABLED = 0x29 "SendDisabled",
        IHS_MANAGEMENT_INFORMATION = 0x2b "ihsManagementInformation",
    }
    compose_mail = 0x15, "ComposeMail" {
        SEND_MAIL = 0x05 "SendMail",
        SMART_FORWARD = 0x06 "SmartForward",
        SMART_REPLY = 0x07 "SmartReply",
        SAVE_IN_SENT_ITEMS = 0x08 "SaveInSentItems",
        REPLACE_MIME = 0x09 "ReplaceMime",
        SOURCE = 0x0b "Source",
        FOLDER_ID = 0x0c "FolderId",
        ITEM_ID = 0x0d "ItemId",
        LONG_ID = 0x0e "LongId",
        INSTANCE_ID = 0x0f "InstanceId",
        MIME = 0x10 "MIME",
        CLIENT_ID = 0x11 "ClientId",
        STATUS = 0x12 "Status",
        ACCOUNT_ID = 0x13 "AccountId",
        FORWARDEES = 0x15 "Forwardees",
        FORWARDEE = 0x16 "Forwardee",
        FORWARDEE_NAME = 0x17 "ForwardeeName",
        FORWARDEE_EMAIL = 0x18 "ForwardeeEmail",
    }
    email2 = 0x16, "Email2" {
        UM_CALLER_ID = 0x05 "UmCallerID",
        UM_USER_NOTES = 0x06 "UmUserNotes",
        UM_ATT_DURATION = 0x07 "UmAttDuration",
        UM_ATT_ORDER = 0x08 "UmAttOrder",
        CONVERSATION_ID = 0x09 "ConversationId",
        CONVERSATION_INDEX = 0x0a "ConversationIndex",
        LAST_VERB_EXECUTED = 0x0b "LastVerbExecuted",
        LAST_VERB_EXECUTION_TIME = 0x0c "LastVerbExecutionTime",
        RECEIVED_AS_BCC = 0x0d "ReceivedAsBcc",
        SENDER = 0x0e "Sender",
        CALENDAR_TYPE = 0x0f "CalendarType",
        IS_LEAP_MONTH = 0x10 "IsLeapMonth",
        ACCOUNT_ID = 0x11 "AccountId",
        FIRST_DAY_OF_WEEK = 0x12 "FirstDayOfWeek",
        MEETING_MESSAGE_TYPE = 0x13 "MeetingMessageType",
        IS_DRAFT = 0x15 "IsDraft",
        BCC = 0x16 "Bcc",
        SEND = 0x17 "Send",
    }
}

/// Elements whose opaque content is binary (conversation ids, MIME blobs): the XML view
/// shows them in base64, as libwbxml does, and reads base64 back for them.
pub const BASE64_ELEMENTS: &[Tag] = &[
    email2::CONVERSATION_ID,
    email2::CONVERSATION_INDEX,
    compose_mail::MIME,
    airsyncbase::CONTENT,
];

const UNKNOWN_TOKEN_PREFIX: &str = "Unknown0x";
const UNKNOWN_PAGE_PREFIX: &str = "Page";

/// The code page with this number, if pingfleet knows it.
pub fn page(number: u8) -> Option<&'static CodePage> {
    CODE_PAGES.iter().find(|page| page.number == number)
}

/// The namespace name of a page (`Ping`), or the placeholder `Page27` for unknown pages.
pub fn namespace_name(number: u8) -> String {
    match page(number) {
        Some(page) => page.namespace.to_owned(),
        None => format!("{UNKNOWN_PAGE_PREFIX}{number}"),
    }
}

/// The element name of a tag (`HeartbeatInterval`), or the placeholder `Unknown0x3A`.
pub fn tag_name(tag: Tag) -> String {
    page(tag.page)
        .and_then(|page| page.tokens.iter().find(|(token, _)| *token == tag.token))
        .map(|(_, name)| (*name).to_owned())
        .unwrap_or_else(|| format!("{UNKNOWN_TOKEN_PREFIX}{:02X}", tag.token))
}

/// The page number for a namespace name (`Ping`, case-insensitive, or `Page27`).
pub fn page_by_namespace(namespace: &str) -> Option<u8> {
    if let Some(page) = CODE_PAGES
        .iter()
        .find(|page| page.namespace.eq_ignore_ascii_case(namespace))
    {
        return Some(page.number);
    }
    namespace.strip_prefix(UNKNOWN_PAGE_PREFIX)?.parse().ok()
}

/// The tag for an element name on a page, accepting the `Unknown0x3A` placeholder.
pub fn lookup(page_number: u8, name: &str) -> Option<Tag> {
    let known = page(page_number)
        .and_then(|page| page.tokens.iter().find(|(_, known)| *known == name))
        .map(|(token, _)| Tag::new(page_number, *token));
    known.or_else(|| {
        let token = u8::from_str_radix(name.strip_prefix(UNKNOWN_TOKEN_PREFIX)?, 16).ok()?;
        (0x05..=0x3F)
            .contains(&token)
            .then_some(Tag::new(page_number, token))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tokens_agree_both_ways() {
        for page in CODE_PAGES {
            for (token, name) in page.tokens {
                let tag = Tag::new(page.number, *token);
                assert_eq!(tag_name(tag), *name);
                assert_eq!(lookup(page.number, name), Some(tag), "{name}");
            }
            assert_eq!(page_by_namespace(page.namespace), Some(page.number));
        }
    }

    #[test]
    fn protocol_document_tokens() {
        assert_eq!(ping::HEARTBEAT_INTERVAL, Tag::new(0x0D, 0x08));
        assert_eq!(folder_hierarchy::FOLDER_SYNC, Tag::new(0x07, 0x16));
        assert_eq!(airsync::HEARTBEAT_INTERVAL, Tag::new(0x00, 0x29));
        assert_eq!(airsyncbase::ESTIMATED_DATA_SIZE, Tag::new(0x11, 0x0C));
        assert_eq!(settings::DEVICE_INFORMATION, Tag::new(0x12, 0x16));
        assert_eq!(provision::REMOTE_WIPE, Tag::new(0x0E, 0x0C));
        assert_eq!(email::THREAD_TOPIC, Tag::new(0x02, 0x35));
        assert_eq!(email2::CONVERSATION_ID, Tag::new(0x16, 0x09));
        assert_eq!(compose_mail::SMART_REPLY, Tag::new(0x15, 0x07));
        assert_eq!(contacts::WEIGHTED_RANK, Tag::new(0x01, 0x3E));
    }

    #[test]
    fn unknown_pages_and_tokens_get_placeholders_that_round_trip() {
        let tag = Tag::new(0x1A, 0x3A);
        assert_eq!(namespace_name(0x1A), "Page26");
        assert_eq!(tag_name(tag), "Unknown0x3A");
        assert_eq!(page_by_namespace("Page26"), Some(0x1A));
        assert_eq!(lookup(0x1A, "Unknown0x3A"), Some(tag));
        assert_eq!(lookup(0x0D, "Unknown0x04"), None);
        assert_eq!(lookup(0x0D, "NoSuchElement"), None);
    }
}
