//! The EAS protocol, pure and I/O-free: the WBXML codec and its code pages, the XML view
//! for people, the command bodies, and the MS-ASHTTP request line and headers. The
//! server and the device fleet share it; nothing here touches a socket.

pub mod codepages;
pub mod commands;
pub mod headers;
pub mod hex;
pub mod request;
pub(crate) mod version;
pub mod wbxml;
pub mod xml;

pub use commands::WbxmlBody;
pub use version::ProtocolVersion;
