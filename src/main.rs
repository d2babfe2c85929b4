//! The `pingfleet` binary: parses the command line (`pingfleet::cli`) and calls into
//! the library; exit codes as `pingfleet --help` gives them.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use pingfleet::cli::{DecodeArgs, EncodeArgs, Subcommand, WbxmlCommand};
use pingfleet::eas::xml::Layout;
use pingfleet::inspect::{self, BinaryForm};

fn main() -> ExitCode {
    let cli = match pingfleet::cli::parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version are printed to stdout and exit 0; a refused command line
            // is said in one line on stderr.
            match err.use_stderr() {
                true => eprintln!("pingfleet: {}", pingfleet::cli::one_line(&err)),
                false => {
                    let _ = err.print();
                }
            }
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    if let Subcommand::Compare(args) = &cli.command {
        return ExitCode::from(pingfleet::compare::launch::compare(args));
    }
    let judged = match cli.command {
        Subcommand::Run(args) => pingfleet::orchestrator::orchestrate::run(args),
        Subcommand::Devices(args) => pingfleet::orchestrator::standalone::devices(*args),
        command => return run_other(command),
    };
    match judged {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("pingfleet: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The commands that either do what they were asked (exit 0) or cannot (exit 2).
fn run_other(command: Subcommand) -> ExitCode {
    let result = match command {
        Subcommand::Run(_) | Subcommand::Compare(_) | Subcommand::Devices(_) => {
            unreachable!("handled above")
        }
        Subcommand::Scenarios => {
            print!("{}", pingfleet::orchestrator::preview::list_shipped());
            Ok(())
        }
        Subcommand::Serve(args) => pingfleet::server::launch::serve(*args),
        Subcommand::Firewall(args) => pingfleet::firewall::launch::firewall(args),
        Subcommand::Link(args) => pingfleet::link::launch::link(args),
        Subcommand::Merge(args) => pingfleet::orchestrator::merge::merge_files(&args),
        Subcommand::Report(args) => pingfleet::html_report::report(&args),
        Subcommand::Notify(args) => {
            pingfleet::notification::send(&args).map(|text| println!("sent {text}"))
        }
        Subcommand::Wbxml(WbxmlCommand::Decode(args)) => wbxml_decode(args),
        Subcommand::Wbxml(WbxmlCommand::Encode(args)) => wbxml_encode(args),
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
