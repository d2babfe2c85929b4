//! The shipped scenarios, built into the binary: `pingfleet run smoke` works from any
//! directory, `pingfleet scenarios` lists them with the question each answers, and a
//! name or path that is not found is answered with the names there are. A path that
//! exists always wins over a shipped name.

use std::path::Path;

use anyhow::Context as _;

/// A scenario that ships with pingfleet.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    pub name: &'static str,
    /// Who runs it and what it answers, in one line.
    pub question: &'static str,
    /// The file's text (also `scenarios/<name>.toml` in the repository).
    pub text: &'static str,
}

/// Every shipped scenario, the first to try first.
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "smoke",
        question: "first run: does everything work here? 200 plain devices, a few seconds",
        text: include_str!("../../scenarios/smoke.toml"),
    },
    Shipped {
        name: "default",
        question: "a realistic mix: 20,000 TLS devices of three kinds, wake-up latency and memory",
        text: include_str!("../../scenarios/default.toml"),
    },
    Shipped {
        name: "capacity-100k",
        question: "capacity: do 100,000 TLS devices hold on one front-end, in how much memory?",
        text: include_str!("../../scenarios/capacity-100k.toml"),
    },
    Shipped {
        name: "capacity-search",
        question: "capacity: how many TLS devices hold within a 2 ms wake-up p99, and what each costs in memory",
        text: include_str!("../../scenarios/capacity-search.toml"),
    },
    Shipped {
        name: "capacity-1m-tls",
        question: "concurrency: one million TLS devices parked on one 2-core machine, and what each costs",
        text: include_str!("../../scenarios/capacity-1m-tls.toml"),
    },
    Shipped {
        name: "mobile",
        question: "phones on LTE, Wi-Fi and 3G: wake-up, mail on device and TCP over emulated links (root)",
        text: include_str!("../../scenarios/mobile.toml"),
    },
    Shipped {
        name: "engines",
        question: "capacity: the lean engine against stock hyper, memory and latency side by side",
        text: include_str!("../../scenarios/engines.toml"),
    },
    Shipped {
        name: "storm",
        question: "latency under a burst: half of 5,000 devices notified within 200 ms",
        text: include_str!("../../scenarios/storm.toml"),
    },
    Shipped {
        name: "churn",
        question: "cost of reconnects: 30% of 5,000 TLS devices cut off each minute",
        text: include_str!("../../scenarios/churn.toml"),
    },
    Shipped {
        name: "gate",
        question: "CI: the regression gate's run, compared with a baseline by `pingfleet compare`",
        text: include_str!("../../scenarios/gate.toml"),
    },
    Shipped {
        name: "firewall-sweep",
        question: "network: which heartbeat survives which firewall idle timeout (a grid)",
        text: include_str!("../../scenarios/firewall-sweep.toml"),
    },
    Shipped {
        name: "firewall-sweep-lte",
        question: "which heartbeat survives which idle timeout for phones on emulated LTE, behind the kernel's firewall (root)",
        text: include_str!("../../scenarios/firewall-sweep-lte.toml"),
    },
    Shipped {
        name: "nat-flush",
        question: "network: a NAT forgets every flow at once; how fast does the fleet re-park?",
        text: include_str!("../../scenarios/nat-flush.toml"),
    },
    Shipped {
        name: "nat-flush-netns",
        question: "network: the same flush behind the kernel's own firewall (root)",
        text: include_str!("../../scenarios/nat-flush-netns.toml"),
    },
    Shipped {
        name: "nat-flush-lte",
        question: "the NAT-flush storm over emulated LTE: 20,000 TLS phones re-park over 70 ms round trips (root)",
        text: include_str!("../../scenarios/nat-flush-lte.toml"),
    },
    Shipped {
        name: "proxy",
        question: "network: what nginx and HAProxy before the server cut and cost: 20,000 TLS phones, their defaults and timeouts above the heartbeat",
        text: include_str!("../../scenarios/proxy.toml"),
    },
    Shipped {
        name: "proxy-reload",
        question: "network: a reverse proxy reloaded with 20,000 phones parked: how long old workers stay, and their memory",
        text: include_str!("../../scenarios/proxy-reload.toml"),
    },
    Shipped {
        name: "push-vs-poll",
        question: "the case for push: Direct Push against syncs every 5/15/30 min and SMS, in delay, requests and battery",
        text: include_str!("../../scenarios/push-vs-poll.toml"),
    },
    Shipped {
        name: "push-vs-poll-mobile",
        question: "push-vs-poll over emulated LTE (or --network 3g, gprs): does the case for push hold on a radio network? (root)",
        text: include_str!("../../scenarios/push-vs-poll-mobile.toml"),
    },
    Shipped {
        name: "your-server",
        question: "your server: a template to aim the fleet at your own EAS server (edit it)",
        text: include_str!("../../scenarios/your-server.toml"),
    },
];

