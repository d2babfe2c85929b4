//! The `pingfleet` command line: every subcommand and its flags, in one place the
//! binary parses and the tests inspect (every flag has a help line, every command the
//! README shows parses).
//!
//! Exit codes: 0 success, 1 a threshold or regression check failed, 2 the tool could not
//! do its job (bad input, a run that could not complete or was stopped), 3 latencies
//! set aside (a run's self-check failed, or the machine was busy with work not ours).

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::compare::launch::CompareArgs;
use crate::firewall::launch::FirewallArgs;
use crate::fleet::args::DevicesArgs;
use crate::notification::NotifyArgs;
use crate::orchestrator::merge::MergeArgs;
use crate::orchestrator::orchestrate::RunArgs;
use crate::server::launch::ServeArgs;

/// What every subcommand's exit status means.
pub const EXIT_CODES: &str = "Exit codes: 0 done (every threshold passed, no regression); \
1 a threshold failed or compare found a regression; 2 could not do what was asked \
(bad input, a refused plan, a child that died, a run stopped by Ctrl-C or SIGTERM), \
said in one line on stderr; 3 inconclusive: compare set the latencies aside because \
a run's self-check failed, or run's only failing thresholds were latencies measured \
while the machine was busy with work not ours (run it again on a quiet machine).

First steps: pingfleet scenarios ; pingfleet run smoke --plan ; pingfleet run smoke";

/// Benchmark and load tester for Exchange ActiveSync Direct Push (the Ping command).
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_CODES,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Subcommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Run a scenario: server partitions and device workers as child processes, every
    /// process sampled each second, results merged into results/<scenario>-<UTC>.json,
    /// thresholds judged (exit 0 pass, 1 a threshold failed, 2 the run could not be
    /// completed or was stopped, 3 only latencies failed while other work kept the
    /// machine busy: inconclusive). A scenario is a shipped name (`pingfleet scenarios`
    /// lists them) or a file.
    ///
    /// Examples: pingfleet run smoke ; pingfleet run smoke --devices 500 --duration 10s ;
    /// pingfleet run capacity-100k --plan
    Run(RunArgs),
    /// List the shipped scenarios: the question each answers and how long it takes here.
    ///
    /// Example: pingfleet scenarios
    Scenarios,
    /// Run the bundled reference EAS server (one partition).
    ///
    /// It parks Ping requests until a change notification arrives over UDP or the
    /// heartbeat ends, and prints one JSON line with its addresses once ready.
    ///
    /// Example: pingfleet serve --tls --users 100 --metrics 127.0.0.1:9090
    Serve(Box<ServeArgs>),
    /// Run one device worker: simulated phones speaking EAS to any server, and the
    /// notification injector that measures their wake-up latency.
    ///
    /// Example: pingfleet devices --target http://127.0.0.1:8080 --notify 127.0.0.1:2883 --devices 1000 --heartbeat 60 --duration 30s --rate 100
    Devices(Box<DevicesArgs>),
    /// Run a userspace firewall/NAT between devices and server: each flow idle longer
    /// than --idle-timeout is reset (rst), black-holed (silent) or cut one way (half).
    ///
    /// Example: pingfleet firewall --listen 127.0.0.1:9443 --upstream 127.0.0.1:8443 --idle-timeout 10m --action silent
    Firewall(FirewallArgs),
    /// Emulate each phone's network on a TUN device (root): every TCP packet between a
    /// subnet of devices and the server takes its profile's delay, jitter, loss,
    /// bandwidth and outages. `pingfleet run` starts it for a scenario's networks.
    ///
    /// Example: ip netns exec NS pingfleet link --tun pflink0 --route 198.18.16.0/24=lte
    Link(crate::link::launch::LinkArgs),
    /// Merge the fleet figures of several shards exactly (worker documents or run result
    /// files, e.g. from several machines): counters summed, histograms added.
    ///
    /// Example: pingfleet merge shard0.json shard1.json -o fleet.json
    Merge(MergeArgs),
    /// Compare runs with a baseline, figure by figure: memory per parked connection
    /// within a tolerance, lost notifications and errors not above it, latencies (each
    /// second of the hold one sample) by Mann-Whitney and a bootstrap interval with a
    /// minimum effect. Exit 0 no regression, 1 a regression, 2 could not compare, 3
    /// latencies not judged (a run's self-check failed: run it again).
    ///
    /// Example: pingfleet compare results/baselines/gate results/gate --markdown
    ///
    /// A/B on one machine: pingfleet compare --ab ./pingfleet-main ./target/release/pingfleet scenarios/gate.toml --rounds 5
    Compare(CompareArgs),
    /// Write one self-contained HTML page (plots, no network, no script) of run results
    /// (several overlay), a sweep, or a comparison with a baseline; prints its path.
    ///
    /// Examples: pingfleet report results/smoke-*.json -o smoke.html ;
    /// pingfleet report --baseline results/baselines/gate results/gate/gate-2026-12-03T10-00-00Z.json -o gate.html
    Report(crate::html_report::ReportArgs),
    /// Send a change notification to a server by hand, as the mailbox back-end would.
    ///
    /// Example: pingfleet notify --to 127.0.0.1:2883 --user user0 --folder 5
    Notify(NotifyArgs),
    /// Convert EAS WBXML bodies to readable XML and back.
    #[command(subcommand)]
    Wbxml(WbxmlCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum WbxmlCommand {
    /// Print an EAS WBXML body (a captured request or response) as XML.
    ///
    /// Each code page becomes an XML namespace (`<Ping xmlns="Ping:">`), as libwbxml's
    /// `wbxml2xml -l ACTIVESYNC` prints it. Binary opaque data is shown in base64.
    ///
    /// Example: echo '03 01 6A 00 00 0D 45 47 03 31 00 01 01' | pingfleet wbxml decode --hex
    Decode(DecodeArgs),
    /// Encode XML (as `decode` prints it) back into EAS WBXML.
    ///
    /// Example: pingfleet wbxml encode ping.xml --hex
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// WBXML file to read; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// The input is a hex dump (`03 01 6A 00 ...`, quoted "strings" allowed), not raw bytes.
    #[arg(long)]
    pub hex: bool,
    /// Print the XML on one line instead of indented.
    #[arg(long)]
    pub compact: bool,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// XML file to read; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// Write a hex dump instead of raw bytes.
    #[arg(long)]
    pub hex: bool,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Parses the command line; a value our own parsers refused gets a `tip:` line naming
/// its flag with a value that works (`--memory-tolerance 5%`).
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse().map_err(with_tip)
}

/// [`parse`] of the given words, as tests give them.
pub fn parse_from<I, T>(words: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(words).map_err(with_tip)
}

/// `err` with a `tip:` line when its value has a suggestion.
pub fn with_tip(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let flag = arg.split(['=', ' ']).next().unwrap_or(arg).to_owned();
    let source = std::error::Error::source(&err);
    let suggestion = source
        .and_then(|source| source.downcast_ref::<crate::units::ShareError>())
        .and_then(|share| share.suggestion().map(str::to_owned))
        .or_else(|| {
            source
                .and_then(|source| source.downcast_ref::<crate::argv::CountError>())
                .map(crate::argv::CountError::suggestion)
        });
    if let Some(suggestion) = suggestion {
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![format!("write {flag} {suggestion}").into()]),
        );
    }
    err
}

