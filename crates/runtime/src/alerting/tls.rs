//! TLS for `https://` webhooks and mail over TLS: which certificates are trusted (the
//! system's roots, as curl and lettre find them, and `ca_file`'s), read on a blocking thread
//! so that reading `/etc/ssl/certs` never holds up the loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The system's roots and `ca_file`'s certificates; an unreadable or empty `ca_file` is an
/// error naming it (the system's roots alone would fail later, less clearly).
fn read_roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = rustls_native_certs::load_native_certs().certs;
    if let Some(ca_file) = ca_file {
        let named = |why: String| format!("ca_file {}: {why}", ca_file.display());
        let extra = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| named(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| named(e.to_string()))?;
        if extra.is_empty() {
            return Err(named("no PEM certificate in it".to_string()));
        }
        roots.extend(extra);
    }
    Ok(roots)
}

/// Runs `build` on a blocking thread: certificates are files, and parsing them is work.
async fn off_the_loop<T: Send + 'static>(
    build: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(build)
        .await
        .map_err(|e| format!("reading the trusted certificates failed: {e}"))?
}

/// A TLS client's configuration for a webhook: the trusted roots, no client certificate.
pub async fn client_config(ca_file: Option<PathBuf>) -> Result<Arc<rustls::ClientConfig>, String> {
    off_the_loop(move || {
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(read_roots(ca_file.as_deref())?);
        // The provider is the one the crate features name (ring, lettre's too).
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Arc::new(config))
    })
    .await
}

/// lettre's TLS parameters for the SMTP server `host`: the same trusted roots.
pub async fn smtp_parameters(
    host: String,
    ca_file: Option<PathBuf>,
) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
    use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
    off_the_loop(move || {
        let mut builder = TlsParameters::builder(host).certificate_store(CertificateStore::None);
        for root in read_roots(ca_file.as_deref())? {
            // A root the system keeps in a form rustls cannot use is skipped, as
            // `add_parsable_certificates` does for webhooks.
            if let Ok(certificate) = Certificate::from_der(root.to_vec()) {
                builder = builder.add_root_certificate(certificate);
            }
        }
        builder.build_rustls().map_err(|e| e.to_string())
    })
    .await
}
