//! TLS set-up shared by the server and the device fleet: load a certificate and key from
//! PEM files, or make a self-signed ECDSA P-256 certificate for the loopback addresses
//! and write it where clients can read it to trust it. One crypto provider for the whole
//! tree: rustls' default, aws-lc-rs (rcgen is built with the same).

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The server's address when a run puts it in a network namespace behind the kernel's
/// firewall (see `firewall::netns`), from the benchmarking range 198.18.0.0/15.
pub const NETNS_SERVER_ADDR: &str = "198.18.1.2";

/// Names a generated certificate is valid for: `localhost`, the loopback addresses a
/// fleet spreads its connections over, and the server's address behind a netns firewall.
pub fn loopback_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "::1".to_owned()];
    names.extend((1..=32).map(|last| format!("127.0.0.{last}")));
    names.push(NETNS_SERVER_ADDR.to_owned());
    names
}

/// A certificate chain and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("cannot read certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("invalid PEM certificate in {}", cert.display()))?;
        if chain.is_empty() {
            anyhow::bail!("{} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("cannot read a private key from {}", key.display()))?;
        Ok(Self { chain, key })
    }

    /// Makes a self-signed ECDSA P-256 certificate for [`loopback_names`] and the
    /// addresses in `also` (the server's own listen addresses) and writes it (PEM) to
    /// `cert_out` so clients can trust it.
    pub fn self_signed(cert_out: &Path, also: &[std::net::IpAddr]) -> anyhow::Result<Self> {
        Self::self_signed_with(cert_out, also, CertificateKey::EcdsaP256)
    }

    /// As [`Identity::self_signed`], with a key of the given kind.
    pub fn self_signed_with(
        cert_out: &Path,
        also: &[std::net::IpAddr],
        key_kind: CertificateKey,
    ) -> anyhow::Result<Self> {
        let (cert, signing_key) = generate(also, key_kind)?;
        std::fs::write(cert_out, cert.pem())
            .with_context(|| format!("cannot write certificate to {}", cert_out.display()))?;
        let key = PrivateKeyDer::try_from(signing_key.serialize_der())
            .map_err(|err| anyhow::anyhow!("generated key is unusable: {err}"))?;
        Ok(Self {
            chain: vec![cert.der().clone()],
            key,
        })
    }

    /// As [`Identity::self_signed`], the private key written too (PEM, readable by its
    /// owner only) for a program that reads both files: a reverse proxy.
    pub fn self_signed_files(cert_out: &Path, key_out: &Path) -> anyhow::Result<()> {
        let (cert, signing_key) = generate(&[], CertificateKey::EcdsaP256)?;
        std::fs::write(cert_out, cert.pem())
            .with_context(|| format!("cannot write certificate to {}", cert_out.display()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(key_out)
            .with_context(|| format!("cannot write a private key to {}", key_out.display()))?;
        std::io::Write::write_all(&mut file, signing_key.serialize_pem().as_bytes())
            .with_context(|| format!("cannot write a private key to {}", key_out.display()))
    }

    /// A rustls server configuration offering HTTP/1.1 and issuing one stateless TLS
    /// 1.3 session ticket per handshake (sealed with a key rustls rotates), so a device
    /// that comes back resumes without the server keeping anything per session.
    pub fn server_config(self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)
            .context("the certificate and key do not form a usable TLS identity")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .context("cannot make a TLS session ticket key")?;
        config.send_tls13_tickets = 1;
        // The lean engine keeps only the traffic keys once a handshake is over.
        config.enable_secret_extraction = true;
        Ok(Arc::new(config))
    }
}

/// A self-signed certificate for [`loopback_names`] and `also`, and its key.
fn generate(
    also: &[std::net::IpAddr],
    key_kind: CertificateKey,
) -> anyhow::Result<(rcgen::Certificate, rcgen::KeyPair)> {
    let mut names = loopback_names();
    for address in also.iter().filter(|address| !address.is_unspecified()) {
        let name = address.to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut params = rcgen::CertificateParams::new(names)
        .context("cannot generate a self-signed certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, unique_common_name());
    let algorithm = match key_kind {
        CertificateKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        CertificateKey::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let signing_key = rcgen::KeyPair::generate_for(algorithm)
        .context("cannot generate a key for a self-signed certificate")?;
    let cert = params
        .self_signed(&signing_key)
        .context("cannot generate a self-signed certificate")?;
    Ok((cert, signing_key))
}

/// The kind of key a generated certificate has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKey {
    /// ECDSA on P-256, what most servers present (the default).
    EcdsaP256,
    /// Ed25519: a cheaper signature, which phones' TLS stacks do not all accept.
    Ed25519,
}

/// A subject name no other generated certificate has: devices that trust every
/// partition's certificate find the one that signed a server's by its name. With one
/// name for all (rcgen's default), a verifier tries each trusted key in turn, and with
/// 56 partitions the devices spent most of a core on signature checks.
fn unique_common_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("pingfleet server {} {nanos}", std::process::id())
}

/// The key exchange a TLS client offers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyExchange {
    /// rustls' default: the X25519MLKEM768 post-quantum hybrid first, as current
    /// Android and iOS releases send it, then classic groups.
    #[default]
    Hybrid,
    /// X25519 alone, as older phones do. Its key share is 32 bytes instead of about
    /// 1.2 KB, and a worker holds about 7 KB less per TLS device (measured).
    X25519,
}

impl KeyExchange {
    /// The name flags use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::X25519 => "x25519",
        }
    }
}