/// A refused command line in one line, for stderr: clap's error, its tip and its usage
/// joined (`invalid value '-5' for '--devices <N>': ...; tip: write --devices 5; Usage:
/// pingfleet run [OPTIONS] [SCENARIO]`), without the pointer to `--help` it ends with.
pub fn one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect();
    let joined = parts.join("; ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn a_refused_command_line_is_said_in_one_line_with_its_tip() {
        let err = parse_from(["pingfleet", "run", "smoke", "--devices", "-5"]).unwrap_err();
        let line = one_line(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("invalid value '-5' for '--devices"),
            "{line}"
        );
        assert!(line.contains("tip: write --devices 5"), "{line}");
        assert!(!line.contains("For more information"), "{line}");
        let err = parse_from(["pingfleet", "run", "--colour"]).unwrap_err();
        assert!(one_line(&err).contains("--colour"), "{}", one_line(&err));
    }

    /// Every subcommand, depth first, with its path (`wbxml decode`).
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(prefix: &str, command: &clap::Command, into: &mut Vec<(String, clap::Command)>) {
            for sub in command.get_subcommands() {
                let path = format!("{prefix} {}", sub.get_name()).trim().to_owned();
                into.push((path.clone(), sub.clone()));
                walk(&path, sub, into);
            }
        }
        let mut all = Vec::new();
        walk("", &Cli::command(), &mut all);
        all
    }

    #[test]
    fn a_refused_value_gets_a_tip_with_its_flag_and_a_value_that_works() {
        let words = [
            "pingfleet",
            "compare",
            "a.json",
            "b.json",
            "--memory-tolerance",
            "5",
        ];
        let err = Cli::try_parse_from(words).map_err(with_tip).unwrap_err();
        let text = err.render().to_string();
        assert!(text.contains("tip: write --memory-tolerance 5%"), "{text}");
        let err = Cli::try_parse_from(["pingfleet", "run", "smoke", "--devices", "-5"])
            .map_err(with_tip)
            .unwrap_err();
        let text = err.render().to_string();
        assert!(text.contains("tip: write --devices 5"), "{text}");
        assert!(!text.contains("invalid digit"), "{text}");
    }

    #[test]
    fn every_flag_has_a_help_line() {
        let mut missing = Vec::new();
        for (path, command) in commands() {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    #[test]
    fn every_example_in_the_help_parses() {
        let mut examples = Vec::new();
        for (path, command) in commands() {
            let text = [command.get_about(), command.get_long_about()]
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            for line in text.split(['\n', ';']) {
                let Some(at) = line.find("pingfleet ") else {
                    continue;
                };
                let example = line[at..].trim().trim_end_matches('.');
                if example.starts_with("pingfleet scenarios`") || example.contains('`') {
                    continue;
                }
                examples.push((path.clone(), example.to_owned()));
            }
        }
        assert!(examples.len() >= 10, "{examples:?}");
        for (path, example) in examples {
            let words = shlex::split(&example).unwrap_or_else(|| panic!("{path}: {example}"));
            if let Err(err) = Cli::try_parse_from(&words) {
                panic!("{path}: the example `{example}` does not parse: {err}");
            }
        }
    }
}
