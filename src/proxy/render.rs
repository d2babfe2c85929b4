//! The configuration file written for the proxy, every value taken from
//! [`ProxyConfig::directives`] (so the file and the result cannot disagree), or a user's
//! own file with the addresses and paths filled in. Everything the proxy writes (pid
//! file, error log, temporary files) stays in its own directory; nothing goes to syslog
//! or `/run`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::config::{Directive, DirectiveSource, ProxyConfig, ProxyKind, ProxyTls};
use super::process::ProxyError;

/// nginx's `stream` module as Debian ships it (package libnginx-mod-stream).
const NGINX_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// File descriptors an nginx worker keeps beyond its connections (logs, listeners).
const NGINX_SPARE_FILES: u64 = 64;

/// What the configuration is written for.
#[derive(Debug, Clone, Copy)]
pub struct RenderInputs<'a> {
    /// Where devices connect.
    pub listen: SocketAddr,
    /// The server partition (plain HTTP when TLS is terminated, TLS when passed through).
    pub upstream: SocketAddr,
    /// The proxy's own directory (created by the caller): its configuration, pid file,
    /// error log and temporary files.
    pub dir: &'a Path,
    /// PEM certificate (TLS terminated only).
    pub cert: Option<&'a Path>,
    /// PEM private key (TLS terminated only).
    pub key: Option<&'a Path>,
    /// Devices behind this proxy (sizes the connection limits).
    pub devices: usize,
}

/// The files of a proxy, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub config: PathBuf,
    pub pid_file: PathBuf,
    pub error_log: PathBuf,
}

/// Writes the proxy's configuration into `inputs.dir` (or fills in the user's own).
pub fn write_config(config: &ProxyConfig, inputs: &RenderInputs) -> Result<Rendered, ProxyError> {
    let kind = config.kind();
    let dir = inputs.dir;
    let rendered = Rendered {
        config: dir.join(match kind {
            ProxyKind::Nginx => "nginx.conf",
            ProxyKind::Haproxy => "haproxy.cfg",
        }),
        pid_file: dir.join("proxy.pid"),
        error_log: dir.join("error.log"),
    };
    let pem = match kind {
        ProxyKind::Haproxy => write_pem(inputs)?,
        ProxyKind::Nginx => None,
    };
    let text = match &config.config {
        Some(template) => fill_template(kind, template, inputs, &rendered, pem.as_deref())?,
        None => {
            let directives = config.directives(inputs.devices);
            let set = Set(&directives);
            match kind {
                ProxyKind::Nginx => nginx(&set, config.tls, inputs, &rendered)?,
                ProxyKind::Haproxy => haproxy(&set, config.tls, inputs, pem.as_deref()),
            }
        }
    };
    write(&rendered.config, &text)?;
    Ok(rendered)
}

/// The directives with a value.
struct Set<'a>(&'a [Directive]);

impl Set<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|directive| directive.name == name && directive.source != DirectiveSource::Unset)
            .map(|directive| directive.value.as_str())
    }

    /// `name value;` lines (nginx) or `name value` lines (HAProxy) for those set.
    fn lines(&self, out: &mut String, indent: &str, names: &[&str], end: &str) {
        for name in names {
            if let Some(value) = self.get(name) {
                let _ = writeln!(out, "{indent}{name} {value}{end}");
            }
        }
    }
}

/// HAProxy reads the certificate and its key from one file: `<dir>/proxy.pem`.
fn write_pem(inputs: &RenderInputs) -> Result<Option<PathBuf>, ProxyError> {
    let (Some(cert), Some(key)) = (inputs.cert, inputs.key) else {
        return Ok(None);
    };
    let mut pem = read(cert)?;
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem.push_str(&read(key)?);
    let path = inputs.dir.join("proxy.pem");
    write(&path, &pem)?;
    Ok(Some(path))
}

