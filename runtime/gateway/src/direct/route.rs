//! Which of the player port's two QUIC endpoints a UDP datagram belongs to:
//! the one the gateway drives itself ([`super::Direct`], native clients) or
//! quinn's (browsers' WebTransport, clients that do not tag their first
//! packet). Both issue connection IDs through [`TaggedCids`], which marks
//! the issuer in a way only this node can check, so every packet after a
//! connection's first flight is routed by its destination connection ID; a
//! first packet is routed by the suffix native clients put on the ID they
//! choose (`anthill_protocol::wire::NATIVE_CID_SUFFIX`).

use anthill_protocol::wire::{NATIVE_CID_LEN, NATIVE_CID_SUFFIX};
use quinn_proto::{ConnectionId, ConnectionIdGenerator, InvalidCid};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::Duration;

/// Length of every connection ID the node issues: 8 random bytes, then 4 of
/// a keyed hash of them (so a browser's random ID of the same length passes
/// for one of ours once in 2³² times at worst).
pub(crate) const CID_LEN: usize = 12;

/// The endpoint a datagram is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Direct,
    Quinn,
}

/// The node's secret for its connection IDs (one per node run).
#[derive(Clone, Debug)]
pub(crate) struct CidKey(RandomState);

impl CidKey {
    pub(crate) fn new() -> CidKey {
        CidKey(RandomState::new())
    }

    fn mac(&self, random: &[u8]) -> [u8; 4] {
        let mut h = self.0.build_hasher();
        h.write(random);
        (h.finish() as u32).to_le_bytes()
    }

    /// Which endpoint issued `cid`, if this node issued it.
    pub(crate) fn issuer(&self, cid: &[u8]) -> Option<Route> {
        if cid.len() != CID_LEN || self.mac(&cid[..8]) != cid[8..] {
            return None;
        }
        Some(if cid[0] & 1 == 1 {
            Route::Direct
        } else {
            Route::Quinn
        })
    }

    /// A connection ID generator for the endpoint `route`.
    pub(crate) fn generator(&self, route: Route) -> TaggedCids {
        TaggedCids {
            key: self.clone(),
            route,
        }
    }
}

/// Issues [`CID_LEN`]-byte connection IDs that name their endpoint.
pub(crate) struct TaggedCids {
    key: CidKey,
    route: Route,
}

impl ConnectionIdGenerator for TaggedCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut cid = [0u8; CID_LEN];
        rand::fill(&mut cid[..8]);
        match self.route {
            Route::Direct => cid[0] |= 1,
            Route::Quinn => cid[0] &= !1,
        }
        let mac = self.key.mac(&cid[..8]);
        cid[8..].copy_from_slice(&mac);
        ConnectionId::new(&cid)
    }

    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        match self.key.issuer(cid) {
            Some(r) if r == self.route => Ok(()),
            _ => Err(InvalidCid),
        }
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// Where `datagram` goes. With `direct` off every datagram goes to quinn.
pub(crate) fn route(datagram: &[u8], key: &CidKey, direct: bool) -> Route {
    if !direct {
        return Route::Quinn;
    }
    let Some(&first) = datagram.first() else {
        return Route::Quinn;
    };
    let dcid = if first & 0x80 == 0 {
        // Short header: the ID follows the first byte, at the length we issue.
        datagram.get(1..1 + CID_LEN)
    } else {
        // Long header: flags, version (4), ID length, ID.
        datagram
            .get(5)
            .and_then(|&len| datagram.get(6..6 + len as usize))
    };
    let Some(dcid) = dcid else {
        return Route::Quinn;
    };
    if let Some(issuer) = key.issuer(dcid) {
        return issuer;
    }
    // A first flight: the client chose the ID.
    if first & 0x80 != 0 && dcid.len() == NATIVE_CID_LEN && dcid.ends_with(&NATIVE_CID_SUFFIX) {
        Route::Direct
    } else {
        Route::Quinn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(dcid: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0, 0, 0, 0, 1, dcid.len() as u8];
        p.extend_from_slice(dcid);
        p.extend_from_slice(&[8, 1, 2, 3, 4, 5, 6, 7, 8]);
        p.resize(1200, 0);
        p
    }

    fn short(dcid: &[u8]) -> Vec<u8> {
        let mut p = vec![0x40];
        p.extend_from_slice(dcid);
        p.extend_from_slice(&[0; 40]);
        p
    }

    #[test]
    fn issued_ids_route_to_their_endpoint_in_either_header() {
        let key = CidKey::new();
        for route_to in [Route::Direct, Route::Quinn] {
            let mut g = key.generator(route_to);
            for _ in 0..100 {
                let cid = g.generate_cid();
                assert_eq!(cid.len(), CID_LEN);
                assert!(g.validate(&cid).is_ok());
                assert_eq!(route(&short(&cid), &key, true), route_to);
                assert_eq!(route(&long(&cid), &key, true), route_to);
            }
        }
    }

    #[test]
    fn first_flights_route_by_the_native_suffix() {
        let key = CidKey::new();
        let mut native = [7u8; NATIVE_CID_LEN];
        native[16..].copy_from_slice(&NATIVE_CID_SUFFIX);
        assert_eq!(route(&long(&native), &key, true), Route::Direct);
        // A browser's 8-byte ID, a third-party 20-byte one, a bare suffix.
        assert_eq!(route(&long(&[3; 8]), &key, true), Route::Quinn);
        assert_eq!(route(&long(&[3; 20]), &key, true), Route::Quinn);
        assert_eq!(route(&long(&NATIVE_CID_SUFFIX), &key, true), Route::Quinn);
        // With the direct endpoint off, nothing goes there.
        assert_eq!(route(&long(&native), &key, false), Route::Quinn);
    }

    #[test]
    fn ids_of_another_node_or_garbage_go_to_quinn() {
        let ours = CidKey::new();
        let theirs = CidKey::new();
        let cid = theirs.generator(Route::Direct).generate_cid();
        assert_eq!(route(&short(&cid), &ours, true), Route::Quinn);
        assert_eq!(route(&[], &ours, true), Route::Quinn);
        assert_eq!(route(&[0xc0, 0, 0], &ours, true), Route::Quinn);
        assert_eq!(route(&[0x40, 1, 2], &ours, true), Route::Quinn);
        // A long header whose ID length runs past the datagram.
        assert_eq!(
            route(&[0xc0, 0, 0, 0, 1, 200, 1], &ours, true),
            Route::Quinn
        );
    }
}
