//! The MS-ASHTTP request line: `POST /Microsoft-Server-ActiveSync?<query>`, with the
//! query in its plain form (`Cmd=Ping&User=..&DeviceId=..&DeviceType=..`) or its base64
//! form (12.1+: version, command code, locale, device id, policy key, device type and
//! parameters packed in bytes), parsed and built in both directions.

use base64::Engine as _;

use super::version::{ProtocolVersion, UnknownVersion};

/// The ActiveSync virtual directory every request goes to.
pub const ACTIVESYNC_PATH: &str = "/Microsoft-Server-ActiveSync";

/// An EAS command, with its name for the plain query and its code for the base64 query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    SendMail,
    SmartForward,
    SmartReply,
    GetAttachment,
    GetHierarchy,
    CreateCollection,
    DeleteCollection,
    MoveCollection,
    FolderSync,
    FolderCreate,
    FolderDelete,
    FolderUpdate,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Search,
    Settings,
    Ping,
    ItemOperations,
    Provision,
    ResolveRecipients,
    ValidateCert,
    /// A command name or code this table does not know (a server answers it with 501).
    Other(String),
}

/// Known commands with their plain names and base64 codes (MS-ASHTTP 2.2.1.1.1.1.2).
const COMMANDS: [(Command, &str); 23] = [
    (Command::Sync, "Sync"),
    (Command::SendMail, "SendMail"),
    (Command::SmartForward, "SmartForward"),
    (Command::SmartReply, "SmartReply"),
    (Command::GetAttachment, "GetAttachment"),
    (Command::GetHierarchy, "GetHierarchy"),
    (Command::CreateCollection, "CreateCollection"),
    (Command::DeleteCollection, "DeleteCollection"),
    (Command::MoveCollection, "MoveCollection"),
    (Command::FolderSync, "FolderSync"),
    (Command::FolderCreate, "FolderCreate"),
    (Command::FolderDelete, "FolderDelete"),
    (Command::FolderUpdate, "FolderUpdate"),
    (Command::MoveItems, "MoveItems"),
    (Command::GetItemEstimate, "GetItemEstimate"),
    (Command::MeetingResponse, "MeetingResponse"),
    (Command::Search, "Search"),
    (Command::Settings, "Settings"),
    (Command::Ping, "Ping"),
    (Command::ItemOperations, "ItemOperations"),
    (Command::Provision, "Provision"),
    (Command::ResolveRecipients, "ResolveRecipients"),
    (Command::ValidateCert, "ValidateCert"),
];

impl Command {
    /// The command for a plain-query name; unknown names become [`Command::Other`].
    pub fn from_name(name: &str) -> Self {
        COMMANDS
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(command, _)| command.clone())
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    /// The command for a base64-query code (its index in the MS table).
    pub fn from_code(code: u8) -> Self {
        COMMANDS
            .get(usize::from(code))
            .map(|(command, _)| command.clone())
            .unwrap_or_else(|| Self::Other(format!("code {code}")))
    }

    /// The plain-query name.
    pub fn name(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => COMMANDS
                .iter()
                .find(|(command, _)| command == known)
                .map_or("", |(_, name)| name),
        }
    }

    /// The base64-query code, `None` for [`Command::Other`].
    pub fn code(&self) -> Option<u8> {
        COMMANDS
            .iter()
            .position(|(command, _)| command == self)
            .map(|index| index as u8)
    }
}

/// The fields only the base64 form carries; with the plain form they travel as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base64Fields {
    pub version: ProtocolVersion,
    /// A Windows LCID, little-endian on the wire (0x0409 is en-US).
    pub locale: u16,
    pub policy_key: Option<u32>,
}

/// Which query form a request line uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryForm {
    Plain,
    Base64(Base64Fields),
}

/// The parsed query of an EAS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EasQuery {
    pub command: Command,
    pub user: Option<String>,
    pub device_id: String,
    pub device_type: String,
    /// Command parameters such as `ItemId`, `CollectionId`, `SaveInSent=T`, by name.
    pub params: Vec<(String, String)>,
    pub form: QueryForm,
}

