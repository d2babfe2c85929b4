//! The `pingfleet` command line: subcommands and their flags, nothing else. Every
//! subcommand calls into the library.
//!
//! Exit codes: 0 success, 1 a threshold or regression check failed, 2 the tool could not
//! do its job (bad input, bad scenario, a server that did not start).

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pingfleet::compare::launch::CompareArgs;
use pingfleet::eas::xml::Layout;
use pingfleet::firewall::launch::FirewallArgs;
use pingfleet::fleet::launch::DevicesArgs;
use pingfleet::inspect::{self, BinaryForm};
use pingfleet::notification::NotifyArgs;
use pingfleet::orchestrator::merge::MergeArgs;
use pingfleet::orchestrator::orchestrate::RunArgs;
use pingfleet::server::launch::ServeArgs;

/// Benchmark and load tester for Exchange ActiveSync Direct Push (the Ping command).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: server partitions and device workers as child processes, every
    /// process sampled each second, results merged into results/<scenario>-<UTC>.json,
    /// thresholds judged (exit 0 pass, 1 a threshold failed, 2 the run could not be
    /// completed). Scenarios: default, smoke, storm, churn, engines, capacity-100k,
    /// firewall-sweep (a grid of heartbeats behind firewalls), your-server (a template
    /// for your own EAS server).
    ///
    /// Example: pingfleet run scenarios/smoke.toml --devices 500
    Run(RunArgs),
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
    /// Merge the fleet figures of several shards exactly (worker documents or run result
    /// files, e.g. from several machines): counters summed, histograms added.
    ///
    /// Example: pingfleet merge shard0.json shard1.json -o fleet.json
    Merge(MergeArgs),
    /// Compare runs with a baseline, figure by figure: memory per parked connection
    /// within a tolerance, lost notifications and errors not above it, latencies (each
    /// second of the hold one sample) by Mann-Whitney and a bootstrap interval with a
    /// minimum effect. Exit 0 no regression, 1 a regression, 2 could not compare.
    ///
    /// Example: pingfleet compare results/baselines/gate.json results/gate-2026-11-30T12-00-00Z.json --markdown
    ///
    /// A/B on one machine: pingfleet compare --ab ./pingfleet-main ./target/release/pingfleet scenarios/gate.toml --rounds 5
    Compare(CompareArgs),
    /// Send a change notification to a server by hand, as the mailbox back-end would.
    ///
    /// Example: pingfleet notify --to 127.0.0.1:2883 --user user0 --folder 5
    Notify(NotifyArgs),
    /// Convert EAS WBXML bodies to readable XML and back.
    #[command(subcommand)]
    Wbxml(WbxmlCommand),
}

#[derive(Debug, Subcommand)]
enum WbxmlCommand {
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
struct DecodeArgs {
    /// WBXML file to read; `-` or nothing reads standard input.
    input: Option<PathBuf>,
    /// The input is a hex dump (`03 01 6A 00 ...`, quoted "strings" allowed), not raw bytes.
    #[arg(long)]
    hex: bool,
    /// Print the XML on one line instead of indented.
    #[arg(long)]
    compact: bool,
}

#[derive(Debug, Args)]
struct EncodeArgs {
    /// XML file to read; `-` or nothing reads standard input.
    input: Option<PathBuf>,
    /// Write a hex dump instead of raw bytes.
    #[arg(long)]
    hex: bool,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Compare(args) = &cli.command {
        return ExitCode::from(pingfleet::compare::launch::compare(args));
    }
    if let Command::Run(args) = cli.command {
        return match pingfleet::orchestrator::orchestrate::run(args) {
            Ok(code) => ExitCode::from(code),
            Err(err) => {
                eprintln!("pingfleet: {err:#}");
                ExitCode::from(2)
            }
        };
    }
    let result = match cli.command {
        Command::Run(_) | Command::Compare(_) => unreachable!("handled above"),
        Command::Serve(args) => pingfleet::server::launch::serve(*args),
        Command::Devices(args) => pingfleet::fleet::launch::devices(*args),
        Command::Firewall(args) => pingfleet::firewall::launch::firewall(args),
        Command::Merge(args) => pingfleet::orchestrator::merge::merge_files(&args),
        Command::Notify(args) => {
            pingfleet::notification::send(&args).map(|text| println!("sent {text}"))
        }
        Command::Wbxml(WbxmlCommand::Decode(args)) => wbxml_decode(args),
        Command::Wbxml(WbxmlCommand::Encode(args)) => wbxml_encode(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pingfleet: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn read_input(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path {
        Some(path) if path.as_os_str() != "-" => {
            bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
        }
    }
    Ok(bytes)
}

fn binary_form(hex: bool) -> BinaryForm {
    if hex {
        BinaryForm::Hex
    } else {
        BinaryForm::Raw
    }
}

fn wbxml_decode(args: DecodeArgs) -> anyhow::Result<()> {
    let input = read_input(args.input.as_ref())?;
    let layout = if args.compact {
        Layout::Compact
    } else {
        Layout::Indented
    };
    let mut text = inspect::decode_to_xml(&input, binary_form(args.hex), layout)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn wbxml_encode(args: EncodeArgs) -> anyhow::Result<()> {
    let input = read_input(args.input.as_ref())?;
    let bytes = inspect::encode_from_xml(&input, binary_form(args.hex))?;
    match args.output {
        Some(path) => std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}
