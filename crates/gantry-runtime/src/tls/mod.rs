//! TLS for https and TLS store probes: rustls on the ring provider, client configs per verification mode, roots loaded once and only when a probe verifies against them, failures worded for people.
//!
//! - **Verification** ([`Verify`]): `Full` checks the chain, the expiry and the host name
//!   (https, `rediss://`, `amqps://`, nats `tls://`, postgres `verify-full`); `ChainOnly`
//!   leaves out the name (postgres `verify-ca`); `None` only encrypts (postgres `require`
//!   without a CA, as libpq does; `insecure_skip_verify = true` everywhere).
//! - **Roots**: `ca_file` alone when it is set, else the system's (rustls-native-certs),
//!   read on the blocking pool the first time a probe needs them and kept for the life of
//!   the process. A stack without TLS probes never loads them (its boot does not pay for
//!   parsing the system store).
//! - **Files** (`ca_file`, `cert_file`, `key_file`) are read at every connection, regular
//!   files under 1 MiB only, so a rotated certificate is picked up at the next probe.
//! - **No session resumption**: every probe sees (and verifies) the server's certificate.
//! - [`inspect`] is the pre-flight's look at an endpoint's chain: verdict and days to expiry.

pub mod inspect;
pub(crate) mod x509;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use gantry_spec::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};

pub use tokio_rustls::client::TlsStream;

/// The TLS endpoint a probe connects to, if it uses TLS: an `https://` URL or a store URL
/// that asks for it.
pub fn endpoint(kind: &gantry_spec::ProbeKind) -> Option<inspect::Endpoint> {
    match kind {
        gantry_spec::ProbeKind::Http { url, tls, .. } => crate::probe::http_tls_endpoint(url, tls),
        other => crate::stores::tls_endpoint(other),
    }
}

/// Largest PEM file (`ca_file`, `cert_file`, `key_file`) read.
const MAX_PEM: u64 = 1024 * 1024;

/// How a server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Chain to a trusted root, validity dates and the host name.
    Full,
    /// Chain and dates, not the name (postgres `sslmode=verify-ca`, mysql `VERIFY_CA`).
    ChainOnly,
    /// Encryption only: any certificate is accepted.
    None,
}

impl Verify {
    /// What is checked, for messages: "chain and name", "chain", "not verified".
    pub fn what(self) -> &'static str {
        match self {
            Verify::Full => "chain and host name verified",
            Verify::ChainOnly => "chain verified (not the host name)",
            Verify::None => "certificate not verified",
        }
    }

    /// `None` when the options say `insecure_skip_verify = true`, else `self`.
    pub fn with(self, opts: &TlsOptions) -> Verify {
        if opts.insecure_skip_verify {
            Verify::None
        } else {
            self
        }
    }
}

/// The one crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system roots as a store and as the certificates they came from (the MySQL client
/// takes those).
type SystemRoots = (Arc<RootCertStore>, Arc<Vec<CertificateDer<'static>>>);

static SYSTEM_ROOTS: tokio::sync::OnceCell<Result<SystemRoots, String>> =
    tokio::sync::OnceCell::const_new();

/// True once the system roots were loaded in this process (a stack without TLS probes
/// never loads them).
pub fn system_roots_loaded() -> bool {
    SYSTEM_ROOTS.initialized()
}

/// The system's trusted roots, loaded on the blocking pool the first time and kept.
async fn system_roots() -> Result<Arc<RootCertStore>, String> {
    load_system_roots().await.map(|(store, _)| store)
}

/// The system's trusted root certificates (DER), loaded like [`system_roots`].
pub(crate) async fn system_root_certs() -> Result<Arc<Vec<CertificateDer<'static>>>, String> {
    load_system_roots().await.map(|(_, certs)| certs)
}

async fn load_system_roots() -> Result<SystemRoots, String> {
    SYSTEM_ROOTS
        .get_or_init(|| async {
            let loaded = tokio::task::spawn_blocking(rustls_native_certs::load_native_certs)
                .await
                .map_err(|e| format!("loading the system root certificates failed: {e}"))?;
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(loaded.certs.iter().cloned());
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no system root certificates were found{why}: install the ca-certificates \
                     package, or set ca_file to the PEM of the CA that signed the server's certificate"
                ));
            }
            Ok((Arc::new(store), Arc::new(loaded.certs)))
        })
        .await
        .clone()
}

