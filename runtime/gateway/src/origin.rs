//! Which web pages may open a player connection. Browsers send the page's
//! Origin on a WebTransport CONNECT and a WebSocket upgrade; a session from any
//! other page is refused before it starts. Clients that are not browsers send
//! no Origin and are not affected (they cannot be lured into acting for a
//! page).

use std::net::SocketAddr;

/// The allowed origins: the node's own web port (where `/play` is served) and
/// what the operator lists in `[gateway] allowed_origins` (`"*"` allows any).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<String>,
    any: bool,
}

/// A page whose origin is not allowed.
#[derive(Debug, thiserror::Error)]
#[error(
    "origin {origin} is not allowed to connect: add it to [gateway] allowed_origins (allowed: {allowed})"
)]
pub struct OriginRefused {
    /// The page's origin.
    pub origin: String,
    /// What is allowed, for the message.
    pub allowed: String,
}

impl Origins {
    /// The operator's list (exact origins like `https://game.example`, or `*`).
    pub fn new(configured: &[String]) -> Origins {
        Origins {
            allowed: configured
                .iter()
                .filter(|o| o.as_str() != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any: configured.iter().any(|o| o == "*"),
        }
    }

    /// Also allows the pages of the node's own web port at `addr`.
    pub fn with_web_port(mut self, addr: SocketAddr, tls: bool) -> Origins {
        let scheme = if tls { "https" } else { "http" };
        let port = addr.port();
        let mut hosts = vec![addr.ip().to_string()];
        if addr.ip().is_loopback() {
            hosts.extend(["localhost".into(), "127.0.0.1".into()]);
        }
        for h in hosts {
            let o = format!("{scheme}://{h}:{port}");
            if !self.allowed.contains(&o) {
                self.allowed.push(o);
            }
        }
        self
    }

    /// Whether a connection with this Origin header (if any) may proceed.
    pub fn check(&self, origin: Option<&str>) -> Result<(), OriginRefused> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let o = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.any || self.allowed.contains(&o) {
            return Ok(());
        }
        Err(OriginRefused {
            origin: origin.to_string(),
            allowed: if self.allowed.is_empty() {
                "none".into()
            } else {
                self.allowed.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_port_and_listed_origins_pass_others_are_refused() {
        let o = Origins::new(&["https://game.example".into()])
            .with_web_port("127.0.0.1:7352".parse().unwrap(), false);
        assert!(o.check(None).is_ok(), "non-browser clients send no Origin");
        assert!(o.check(Some("http://127.0.0.1:7352")).is_ok());
        assert!(o.check(Some("http://localhost:7352")).is_ok());
        assert!(o.check(Some("HTTPS://Game.Example/")).is_ok());
        let e = o.check(Some("http://localhost:1")).unwrap_err();
        assert!(e.to_string().contains("http://localhost:1"), "{e}");
        assert!(e.to_string().contains("allowed_origins"), "{e}");
        assert!(o.check(Some("https://game.example.evil")).is_err());
        assert!(Origins::new(&["*".into()]).check(Some("http://x")).is_ok());
    }
}
