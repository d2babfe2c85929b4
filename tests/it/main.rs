//! The integration tests, in one binary to keep link time low on two cores.

mod cli;
mod interop;
mod properties;
mod util;
mod vectors;