fn resolve(base: &Path, file: &str) -> std::path::PathBuf {
    base.join(file)
}

/// A PEM file a TLS key names, relative to `base`: a regular file under 1 MiB.
pub(crate) fn read_pem(base: &Path, key: &str, file: &str) -> Result<Vec<u8>, String> {
    gantry_state::bounded::read_capped(&resolve(base, file), MAX_PEM)
        .map_err(|e| format!("{key}: {e}"))
}

/// The certificates of a PEM file.
fn certs(base: &Path, key: &str, file: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(base, key, file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key} {file}: not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {file}: no certificate in it (expected -----BEGIN CERTIFICATE----- blocks)"
        ));
    }
    Ok(certs)
}

/// The roots a probe trusts: `ca_file` alone when set, else the system's.
async fn roots(opts: &TlsOptions, base: &Path) -> Result<Arc<RootCertStore>, String> {
    let Some(file) = &opts.ca_file else {
        return system_roots().await;
    };
    let mut store = RootCertStore::empty();
    for cert in certs(base, "ca_file", file)? {
        store
            .add(cert)
            .map_err(|e| format!("ca_file {file}: a certificate in it is not usable: {e}"))?;
    }
    Ok(Arc::new(store))
}

/// The client certificate and key, when `cert_file` and `key_file` are set.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn identity(opts: &TlsOptions, base: &Path) -> Result<Option<Identity>, String> {
    let (Some(cert), Some(key)) = (&opts.cert_file, &opts.key_file) else {
        return Ok(None);
    };
    let chain = certs(base, "cert_file", cert)?;
    let pem = read_pem(base, "key_file", key)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("key_file {key}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1): {e}")
    })?;
    Ok(Some((chain, key)))
}

/// A client config for one connection: the verifier `verify` asks for (roots from
/// `ca_file` or the system), the client certificate when set, no session resumption.
pub async fn client_config(
    opts: &TlsOptions,
    base: &Path,
    verify: Verify,
) -> Result<ClientConfig, String> {
    let verifier = verifier(opts, base, verify.with(opts)).await?;
    config_with(opts, base, verifier)
}

pub(crate) async fn verifier(
    opts: &TlsOptions,
    base: &Path,
    verify: Verify,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let provider = provider();
    // Nothing to load for an unverified connection.
    if verify == Verify::None {
        return Ok(Arc::new(AnyCertificate(provider)));
    }
    let roots = roots(opts, base).await?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
    Ok(match verify {
        Verify::ChainOnly => Arc::new(ChainOnly(webpki)),
        _ => webpki,
    })
}

pub(crate) fn config_with(
    opts: &TlsOptions,
    base: &Path,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity(opts, base)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            format!(
                "cert_file / key_file: the key does not fit the certificate, or is not usable: {e}"
            )
        })?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The name a certificate must be valid for: a DNS name or an IP address (brackets of an
/// IPv6 literal removed).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a valid host name for TLS"))
}

/// The TLS handshake over `stream`; the error is a finished message.
pub async fn handshake<S>(
    stream: S,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(host)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| describe_io(&e, host))
}

/// A failed handshake (an `io::Error` carrying the rustls error) in words.
pub fn describe_io(e: &std::io::Error, host: &str) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => describe(tls, host).to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => format!(
            "TLS handshake with {host} failed: the server closed the connection (is it a TLS port?)"
        ),
        None => format!("TLS handshake with {host} failed: {e}"),
    }
}

/// The first rustls error in an error's source chain (directly or inside an `io::Error`).
pub fn find_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// What went wrong in a handshake, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub todo: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.todo)
    }
}