fn nginx(
    set: &Set,
    tls: ProxyTls,
    inputs: &RenderInputs,
    rendered: &Rendered,
) -> Result<String, ProxyError> {
    let mut out = String::from(HEADER);
    if tls == ProxyTls::Passthrough {
        let _ = writeln!(out, "load_module {NGINX_STREAM_MODULE};");
    }
    set.lines(&mut out, "", &["worker_processes"], ";");
    if let Some(connections) = set
        .get("worker_connections")
        .and_then(|value| value.parse::<u64>().ok())
    {
        let _ = writeln!(out, "worker_rlimit_nofile {};", nofile_for(connections));
    }
    let _ = writeln!(out, "pid {};", rendered.pid_file.display());
    let _ = writeln!(out, "error_log {} warn;", rendered.error_log.display());
    set.lines(&mut out, "", &["worker_shutdown_timeout"], ";");
    out.push_str("\nevents {\n");
    set.lines(&mut out, "    ", &["worker_connections"], ";");
    out.push_str("}\n\n");
    // With several workers, one listening socket each: the kernel spreads the devices
    // evenly, where a shared socket lets the busiest worker take most of them.
    let reuseport = match set.get("worker_processes") {
        Some(workers) if workers != "1" => " reuseport",
        _ => "",
    };
    let (listen, upstream) = (inputs.listen, inputs.upstream);
    match tls {
        ProxyTls::Passthrough => {
            let _ = writeln!(
                out,
                "stream {{\n    server {{\n        listen {listen}{reuseport};"
            );
            let _ = writeln!(out, "        proxy_pass {upstream};");
            set.lines(
                &mut out,
                "        ",
                &["proxy_timeout", "proxy_connect_timeout"],
                ";",
            );
            out.push_str("    }\n}\n");
        }
        ProxyTls::Terminate => nginx_http(&mut out, set, inputs, reuseport)?,
    }
    Ok(out)
}

/// nginx's `http` block (TLS terminated).
fn nginx_http(
    out: &mut String,
    set: &Set,
    inputs: &RenderInputs,
    reuseport: &str,
) -> Result<(), ProxyError> {
    let (Some(cert), Some(key)) = (inputs.cert, inputs.key) else {
        return Err(ProxyError::NoCertificate);
    };
    let dir = inputs.dir.display();
    let _ = writeln!(out, "http {{\n    access_log off;");
    let _ = writeln!(out, "    client_body_temp_path {dir}/client_body;");
    let _ = writeln!(out, "    proxy_temp_path {dir}/proxy_temp;");
    // No `keepalive` pool: a parked Ping holds its own connection to the server anyway,
    // so a pool would save only a loopback connect per Ping, and nginx does not retry a
    // POST it has sent on a pooled connection the server had just closed (the device
    // would get a 502). Each request gets its own connection, as with nginx's default.
    let _ = writeln!(
        out,
        "    upstream partition {{\n        server {};\n    }}",
        inputs.upstream
    );
    let _ = writeln!(
        out,
        "    server {{\n        listen {} ssl{reuseport};",
        inputs.listen
    );
    let _ = writeln!(out, "        ssl_certificate {};", cert.display());
    let _ = writeln!(out, "        ssl_certificate_key {};", key.display());
    out.push_str("        ssl_protocols TLSv1.2 TLSv1.3;\n");
    set.lines(out, "        ", &["keepalive_timeout", "send_timeout"], ";");
    out.push_str(
        "        location / {\n\
         \x20           proxy_pass http://partition;\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Host $host;\n\
         \x20           proxy_buffering off;\n\
         \x20           proxy_request_buffering off;\n\
         \x20           client_max_body_size 50m;\n",
    );
    set.lines(
        out,
        "            ",
        &[
            "proxy_read_timeout",
            "proxy_send_timeout",
            "proxy_connect_timeout",
        ],
        ";",
    );
    out.push_str("        }\n    }\n}\n");
    Ok(())
}

/// Enough files for `connections` and the worker's own, within the hard limit this
/// process has (which the proxy, its child, inherits and cannot raise).
fn nofile_for(connections: u64) -> u64 {
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(_, hard)| hard);
    (connections + NGINX_SPARE_FILES).min(hard)
}

fn haproxy(set: &Set, tls: ProxyTls, inputs: &RenderInputs, pem: Option<&Path>) -> String {
    let mut out = String::from(HEADER);
    // No `daemon` (the master stays the run's child), no chroot, user or log lines.
    out.push_str("global\n    # pidfile: given on the command line (-p)\n");
    set.lines(
        &mut out,
        "    ",
        &["maxconn", "nbthread", "hard-stop-after"],
        "",
    );
    let mode = match tls {
        ProxyTls::Terminate => "http",
        ProxyTls::Passthrough => "tcp",
    };
    let _ = writeln!(out, "\ndefaults\n    mode {mode}");
    // A frontend's own limit is not the global one unless said.
    set.lines(&mut out, "    ", &["maxconn"], "");
    let timeouts: Vec<&str> = set
        .0
        .iter()
        .map(|directive| directive.name.as_str())
        .filter(|name| name.starts_with("timeout "))
        .collect();
    set.lines(&mut out, "    ", &timeouts, "");
    let ssl = match (tls, pem) {
        (ProxyTls::Terminate, Some(pem)) => format!(" ssl crt {}", pem.display()),
        _ => String::new(),
    };
    let _ = writeln!(out, "\nfrontend devices\n    bind {}{ssl}", inputs.listen);
    out.push_str("    default_backend partition\n");
    let _ = writeln!(
        out,
        "\nbackend partition\n    server partition {}",
        inputs.upstream
    );
    out
}

