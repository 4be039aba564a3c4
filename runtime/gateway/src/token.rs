//! Session tokens: `PLAYER.SESSION.EXPIRES.MAC`, where MAC is HMAC-SHA256 of the
//! first three fields under the node's session key (32 random bytes in
//! `DATA/session.key`, mode 0600; in a cluster, one key all nodes share). A token proves who the player is and which
//! session it may resume until it expires; forging one needs the key.

use ring::hmac;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The decoded, verified content of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// The player.
    pub player: u64,
    /// The session.
    pub session: u64,
    /// When the token expires.
    pub expires_at_ms: u64,
}

/// A session token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token.
    #[error("malformed session token")]
    Malformed,
    /// Not signed by this node's key.
    #[error("session token signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("session token expired; log in again")]
    Expired,
}

/// The node's session-token key (HMAC-SHA256).
pub struct TokenKey(hmac::Key);

impl TokenKey {
    /// The node's key, created (0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<TokenKey> {
        let bytes = match std::fs::read(path) {
            Ok(b) if b.len() == 32 => b,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a 32-byte key",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                f.write_all(&key)?;
                key.to_vec()
            }
            Err(e) => return Err(e),
        };
        Ok(TokenKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A key shared by every node of a cluster (so a token of one verifies
    /// on all).
    pub fn from_bytes(b: &[u8]) -> TokenKey {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, b))
    }

    /// A token for `c`.
    pub fn sign(&self, c: Claims) -> String {
        let body = format!("{}.{}.{}", c.player, c.session, c.expires_at_ms);
        let tag = hmac::sign(&self.0, body.as_bytes());
        format!("{body}.{}", hex::encode(tag.as_ref()))
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Claims, TokenError> {
        let (body, mac) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mac = hex::decode(mac).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.0, body.as_bytes(), &mac).map_err(|_| TokenError::BadSignature)?;
        let mut parts = body.split('.').map(|p| p.parse::<u64>());
        let (Some(Ok(player)), Some(Ok(session)), Some(Ok(expires_at_ms)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if now_ms >= expires_at_ms {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            player,
            session,
            expires_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let k = TokenKey::from_bytes(&[7; 32]);
        let c = Claims {
            player: 42,
            session: 9,
            expires_at_ms: 1_000,
        };
        let t = k.sign(c);
        assert_eq!(k.verify(&t, 999), Ok(c));
        assert_eq!(k.verify(&t, 1_000), Err(TokenError::Expired));
        let forged = t.replacen("42.", "43.", 1);
        assert_eq!(k.verify(&forged, 0), Err(TokenError::BadSignature));
        assert_eq!(k.verify("nonsense", 0), Err(TokenError::Malformed));
        let other = TokenKey::from_bytes(&[8; 32]);
        assert_eq!(other.verify(&t, 0), Err(TokenError::BadSignature));
    }
}