/// The shipped scenario called `name`.
pub fn shipped(name: &str) -> Option<&'static Shipped> {
    SHIPPED.iter().find(|shipped| shipped.name == name)
}

/// The names of the shipped scenarios, comma-separated.
pub fn names() -> String {
    SHIPPED
        .iter()
        .map(|shipped| shipped.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shipped name nearest `given`, when it is a slip away: at most two letters
/// added, dropped or changed, or the start of one name alone.
fn closest(given: &str) -> Option<&'static str> {
    let starting: Vec<&str> = SHIPPED
        .iter()
        .map(|shipped| shipped.name)
        .filter(|name| !given.is_empty() && name.starts_with(given))
        .collect();
    if let [only] = starting.as_slice() {
        return Some(only);
    }
    SHIPPED
        .iter()
        .map(|shipped| (strsim::levenshtein(given, shipped.name), shipped.name))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, name)| name)
}

/// A scenario's text and how to name it in messages: the file at `given` if there
/// is one, else the shipped scenario of that name (`smoke`, or `smoke.toml`), else an
/// error listing the names. Nothing given is the default scenario.
pub fn load(given: Option<&Path>) -> anyhow::Result<(String, String)> {
    let Some(path) = given else {
        let default = shipped("default").expect("the default scenario ships");
        return Ok((default.text.to_owned(), "default (built in)".to_owned()));
    };
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok((text, path.display().to_string()));
    }
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".toml").unwrap_or(&name);
    let name = name.strip_prefix("scenarios/").unwrap_or(name);
    match shipped(name) {
        Some(shipped) => Ok((
            shipped.text.to_owned(),
            format!("{} (built in)", shipped.name),
        )),
        None => anyhow::bail!(
            "no scenario file {} and no shipped scenario of that name{}; shipped: {} \
             (`pingfleet scenarios` says what each answers)",
            path.display(),
            closest(name).map_or(String::new(), |near| format!(
                ": did you mean {near}? (pingfleet run {near})"
            )),
            names()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_scenarios_ships_and_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".toml").map(str::to_owned))
            .collect();
        files.sort();
        let mut names: Vec<String> = SHIPPED.iter().map(|s| s.name.to_owned()).collect();
        names.sort();
        assert_eq!(files, names, "scenarios/ and the built-in list differ");
        for shipped in SHIPPED {
            let scenario = super::super::Scenario::parse(shipped.text, shipped.name)
                .unwrap_or_else(|err| panic!("{}: {err}", shipped.name));
            assert_eq!(scenario.name, shipped.name, "the file's own name");
        }
    }

    #[test]
    fn names_paths_and_misses() {
        let (text, file) = load(Some(Path::new("smoke"))).unwrap();
        assert_eq!(text, shipped("smoke").unwrap().text);
        assert_eq!(file, "smoke (built in)");
        assert!(load(Some(Path::new("scenarios/gate.toml"))).is_ok());
        let (_, file) = load(None).unwrap();
        assert_eq!(file, "default (built in)");
        let miss = load(Some(Path::new("smok"))).unwrap_err().to_string();
        assert!(
            miss.contains("no scenario file smok") && miss.contains("smoke, default"),
            "{miss}"
        );
        assert!(
            miss.contains("did you mean smoke? (pingfleet run smoke)"),
            "{miss}"
        );
        assert_eq!(closest("stomr"), Some("storm"));
        assert_eq!(closest("capacity-s"), Some("capacity-search"));
        assert_eq!(closest("capacity"), None, "several start so");
        assert_eq!(closest("nothing-like-it"), None);
        // A directory is no scenario file (a `smoke/` where one runs does not hide
        // the shipped smoke).
        let directory = load(Some(Path::new("scenarios"))).unwrap_err().to_string();
        assert!(
            directory.starts_with("no scenario file scenarios"),
            "{directory}"
        );
        // A file that exists wins over a shipped name.
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("smoke");
        std::fs::write(&own, "name = \"mine\"\n[devices]\ncount = 1\n").unwrap();
        let (text, _) = load(Some(&own)).unwrap();
        assert!(text.contains("mine"));
    }
}