const HEADER: &str = "# Written by pingfleet for one server partition's proxy: every value is one of\n\
                      # the run's [proxy] directives (the result lists each with where it came from).\n\n";

/// A user's own file with `{listen}`, `{upstream}`, `{cert}`, `{key}`, `{pem}`, `{pid}`
/// and `{dir}` filled in.
fn fill_template(
    kind: ProxyKind,
    template: &Path,
    inputs: &RenderInputs,
    rendered: &Rendered,
    pem: Option<&Path>,
) -> Result<String, ProxyError> {
    let text = read(template)?;
    let mut required = vec![
        ("{listen}", "add it where devices connect, e.g. `listen {listen} ssl;` or `bind {listen}`"),
        ("{upstream}", "add it where the server is, e.g. `proxy_pass http://{upstream};` or `server s {upstream}`"),
    ];
    // nginx would otherwise write its pid to /run/nginx.pid, the system nginx's.
    if kind == ProxyKind::Nginx {
        required.push((
            "{pid}",
            "add `pid {pid};` so the proxy has a pid file of its own",
        ));
    }
    if let Some((placeholder, hint)) = required
        .into_iter()
        .find(|(placeholder, _)| !text.contains(placeholder))
    {
        return Err(ProxyError::Template {
            path: template.to_owned(),
            placeholder,
            hint,
        });
    }
    let path_text = |path: Option<&Path>| {
        path.map(|path| path.display().to_string())
            .unwrap_or_default()
    };
    Ok(text
        .replace("{listen}", &inputs.listen.to_string())
        .replace("{upstream}", &inputs.upstream.to_string())
        .replace("{cert}", &path_text(inputs.cert))
        .replace("{key}", &path_text(inputs.key))
        .replace("{pem}", &path_text(pem))
        .replace("{pid}", &rendered.pid_file.display().to_string())
        .replace("{dir}", &inputs.dir.display().to_string()))
}

