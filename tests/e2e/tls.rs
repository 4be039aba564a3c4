//! The gateway's TLS identity from the operator's PEM files: the node serves
//! that certificate, clients trusting its CA connect, others are refused.

use anthill_client::{Client, Trust};
use anthill_tests::Node;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

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

/// A node with the operator's certificate for `localhost` (and the PKI).
async fn node_with_operator_certificate(dir: &std::path::Path) -> anyhow::Result<(Node, Pki)> {
    let pki = make_pki()?;
    let (cert, key) = (dir.join("node.crt"), dir.join("node.key"));
    std::fs::write(&cert, &pki.cert_pem)?;
    std::fs::write(&key, &pki.key_pem)?;
    let node = Node::start_with_config(&format!(
        "[gateway]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await?;
    Ok((node, pki))
}

#[tokio::test]
async fn the_gateway_serves_the_configured_pem_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (node, pki) = node_with_operator_certificate(dir.path()).await?;
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
async fn with_an_operator_certificate_the_web_port_speaks_wss() -> anyhow::Result<()> {
    use anthill_protocol::wire::{self, FrameReader};
    use anthill_protocol::{Auth, Frame};
    use futures::{SinkExt, StreamExt};
    use tokio_rustls::rustls;

    let dir = tempfile::tempdir()?;
    let (node, pki) = node_with_operator_certificate(dir.path()).await?;
    node.admin().deploy("echo", "echo", "").await?;
    let web = node.web.expect("web port on");
    assert!(
        node.output().contains(&format!(
            "browsers: https://{web}/play (WebSocket wss://{web}/ws"
        )),
        "the banner gives the TLS addresses:\n{}",
        node.output()
    );

    // A client trusting the operator's CA: wss://localhost:PORT/ws.
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes())?;
    roots.add(ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let url = format!("wss://localhost:{}/ws", web.port()).parse()?;
    let mut ws: yawc::TcpWebSocket = yawc::WebSocket::connect(url)
        .with_tcp_address(web)
        .with_connector(connector)
        .await
        .context("wss:// with the operator's CA")?;
    let send = |f: &Frame| yawc::frame::Frame::binary(wire::encode_prefixed(f));
    ws.send(send(&Frame::Hello {
        version: wire::VERSION,
        auth: Auth::Device {
            id: "over-wss".into(),
        },
        last_push: 0,
    }))
    .await?;
    ws.send(send(&Frame::Request {
        id: 1,
        target: "echo".into(),
        payload: b"over wss".to_vec(),
    }))
    .await?;
    let mut got = Vec::new();
    while !got.iter().any(|f| matches!(f, Frame::Reply { .. })) {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no reply over wss within 10 s")?
            .context("the socket closed")?;
        let mut reader = FrameReader::new(1 << 20);
        reader.push(m.payload());
        while let Some(f) = reader.next_frame()? {
            got.push(f);
        }
    }
    assert!(matches!(got[0], Frame::Welcome { .. }), "{got:?}");
    assert!(
        got.contains(&Frame::Reply {
            id: 1,
            payload: b"over wss".to_vec()
        }),
        "{got:?}"
    );

    // Plain ws:// to that port gets no WebSocket.
    let plain = yawc::WebSocket::connect(format!("ws://{web}/ws").parse()?).await;
    assert!(plain.is_err(), "plain ws:// is not served next to TLS");
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