/// Why a request target is not a valid EAS request line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("path {0:?} is not {1}")]
    NotActiveSync(String, String),
    #[error("the query lacks the required parameter {0}")]
    Missing(&'static str),
    #[error("the query is neither Cmd=... nor valid base64: {0}")]
    BadBase64(String),
    #[error("the base64 query ends inside {field} at byte {offset}")]
    Truncated { field: &'static str, offset: usize },
    #[error(transparent)]
    Version(#[from] UnknownVersion),
    #[error("protocol {0} must use the plain query; base64 needs 12.1 or later")]
    Base64NotAllowed(ProtocolVersion),
    #[error("base64 query parameter tag {tag} at byte {offset} is unknown")]
    UnknownParameterTag { tag: u8, offset: usize },
    #[error("{0} cannot be expressed in the base64 query")]
    NotExpressible(String),
    #[error("{field} is {len} bytes; the base64 query allows at most 255")]
    TooLong { field: String, len: usize },
}

/// Base64 command-parameter tags (MS-ASHTTP 2.2.1.1.1.1.3) and their plain names.
const PARAMETER_TAGS: [(u8, &str); 6] = [
    (0, "AttachmentName"),
    (1, "CollectionId"),
    (3, "ItemId"),
    (4, "LongId"),
    (6, "Occurrence"),
    (8, "User"),
];
const OPTIONS_TAG: u8 = 7;
const OPTION_FLAGS: [(u8, &str); 2] = [(0x01, "SaveInSent"), (0x02, "AcceptMultiPart")];

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl EasQuery {
    /// A plain-form query for a command.
    pub fn plain(
        command: Command,
        user: impl Into<String>,
        device_id: impl Into<String>,
        device_type: impl Into<String>,
    ) -> Self {
        Self {
            command,
            user: Some(user.into()),
            device_id: device_id.into(),
            device_type: device_type.into(),
            params: Vec::new(),
            form: QueryForm::Plain,
        }
    }

    /// Parses a request target: an absolute or relative URI whose path is the
    /// ActiveSync directory (compared without case), followed by the query.
    pub fn parse_target(target: &str) -> Result<Self, QueryError> {
        Self::parse_target_under(target, ACTIVESYNC_PATH)
    }

    /// Parses a request target whose path must be `directory` (compared without case,
    /// a trailing `/` allowed).
    pub fn parse_target_under(target: &str, directory: &str) -> Result<Self, QueryError> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = match path.find("://") {
            Some(scheme_end) => {
                let rest = &path[scheme_end + 3..];
                rest.find('/').map_or("/", |slash| &rest[slash..])
            }
            None => path,
        };
        if !path
            .trim_end_matches('/')
            .eq_ignore_ascii_case(directory.trim_end_matches('/'))
        {
            return Err(QueryError::NotActiveSync(
                path.to_owned(),
                directory.to_owned(),
            ));
        }
        Self::parse(query)
    }

    /// Parses a query string in either form. A plain query has several `key=value`
    /// pairs joined by `&` (or starts with `Cmd=`); base64 has no `&`.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let starts_with_cmd = query
            .get(..4)
            .is_some_and(|start| start.eq_ignore_ascii_case("Cmd="));
        if query.contains('&') || starts_with_cmd {
            Self::parse_plain(query)
        } else {
            Self::parse_base64(query)
        }
    }

    fn parse_plain(query: &str) -> Result<Self, QueryError> {
        let mut command = None;
        let mut user = None;
        let mut device_id = None;
        let mut device_type = None;
        let mut params = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            match key.to_ascii_lowercase().as_str() {
                "cmd" => command = Some(Command::from_name(&value)),
                "user" => user = Some(value),
                "deviceid" => device_id = Some(value),
                "devicetype" => device_type = Some(value),
                _ => params.push((key.into_owned(), value)),
            }
        }
        Ok(Self {
            command: command.ok_or(QueryError::Missing("Cmd"))?,
            user,
            device_id: device_id.ok_or(QueryError::Missing("DeviceId"))?,
            device_type: device_type.ok_or(QueryError::Missing("DeviceType"))?,
            params,
            form: QueryForm::Plain,
        })
    }

    fn parse_base64(query: &str) -> Result<Self, QueryError> {
        let text = percent_encoding::percent_decode_str(query.trim()).decode_utf8_lossy();
        if text.is_empty() {
            return Err(QueryError::Missing("Cmd"));
        }
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|err| QueryError::BadBase64(err.to_string()))?;
        let mut reader = ByteReader {
            bytes: &bytes,
            pos: 0,
        };
        let version = ProtocolVersion::from_code(reader.byte("protocol version")?)?;
        if !version.allows_base64_query() {
            return Err(QueryError::Base64NotAllowed(version));
        }
        let command = Command::from_code(reader.byte("command code")?);
        let locale = u16::from_le_bytes([reader.byte("locale")?, reader.byte("locale")?]);
        let device_id = reader.short_string("DeviceId")?;
        let policy_key = match reader.byte("PolicyKey length")? {
            0 => None,
            _ => {
                let key = reader.take(4, "PolicyKey")?;
                Some(u32::from_le_bytes([key[0], key[1], key[2], key[3]]))
            }
        };
        let device_type = reader.short_string("DeviceType")?;
        let mut user = None;
        let mut params = Vec::new();
        let mut options = 0u8;
        while reader.pos < bytes.len() {
            let at = reader.pos;
            let tag = reader.byte("parameter tag")?;
            let value = reader.short_bytes("parameter value")?;
            match tag {
                8 => user = Some(String::from_utf8_lossy(value).into_owned()),
                OPTIONS_TAG => options |= value.first().copied().unwrap_or(0),
                _ => {
                    let (_, name) = PARAMETER_TAGS
                        .iter()
                        .find(|(known, _)| *known == tag)
                        .ok_or(QueryError::UnknownParameterTag { tag, offset: at })?;
                    params.push(((*name).into(), String::from_utf8_lossy(value).into_owned()));
                }
            }
        }
        // The option bits read as parameters after the others, as they are written.
        params.extend(option_flags(options));
        Ok(Self {
            command,
            user,
            device_id,
            device_type,
            params,
            form: QueryForm::Base64(Base64Fields {
                version,
                locale,
                policy_key,
            }),
        })
    }

    /// The request target: `/Microsoft-Server-ActiveSync?` and the query.
    pub fn to_target(&self) -> Result<String, QueryError> {
        Ok(format!("{ACTIVESYNC_PATH}?{}", self.to_query()?))
    }

    /// The query string in this request's form.
    pub fn to_query(&self) -> Result<String, QueryError> {
        match &self.form {
            QueryForm::Plain => Ok(self.to_plain_query()),
            QueryForm::Base64(fields) => self.to_base64_query(fields),
        }
    }

    fn to_plain_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("Cmd", self.command.name());
        if let Some(user) = &self.user {
            query.append_pair("User", user);
        }
        query.append_pair("DeviceId", &self.device_id);
        query.append_pair("DeviceType", &self.device_type);
        for (key, value) in &self.params {
            query.append_pair(key, value);
        }
        query.finish()
    }

    fn to_base64_query(&self, fields: &Base64Fields) -> Result<String, QueryError> {
        if !fields.version.allows_base64_query() {
            return Err(QueryError::Base64NotAllowed(fields.version));
        }
        let code = self.command.code().ok_or_else(|| {
            QueryError::NotExpressible(format!("command {}", self.command.name()))
        })?;
        let mut bytes = vec![fields.version.code(), code];
        bytes.extend_from_slice(&fields.locale.to_le_bytes());
        push_short(&mut bytes, "DeviceId", self.device_id.as_bytes())?;
        match fields.policy_key {
            Some(key) => {
                bytes.push(4);
                bytes.extend_from_slice(&key.to_le_bytes());
            }
            None => bytes.push(0),
        }
        push_short(&mut bytes, "DeviceType", self.device_type.as_bytes())?;
        let mut options = 0u8;
        for (name, value) in &self.params {
            if let Some((flag, _)) = OPTION_FLAGS.iter().find(|(_, known)| known == name) {
                if value == "T" {
                    options |= flag;
                }
                continue;
            }
            let (tag, _) = PARAMETER_TAGS
                .iter()
                .find(|(_, known)| known == name)
                .ok_or_else(|| QueryError::NotExpressible(format!("parameter {name}")))?;
            bytes.push(*tag);
            push_short(&mut bytes, name, value.as_bytes())?;
        }
        if options != 0 {
            bytes.extend_from_slice(&[OPTIONS_TAG, 1, options]);
        }
        if let Some(user) = &self.user {
            bytes.push(8);
            push_short(&mut bytes, "User", user.as_bytes())?;
        }
        Ok(BASE64.encode(bytes))
    }
}