/// The crypto provider for a client offering `key_exchange`, and AES-128-GCM with
/// SHA-256 first, as iOS and Android order their TLS 1.3 suites (rustls' own order
/// puts AES-256-GCM with SHA-384 first, whose key schedule costs a SHA-512 core that
/// most CPUs do not accelerate).
fn client_provider(key_exchange: KeyExchange) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    if key_exchange == KeyExchange::X25519 {
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    Arc::new(provider)
}

/// A rustls client configuration that trusts exactly the certificates in a PEM file.
pub fn client_config_trusting(
    cert: &Path,
    key_exchange: KeyExchange,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read certificate {}", cert.display()))?
    {
        let certificate =
            certificate.with_context(|| format!("invalid PEM in {}", cert.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("cannot trust the certificate in {}", cert.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(client_provider(key_exchange))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(keys_only_after_handshake(config))
}

/// Where a server writes its generated certificate when not told otherwise.
pub fn default_cert_path() -> std::io::Result<PathBuf> {
    // A fresh directory only this user can enter: no file planted in the shared temp
    // directory (a symlink to something else) can be written through.
    let dir = tempfile::Builder::new()
        .prefix("pingfleet-cert-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?
        .keep();
    Ok(dir.join("cert.pem"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_generated_certificate_goes_to_a_fresh_private_directory() {
        let first = default_cert_path().unwrap();
        let second = default_cert_path().unwrap();
        assert_ne!(first, second);
        let dir = first.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(
            !first.exists(),
            "nothing is there to be followed or overwritten"
        );
        for path in [first, second] {
            std::fs::remove_dir(path.parent().unwrap()).unwrap();
        }
    }

    #[test]
    fn devices_offer_aes_128_gcm_first_as_phones_do_and_may_keep_only_keys() {
        for key_exchange in [KeyExchange::Hybrid, KeyExchange::X25519] {
            let config = client_config_insecure(key_exchange).unwrap();
            let suites: Vec<_> = config
                .crypto_provider()
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect();
            assert_eq!(suites[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
            assert!(suites.contains(&rustls::CipherSuite::TLS13_AES_256_GCM_SHA384));
            assert!(config.enable_secret_extraction);
        }
    }

    #[test]
    fn each_generated_certificate_has_a_subject_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let subjects: Vec<Vec<u8>> = [CertificateKey::EcdsaP256, CertificateKey::Ed25519]
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                let cert = dir.path().join(format!("{index}.pem"));
                let identity = Identity::self_signed_with(&cert, &[], key).unwrap();
                let der = identity.chain[0].as_ref();
                // The common name's text, as it is written in the certificate.
                let at = der
                    .windows(b"pingfleet server ".len())
                    .position(|window| window == b"pingfleet server ")
                    .expect("the subject names pingfleet");
                der[at..at + 40].to_vec()
            })
            .collect();
        assert_ne!(subjects[0], subjects[1]);
    }

    #[test]
    fn a_generated_certificate_names_the_listen_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let own: std::net::IpAddr = "127.0.21.1".parse().unwrap();
        let identity = Identity::self_signed(&cert, &[own, "0.0.0.0".parse().unwrap()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(identity.chain[0].clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let verify = |name: &str| {
            use rustls::client::danger::ServerCertVerifier as _;
            let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
            verifier.verify_server_cert(
                &identity.chain[0],
                &[],
                &name,
                &[],
                rustls_pki_types::UnixTime::now(),
            )
        };
        for name in ["127.0.21.1", "127.0.0.1", "localhost", NETNS_SERVER_ADDR] {
            assert!(verify(name).is_ok(), "{name}");
        }
        let other = verify("127.0.22.1").unwrap_err();
        assert!(matches!(
            other,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            )
        ));
    }

    #[test]
    fn a_generated_certificate_is_trusted_by_a_client_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let identity = Identity::self_signed(&cert, &[]).unwrap();
        assert!(identity.server_config().is_ok());
        assert!(client_config_trusting(&cert, KeyExchange::Hybrid).is_ok());
        assert!(client_config_insecure(KeyExchange::X25519).is_ok());
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not a key").unwrap();
        let err = Identity::from_pem_files(&cert, &key)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("private key"), "{err}");
    }
}

/// A rustls client configuration that accepts any server certificate (signatures are
/// still checked). For test servers only: `pingfleet devices --insecure`.
pub fn client_config_insecure(
    key_exchange: KeyExchange,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = client_provider(key_exchange);
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(keys_only_after_handshake(config))
}

/// A device keeps only the traffic keys once its handshake is over and the server's
/// tickets have come ([`crate::tls_session`]).
fn keys_only_after_handshake(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    config.enable_secret_extraction = true;
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
