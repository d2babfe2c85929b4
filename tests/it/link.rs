//! The link emulator on real sockets (network namespaces and a TUN device; needs root,
//! as CI runs): a phone's connection through `pingfleet link` takes the profile's
//! delay, loses its packets (and TCP retransmits them), is held to its bandwidth, and
//! is cut for an outage's length, each measured from a socket in the device namespace.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pingfleet::firewall::netns::{network_sources, Path, Topology, SERVER_ADDR};
use pingfleet::link::launch::LinkReport;
use pingfleet::measure::tcp_info;

const EXE: &str = env!("CARGO_BIN_EXE_pingfleet");

/// A path of one emulated network and its emulator, stopped (with its report) at
/// [`Emulated::report`].
struct Emulated {
    _namespaces: std::sync::MutexGuard<'static, ()>,
    topology: Topology,
    emulator: Child,
    report: tempfile::NamedTempFile,
}

impl Emulated {
    /// The namespaces and `pingfleet link` with `profile` (a `--route` profile after
    /// the subnet's `=`) for the devices' first network.
    fn start(profile: &str) -> Self {
        let namespaces = crate::util::namespaces_lock();
        let topology = Topology::create(Path {
            firewall: None,
            networks: 1,
        })
        .unwrap_or_else(|err| panic!("{err:#} (CI runs as root)"));
        let report = tempfile::NamedTempFile::new().unwrap();
        let route = format!("--route=198.18.16.0/24={profile}");
        let mut emulator = Command::new("ip")
            .args([
                "netns",
                "exec",
                topology.link.as_ref().unwrap(),
                EXE,
                "link",
            ])
            .args([route.as_str(), "--report"])
            .arg(report.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(emulator.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.contains("\"ready\":true"), "{ready}");
        Self {
            _namespaces: namespaces,
            topology,
            emulator,
            report,
        }
    }

    /// Runs `work` on a thread inside namespace `ns`.
    fn within<T: Send>(ns: &str, work: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    work()
                })
                .join()
                .unwrap()
        })
    }

    /// A listener in the server's namespace.
    fn listen(&self) -> TcpListener {
        Self::within(&self.topology.server, || {
            TcpListener::bind(format!("{SERVER_ADDR}:0")).unwrap()
        })
    }

    /// A phone's connection to `server`, from the network's first device address, and
    /// how long the handshake took.
    fn connect(&self, server: SocketAddr) -> (TcpStream, Duration) {
        Self::within(&self.topology.devices, || {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let source = SocketAddrV4::new(network_sources(0)[0], 0);
            socket.bind(&source.into()).unwrap();
            let started = Instant::now();
            socket
                .connect_timeout(&server.into(), Duration::from_secs(10))
                .unwrap();
            let stream: TcpStream = socket.into();
            stream.set_nodelay(true).unwrap();
            (stream, started.elapsed())
        })
    }

    /// Stops the emulator and reads its report.
    fn report(mut self) -> LinkReport {
        Command::new("kill")
            .arg(self.emulator.id().to_string())
            .status()
            .unwrap();
        self.emulator.wait().unwrap();
        let text = std::fs::read_to_string(self.report.path()).unwrap();
        drop(self.topology);
        serde_json::from_str(&text).unwrap()
    }
}

/// Echoes every byte back until the peer closes.
fn echo(listener: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        while let Ok(read @ 1..) = stream.read(&mut buffer) {
            if stream.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
    })
}

/// Sends one byte and waits for its echo: the round trip.
fn round_trip(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.write_all(b"x").unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).unwrap();
    started.elapsed()
}

