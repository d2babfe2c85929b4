//! The `pingfleet wbxml` commands as a user runs them: the real binary, real files.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::{vector_path, vector_xml, VECTORS};

fn pingfleet(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pingfleet");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn decode_hex_prints_the_documented_xml_for_every_vector() {
    for name in VECTORS {
        let path = vector_path(name, "hex");
        let output = pingfleet(&["wbxml", "decode", "--hex", path.to_str().unwrap()], b"");
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            vector_xml(name),
            "{name}"
        );
    }
}

#[test]
fn encode_reverses_decode() {
    for name in VECTORS {
        let xml_path = vector_path(name, "xml");
        let output = pingfleet(
            &["wbxml", "encode", "--hex", xml_path.to_str().unwrap()],
            b"",
        );
        assert!(output.status.success(), "{name}: {output:?}");
        let expected = crate::util::vector_bytes(name);
        let got = pingfleet::eas::hex::parse(std::str::from_utf8(&output.stdout).unwrap());
        assert_eq!(got.unwrap(), expected, "{name}");
    }
}

#[test]
fn raw_bytes_from_stdin_and_to_a_file() {
    let bytes = crate::util::vector_bytes("ping-request");
    let output = pingfleet(&["wbxml", "decode", "-"], &bytes);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        vector_xml("ping-request")
    );
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("ping.wbxml");
    let output = pingfleet(
        &["wbxml", "encode", "-o", out_path.to_str().unwrap()],
        vector_xml("ping-request").as_bytes(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(out_path).unwrap(), bytes);
}

#[test]
fn garbage_exits_2_with_a_message_never_a_panic() {
    let cases: &[(&[&str], &[u8], &str)] = &[
        (
            &["wbxml", "decode"],
            b"\x03\x01\x6a\x00\x45\x03abc",
            "byte 6: input ends too early",
        ),
        (&["wbxml", "decode"], b"GET / HTTP/1.1\r\n", "WBXML version"),
        (
            &["wbxml", "decode", "--hex"],
            b"03 01 6A zz",
            "line 1, column 10",
        ),
        (&["wbxml", "decode"], b"", "empty"),
        (
            &["wbxml", "encode"],
            b"<Ping xmlns=\"Ping:\"><Bogus/></Ping>",
            "Bogus",
        ),
        (
            &["wbxml", "decode", "/no/such/file"],
            b"",
            "cannot read /no/such/file",
        ),
        (
            &[
                "devices",
                "--target",
                "http://127.0.0.1:9",
                "--churn-per-minute",
                "200%",
            ],
            b"",
            "--churn-per-minute: stages.churn_per_minute is a share of the devices, 0% to 100% (got 200%)",
        ),
        (
            &[
                "devices",
                "--target",
                "http://127.0.0.1:9",
                "--churn-per-minute",
                "0.5",
            ],
            b"",
            "tip: write --churn-per-minute 50%",
        ),
        (
            &[
                "devices",
                "--target",
                "http://127.0.0.1:9",
                "--profiles",
                "/no/such/mix.toml",
            ],
            b"",
            "cannot read /no/such/mix.toml",
        ),
    ];
    for (args, stdin, needle) in cases {
        let output = pingfleet(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line on stderr, not {stderr:?}"
        );
    }
}

#[test]
fn help_teaches_with_an_example() {
    let output = pingfleet(&["wbxml", "decode", "--help"], b"");
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("--hex") && help.contains("Example:"),
        "{help}"
    );
}

/// Every `pingfleet ...` example a subcommand's `--help` gives parses as the binary
/// parses it, and a gate result it names is where the gate scenario writes its results.
#[test]
fn every_example_in_the_help_parses_and_names_real_places() {
    use clap::{CommandFactory as _, Parser as _};
    let gate = pingfleet::scenario::catalog::shipped("gate").unwrap();
    let gate_dir = pingfleet::scenario::Scenario::parse(gate.text, "gate")
        .unwrap()
        .output;
    let mut examples = 0;
    for sub in pingfleet::cli::Cli::command().get_subcommands() {
        let name = sub.get_name().to_owned();
        let output = pingfleet(&[&name, "--help"], b"");
        let help = String::from_utf8(output.stdout).unwrap().replace('\n', " ");
        for example in help.split("pingfleet ").skip(1) {
            // An example ends at a blank line, a `;` between two, or the usage.
            let example = example.split("  ").next().unwrap_or("");
            let example = example.split(" ; ").next().unwrap_or("");
            let line: Vec<&str> = example.split_whitespace().collect();
            if line.first() != Some(&name.as_str()) || example.contains(['<', '[']) {
                continue;
            }
            let mut argv = vec!["pingfleet"];
            argv.extend(line.iter().copied());
            if let Err(err) = pingfleet::cli::Cli::try_parse_from(&argv) {
                panic!(
                    "`{}` in `{name} --help` does not parse: {err}",
                    argv.join(" ")
                );
            }
            for word in line.iter().filter(|word| word.contains("results/gate")) {
                assert!(
                    *word == gate_dir
                        || word.starts_with(&format!("{gate_dir}/gate-"))
                        || word.contains("baselines"),
                    "`{name} --help` names {word}; the gate writes {gate_dir}/gate-<UTC>.json"
                );
            }
            examples += 1;
        }
    }
    assert!(examples >= 5, "only {examples} examples in the help");
}
