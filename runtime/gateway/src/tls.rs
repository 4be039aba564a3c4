//! The gateway's TLS identity: a PEM certificate and key from the config, or a
//! self-signed certificate generated on first start and kept in the data dir.
//! Its SHA-256 fingerprint is what clients pin.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A generated certificate cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("{path} holds no {what} in PEM form")]
    /// A PEM file without what it should hold.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was missing or malformed.
        what: &'static str,
    },
    /// Generating a certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// A certificate chain and its key.
pub struct Identity {
    /// The certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// Hex SHA-256 of the end-entity certificate (DER).
    pub fingerprint: String,
    /// Where it came from, for the start banner.
    pub source: String,
}

/// A certificate's SHA-256, hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads `cert`/`key` PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        })?;
    let first = chain.first().ok_or_else(|| TlsError::Pem {
        path: cert.to_owned(),
        what: "certificate",
    })?;
    let fingerprint = fingerprint(first);
    let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Pem {
        path: key.to_owned(),
        what: "private key",
    })?;
    Ok(Identity {
        chain,
        key,
        fingerprint,
        source: cert.display().to_string(),
    })
}

/// The self-signed identity in `dir` (`gateway.crt`, `gateway.key`), generated
/// on first use. The key file is written with mode 0600.
pub fn self_signed(dir: &Path) -> Result<Identity, TlsError> {
    let (cert_path, key_path) = (dir.join("gateway.crt"), dir.join("gateway.key"));
    if !cert_path.exists() || !key_path.exists() {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "anthill".into()])
                .map_err(|e| TlsError::Generate(e.to_string()))?;
        let key_pem = generated.signing_key.serialize_pem();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(|source| TlsError::Write {
                path: key_path.clone(),
                source,
            })?;
        f.write_all(key_pem.as_bytes())
            .map_err(|source| TlsError::Write {
                path: key_path.clone(),
                source,
            })?;
        std::fs::write(&cert_path, generated.cert.pem()).map_err(|source| TlsError::Write {
            path: cert_path.clone(),
            source,
        })?;
    }
    let mut id = load(&cert_path, &key_path)?;
    id.source = format!("self-signed, {}", cert_path.display());
    Ok(id)
}

/// A key in PKCS#8 DER (for tests that build identities in memory).
pub fn pkcs8(der: Vec<u8>) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}
