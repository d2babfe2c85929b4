//! The integration tests, in one binary to keep link time low on two cores.

mod adversarial;
mod attack;
mod capture;
mod chaos;
mod ci_example;
mod cli;
mod compare;
mod eas_client;
mod external_target;
mod fake_eas;
mod firewall;
mod fleet;
mod foreign;
mod interop;
mod intervals;
mod mail_injection;
mod netns;
mod properties;
mod readme;
mod run;
mod server;
mod server_in_process;
mod shards;
mod sogo;
mod util;
mod vectors;
