//! The gateway's TLS identity from the operator's PEM files: the node serves
//! that certificate, clients trusting its CA connect, others are refused.

use anthill_client::{Client, Trust};
use anthill_tests::Node;

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a `localhost` certificate it signed, as an operator would have.
fn make_pki() -> anyhow::Result<Pki> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Anthill test CA");
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &Issuer::new(ca_params, ca_key))?;
    Ok(Pki {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

#[tokio::test]
async fn the_gateway_serves_the_configured_pem_certificate() -> anyhow::Result<()> {
    let pki = make_pki()?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("node.crt"), dir.path().join("node.key"));
    std::fs::write(&cert, &pki.cert_pem)?;
    std::fs::write(&key, &pki.key_pem)?;
    let node = Node::start_with_config(&format!(
        "[gateway]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await?;
    node.admin().deploy("echo", "echo", "").await?;
    let addr = node.quic.expect("gateway on");

    // A client that trusts the operator's CA verifies the chain and plays.
    let client = Client::connect(addr, Trust::CaPem(pki.ca_pem.clone().into_bytes())).await?;
    client.login_device("ca-trusting").await?;
    assert_eq!(
        client.request("echo", b"over tls".to_vec()).await?,
        b"over tls"
    );

    // The fingerprint the node prints is that certificate's, not a generated one.
    let pinned = Client::connect(addr, Trust::Fingerprint(node.fingerprint.clone())).await?;
    pinned.login_device("pinning").await?;
    assert!(
        !node.data.join("gateway.crt").exists(),
        "no self-signed certificate is generated when one is configured"
    );

    // A client trusting another CA refuses the node.
    let other = make_pki()?;
    let refused = Client::connect(addr, Trust::CaPem(other.ca_pem.into_bytes())).await;
    let err = match refused {
        Ok(c) => c
            .login_device("wrong-ca")
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        err.to_lowercase().contains("cert") || err.contains("connect"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_or_broken_pem_file_stops_the_node_with_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("node.crt"), dir.path().join("node.key"));
    std::fs::write(&cert, "not a certificate")?;
    std::fs::write(&key, make_pki()?.key_pem)?;
    let started = Node::start_with_config(&format!(
        "[gateway]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await;
    let err = format!(
        "{:#}",
        started.err().expect("a broken certificate must not start")
    );
    assert!(
        err.contains("node.crt") && err.contains("certificate"),
        "{err}"
    );
    Ok(())
}