/// A rustls error in words, with what to do.
pub fn describe(e: &rustls::Error, host: &str) -> Problem {
    use rustls::AlertDescription as A;
    let p = |what: String, todo: &str| Problem {
        what,
        todo: todo.to_string(),
    };
    match e {
        rustls::Error::InvalidCertificate(c) => describe_certificate(c, host),
        rustls::Error::AlertReceived(
            alert @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::AccessDenied),
        ) => p(
            format!("{host} refused the TLS handshake ({alert:?})"),
            "it wants a client certificate it trusts: set cert_file and key_file to one signed by a CA the server trusts",
        ),
        rustls::Error::AlertReceived(alert) => p(
            format!("{host} refused the TLS handshake ({alert:?})"),
            "check that the port speaks TLS and that the server accepts TLS 1.2 or 1.3",
        ),
        rustls::Error::InvalidMessage(_) => p(
            format!("{host} did not answer with TLS ({e})"),
            "check that the port speaks TLS (a plain port needs http://, redis://, amqp://, nats:// or sslmode=disable)",
        ),
        other => p(
            format!("TLS handshake with {host} failed: {other}"),
            "check the server's TLS setup",
        ),
    }
}

/// A certificate the verifier refused, in words.
pub fn describe_certificate(c: &CertificateError, host: &str) -> Problem {
    let now = || UnixTime::now().as_secs() as i64;
    let p = |what: String, todo: String| Problem { what, todo };
    match c {
        CertificateError::Expired => p(
            format!("the certificate of {host} has expired"),
            format!("renew the certificate {host} serves"),
        ),
        CertificateError::ExpiredContext { time, not_after } => {
            let after = not_after.as_secs() as i64;
            let days = (time.as_secs() as i64 - after).div_euclid(86_400);
            p(
                format!(
                    "the certificate of {host} expired on {} ({} ago)",
                    x509::date(after),
                    days_text(days)
                ),
                format!("renew the certificate {host} serves"),
            )
        }
        CertificateError::NotValidYet => p(
            format!("the certificate of {host} is not valid yet"),
            "check this machine's clock, or wait for the certificate's start date".into(),
        ),
        CertificateError::NotValidYetContext { not_before, .. } => {
            let from = not_before.as_secs() as i64;
            p(
                format!(
                    "the certificate of {host} is not valid before {} (in {})",
                    x509::date(from),
                    days_text((from - now()).div_euclid(86_400).max(0))
                ),
                "check this machine's clock, or wait for the certificate's start date".into(),
            )
        }
        CertificateError::UnknownIssuer => p(
            format!("the certificate of {host} is not signed by a trusted CA (unknown issuer)"),
            "set ca_file to the PEM of the CA that signed it, or add that CA to the system store"
                .into(),
        ),
        CertificateError::NotValidForName => p(
            format!("the certificate of {host} is not valid for the name {host}"),
            "connect with a name the certificate lists, or reissue it with this name in its subjectAltName".into(),
        ),
        CertificateError::NotValidForNameContext { presented, .. } => p(
            format!(
                "the certificate of {host} is not valid for the name {host} (it names {})",
                if presented.is_empty() {
                    "nothing".to_string()
                } else {
                    presented
                        .iter()
                        .map(|n| bare_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            "connect with a name the certificate lists, or reissue it with this name in its subjectAltName".into(),
        ),
        CertificateError::BadSignature => p(
            format!("the certificate chain of {host} has a bad signature"),
            "the server sends a broken or tampered chain: reissue its certificate".into(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => p(
            format!("the certificate of {host} is not for TLS servers (extended key usage)"),
            "reissue it with the serverAuth extended key usage".into(),
        ),
        other => p(
            format!("the certificate of {host} was refused: {other}"),
            "check the certificate the server sends, or set ca_file".into(),
        ),
    }
}

/// A name as webpki presents it (`DnsName("db.example")`, `IpAddress(10.0.0.1)`) without
/// its wrapping.
pub(crate) fn bare_name(presented: &str) -> &str {
    let inner = match (presented.find('('), presented.strip_suffix(')')) {
        (Some(open), Some(body)) if open < body.len() => &body[open + 1..],
        _ => presented,
    };
    inner.trim_matches('"')
}

/// `1 day`, `12 days`.
pub(crate) fn days_text(days: i64) -> String {
    if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(super::bare_name("DnsName(\"db.example\")"), "db.example");
        assert_eq!(super::bare_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(super::bare_name("plain"), "plain");
    }
}

/// Accepts any certificate (still checks the handshake signatures, so the peer holds the
/// key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The chain and dates, not the name: webpki checks the chain before the name, so a name
/// error means the chain passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