#[test]
fn a_phones_connection_takes_the_profiles_delay_each_way() {
    let path = Emulated::start("slow{delay = \"40ms\"}");
    let listener = path.listen();
    let server = listener.local_addr().unwrap();
    let echoing = echo(listener);
    let (mut stream, handshake) = path.connect(server);
    let trips: Vec<Duration> = (0..20).map(|_| round_trip(&mut stream)).collect();
    let kernel = tcp_info::read(&stream).unwrap();
    drop(stream);
    echoing.join().unwrap();
    let report = path.report();
    // 40 ms each way: 80 ms for the SYN and its answer, and for each byte and its echo.
    let window = Duration::from_millis(80)..Duration::from_millis(95);
    assert!(window.contains(&handshake), "handshake {handshake:?}");
    for trip in &trips {
        assert!(window.contains(trip), "round trip {trip:?} of {trips:?}");
    }
    assert!((78_000..95_000).contains(&kernel.rtt_us), "{kernel:?}");
    let network = &report.networks[0];
    assert!(
        network.counts.packets_up >= 21 && network.counts.packets_down >= 21,
        "{report:?}"
    );
    assert_eq!(network.counts.links_opened, 1);
}

#[test]
fn lost_packets_are_retransmitted_by_the_kernels_tcp_and_nothing_is_lost_to_the_app() {
    let path = Emulated::start("lossy{delay = \"5ms\", loss = \"10%\"}");
    let listener = path.listen();
    let server = listener.local_addr().unwrap();
    let echoing = echo(listener);
    let (mut stream, _) = path.connect(server);
    let trips: Vec<Duration> = (0..200).map(|_| round_trip(&mut stream)).collect();
    let kernel = tcp_info::read(&stream).unwrap();
    drop(stream);
    echoing.join().unwrap();
    let report = path.report();
    let counts = &report.networks[0].counts;
    let sent = (counts.packets_up + counts.packets_down) as f64;
    let share = counts.dropped_loss as f64 / sent;
    assert!(
        (0.05..0.16).contains(&share),
        "lost {share} of packets: {counts:?}"
    );
    // Every byte came back; the device's kernel resent what it lost, and the trips
    // that lost a packet waited for a retransmission timeout.
    assert!(kernel.total_retrans > 0, "{kernel:?}");
    let slow = trips
        .iter()
        .filter(|trip| **trip > Duration::from_millis(150))
        .count();
    assert!(
        slow > 0,
        "no round trip waited for a retransmission: {trips:?}"
    );
}

#[test]
fn a_download_is_held_to_the_profiles_bandwidth() {
    let path = Emulated::start("capped{delay = \"5ms\", down = \"4mbit\"}");
    let listener = path.listen();
    let server = listener.local_addr().unwrap();
    const BYTES: usize = 1_000_000;
    let sender = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(&vec![7u8; BYTES]).unwrap();
    });
    let (mut stream, _) = path.connect(server);
    let started = Instant::now();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    sender.join().unwrap();
    path.report();
    assert_eq!(received.len(), BYTES);
    // 1 MB at 4 Mbit/s is 2 s of payload (a little more with headers); TCP's slow
    // start and the 10 ms round trip add little.
    let mbit = BYTES as f64 * 8.0 / seconds / 1e6;
    assert!(
        (3.3..4.05).contains(&mbit),
        "{mbit:.2} Mbit/s in {seconds:.2} s"
    );
}

#[test]
fn an_outage_cuts_the_phone_off_for_its_length_then_it_is_back() {
    let path =
        Emulated::start("tunnel{delay = \"5ms\", outage_every = \"2s\", outage_for = \"1500ms\"}");
    let listener = path.listen();
    let server = listener.local_addr().unwrap();
    let echoing = echo(listener);
    let (mut stream, _) = path.connect(server);
    let until = Instant::now() + Duration::from_secs(12);
    let mut longest = Duration::ZERO;
    while Instant::now() < until {
        longest = longest.max(round_trip(&mut stream));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stream);
    echoing.join().unwrap();
    let report = path.report();
    assert!(report.networks[0].counts.dropped_outage > 0, "{report:?}");
    // A packet sent into an outage waits for TCP to resend it after the outage: at
    // least most of the outage's 1.5 s.
    assert!(
        longest >= Duration::from_millis(1000),
        "longest round trip {longest:?}"
    );
}