fn read(path: &Path) -> Result<String, ProxyError> {
    std::fs::read_to_string(path).map_err(|source| ProxyError::File {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), ProxyError> {
    std::fs::write(path, text).map_err(|source| ProxyError::File {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";

    /// Renders `toml` (a `[proxy]` table) for 100 devices into a fresh directory.
    fn render(toml: &str) -> (tempfile::TempDir, ProxyConfig, Result<Rendered, ProxyError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), CERT).unwrap();
        std::fs::write(dir.path().join("key.pem"), KEY).unwrap();
        let config: ProxyConfig = ::toml::from_str(toml).unwrap();
        config.check().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let inputs = RenderInputs {
            listen: "127.0.0.1:8443".parse().unwrap(),
            upstream: "127.0.0.2:8080".parse().unwrap(),
            dir: dir.path(),
            cert: Some(&cert),
            key: Some(&key),
            devices: 100,
        };
        let rendered = write_config(&config, &inputs);
        (dir, config, rendered)
    }

    /// Every directive with a value is in `text` as `name value<end>`; no unset one is.
    fn assert_directives(config: &ProxyConfig, text: &str, end: &str) {
        for directive in config.directives(100) {
            let line = format!("{} {}{end}\n", directive.name, directive.value);
            match directive.source {
                DirectiveSource::Unset => assert!(
                    !text.contains(&directive.name),
                    "{} in\n{text}",
                    directive.name
                ),
                _ => assert!(text.contains(&line), "{line:?} not in\n{text}"),
            }
        }
        assert!(!text.contains("daemon"), "{text}");
    }

    #[test]
    fn nginx_terminating_tls_proxies_http_with_the_directives_values() {
        let (dir, config, rendered) =
            render("kind = \"nginx\"\nproxy_read_timeout = \"65m\"\nworkers = 2\n");
        let rendered = rendered.unwrap();
        let text = std::fs::read_to_string(&rendered.config).unwrap();
        assert_directives(&config, &text, ";");
        assert!(text.contains("proxy_read_timeout 3900s;\n"));
        assert!(
            text.contains("listen 127.0.0.1:8443 ssl reuseport;\n"),
            "{text}"
        );
        assert!(text.contains("server 127.0.0.2:8080;\n"));
        assert!(text.contains("proxy_pass http://partition;\n"));
        let cert = format!(
            "ssl_certificate {};\n",
            dir.path().join("cert.pem").display()
        );
        assert!(text.contains(&cert), "{text}");
        let pid = format!("pid {};\n", rendered.pid_file.display());
        assert!(text.contains(&pid));
        let temp = format!(
            "client_body_temp_path {}/client_body;",
            dir.path().display()
        );
        assert!(text.contains(&temp));
        let connections: u64 = config
            .directives(100)
            .iter()
            .find(|directive| directive.name == "worker_connections")
            .unwrap()
            .value
            .parse()
            .unwrap();
        let nofile = format!("worker_rlimit_nofile {};\n", nofile_for(connections));
        assert!(text.contains(&nofile), "{text}");
        assert!(!text.contains("load_module") && !text.contains("stream {"));
        assert!(!text.contains("worker_shutdown_timeout"));
    }

    #[test]
    fn nginx_passing_tls_through_loads_the_stream_module() {
        let toml = "kind = \"nginx\"\ntls = \"passthrough\"\nproxy_timeout = \"20m\"\nworker_shutdown_timeout = \"1s\"\n";
        let (_dir, config, rendered) = render(toml);
        let text = std::fs::read_to_string(rendered.unwrap().config).unwrap();
        assert_directives(&config, &text, ";");
        assert!(text.starts_with(HEADER));
        assert!(text.contains(&format!("load_module {NGINX_STREAM_MODULE};\n")));
        assert!(
            text.contains("stream {\n    server {\n        listen 127.0.0.1:8443;\n"),
            "{text}"
        );
        assert!(text.contains("        proxy_pass 127.0.0.2:8080;\n"));
        assert!(text.contains("proxy_timeout 1200s;\n"));
        assert!(!text.contains("ssl") && !text.contains("http {"), "{text}");
    }

    #[test]
    fn haproxy_terminating_tls_reads_one_pem_and_every_set_timeout() {
        let toml = "kind = \"haproxy\"\ntimeout_server = \"1500ms\"\nhard_stop_after = \"1s\"\n";
        let (dir, config, rendered) = render(toml);
        let text = std::fs::read_to_string(rendered.unwrap().config).unwrap();
        assert_directives(&config, &text, "");
        assert!(text.contains("timeout server 1500ms\n"));
        assert!(
            text.contains("\n    hard-stop-after 1s\n\ndefaults\n    mode http\n"),
            "{text}"
        );
        let pem = dir.path().join("proxy.pem");
        assert!(text.contains(&format!("bind 127.0.0.1:8443 ssl crt {}\n", pem.display())));
        assert_eq!(
            std::fs::read_to_string(pem).unwrap(),
            format!("{CERT}\n{KEY}")
        );
        assert!(text.contains("server partition 127.0.0.2:8080\n"));
        for absent in ["\n    pidfile", "\n    log", "chroot", "\n    user"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn haproxy_passing_tls_through_is_tcp_mode_without_a_certificate() {
        let (_dir, config, rendered) = render("kind = \"haproxy\"\ntls = \"passthrough\"\n");
        let text = std::fs::read_to_string(rendered.unwrap().config).unwrap();
        assert_directives(&config, &text, "");
        assert!(text.contains("mode tcp\n"));
        assert!(text.contains("bind 127.0.0.1:8443\n"));
        assert!(!text.contains("hard-stop-after"));
    }

    #[test]
    fn terminating_tls_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config: ProxyConfig = ::toml::from_str("kind = \"nginx\"\n").unwrap();
        let inputs = RenderInputs {
            listen: "127.0.0.1:8443".parse().unwrap(),
            upstream: "127.0.0.1:8080".parse().unwrap(),
            dir: dir.path(),
            cert: None,
            key: None,
            devices: 1,
        };
        let err = write_config(&config, &inputs).unwrap_err();
        assert!(matches!(err, ProxyError::NoCertificate), "{err}");
    }

    #[test]
    fn a_users_file_is_filled_in_and_one_without_its_addresses_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("mine.cfg");
        std::fs::write(
            &template,
            "bind {listen} ssl crt {pem}\nserver s {upstream}\n# {dir} {cert} {key} {pid}\n",
        )
        .unwrap();
        let toml = format!("kind = \"haproxy\"\nconfig = \"{}\"\n", template.display());
        let (out, _config, rendered) = render(&toml);
        let rendered = rendered.unwrap();
        let text = std::fs::read_to_string(&rendered.config).unwrap();
        let root = out.path().display();
        let expected = format!(
            "bind 127.0.0.1:8443 ssl crt {root}/proxy.pem\nserver s 127.0.0.2:8080\n# {root} {root}/cert.pem {root}/key.pem {root}/proxy.pid\n"
        );
        assert_eq!(text, expected);

        std::fs::write(&template, "bind :443\nserver s {upstream}\n").unwrap();
        let (_out, _config, refused) = render(&toml);
        let err = refused.unwrap_err().to_string();
        assert!(
            err.contains("mine.cfg") && err.contains("{listen}"),
            "{err}"
        );

        let nginx = format!("kind = \"nginx\"\nconfig = \"{}\"\n", template.display());
        std::fs::write(&template, "listen {listen}; proxy_pass {upstream};\n").unwrap();
        let (_out, _config, refused) = render(&nginx);
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("{pid}"), "{err}");
    }
}