fn option_flags(bits: u8) -> impl Iterator<Item = (String, String)> {
    OPTION_FLAGS
        .iter()
        .filter(move |(flag, _)| bits & flag != 0)
        .map(|(_, name)| ((*name).to_owned(), "T".to_owned()))
}

fn push_short(bytes: &mut Vec<u8>, field: &str, value: &[u8]) -> Result<(), QueryError> {
    let len = u8::try_from(value.len()).map_err(|_| QueryError::TooLong {
        field: field.to_owned(),
        len: value.len(),
    })?;
    bytes.push(len);
    bytes.extend_from_slice(value);
    Ok(())
}

struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], QueryError> {
        let end = self.pos + len;
        let slice = self.bytes.get(self.pos..end).ok_or(QueryError::Truncated {
            field,
            offset: self.pos,
        })?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, QueryError> {
        Ok(self.take(1, field)?[0])
    }

    /// A length byte and that many bytes.
    fn short_bytes(&mut self, field: &'static str) -> Result<&'a [u8], QueryError> {
        let len = self.byte(field)?;
        self.take(usize::from(len), field)
    }

    fn short_string(&mut self, field: &'static str) -> Result<String, QueryError> {
        Ok(String::from_utf8_lossy(self.short_bytes(field)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_the_ms_codes() {
        assert_eq!(Command::Ping.code(), Some(18));
        assert_eq!(Command::Provision.code(), Some(20));
        assert_eq!(Command::FolderSync.code(), Some(9));
        assert_eq!(Command::from_code(17), Command::Settings);
        assert_eq!(Command::from_name("Bogus"), Command::Other("Bogus".into()));
        assert_eq!(Command::Other("Bogus".into()).code(), None);
    }

    #[test]
    fn plain_query_round_trips_with_escapes() {
        let mut query = EasQuery::plain(Command::SmartReply, "j doe+x@corp", "ABC123", "Android");
        query.params.push(("ItemId".into(), "5:1".into()));
        query.params.push(("SaveInSent".into(), "T".into()));
        let target = query.to_target().unwrap();
        assert!(
            target.starts_with("/Microsoft-Server-ActiveSync?Cmd=SmartReply&User=j+doe%2Bx%40corp")
        );
        assert_eq!(EasQuery::parse_target(&target), Ok(query));
    }

    #[test]
    fn plain_query_needs_its_required_parameters() {
        assert_eq!(
            EasQuery::parse("Cmd=Ping&DeviceType=SP"),
            Err(QueryError::Missing("DeviceId"))
        );
        assert_eq!(
            EasQuery::parse("Cmd=Ping&DeviceId=A"),
            Err(QueryError::Missing("DeviceType"))
        );
    }

    #[test]
    fn absolute_uris_and_wrong_paths() {
        let absolute = "https://mail.example.com/Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=A&DeviceType=SP";
        assert_eq!(
            EasQuery::parse_target(absolute).unwrap().command,
            Command::Ping
        );
        assert_eq!(
            EasQuery::parse_target("/owa?Cmd=Ping"),
            Err(QueryError::NotActiveSync(
                "/owa".into(),
                ACTIVESYNC_PATH.into()
            ))
        );
    }

    #[test]
    fn base64_errors_name_the_field() {
        let short = BASE64.encode([0x8D, 0x12, 0x09]);
        assert_eq!(
            EasQuery::parse(&short),
            Err(QueryError::Truncated {
                field: "locale",
                offset: 3
            })
        );
        let old = BASE64.encode([120, 0x12, 9, 4, 0, 0, 0]);
        assert_eq!(
            EasQuery::parse(&old),
            Err(QueryError::Base64NotAllowed(ProtocolVersion::V12_0))
        );
        assert!(matches!(
            EasQuery::parse("!!!"),
            Err(QueryError::BadBase64(_))
        ));
        let bad_tag = BASE64.encode([0x8D, 0x12, 9, 4, 1, b'A', 0, 2, b'S', b'P', 9, 1, b'x']);
        assert_eq!(
            EasQuery::parse(&bad_tag),
            Err(QueryError::UnknownParameterTag { tag: 9, offset: 10 })
        );
    }

    #[test]
    fn options_read_after_other_parameters_whatever_their_position() {
        // Found by fuzzing: Options before an ItemId, and Options twice.
        let bytes = [
            0x8D, 0x03, 9, 4, 1, b'A', 0, 1, b'S', 7, 1, 2, 3, 1, b'7', 7, 1, 2,
        ];
        let query = EasQuery::parse(&BASE64.encode(bytes)).unwrap();
        let expected = [("ItemId", "7"), ("AcceptMultiPart", "T")];
        let params: Vec<(&str, &str)> = query
            .params
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(params, expected);
        assert_eq!(EasQuery::parse(&query.to_query().unwrap()), Ok(query));
    }

    #[test]
    fn base64_options_and_percent_encoding() {
        let mut query = EasQuery::plain(Command::SmartForward, "jdoe", "dev1", "iPhone");
        query.params = vec![
            ("ItemId".into(), "5:1".into()),
            ("SaveInSent".into(), "T".into()),
        ];
        query.form = QueryForm::Base64(Base64Fields {
            version: ProtocolVersion::V14_0,
            locale: 0x0409,
            policy_key: None,
        });
        let encoded = query.to_query().unwrap();
        let percent =
            percent_encoding::utf8_percent_encode(&encoded, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(EasQuery::parse(&percent), Ok(query.clone()));
        query.params.push(("Bogus".into(), "1".into()));
        assert!(matches!(
            query.to_query(),
            Err(QueryError::NotExpressible(_))
        ));
    }
}
