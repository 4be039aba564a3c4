//! A pass's packets to many players in one `sendmmsg` (Linux, through
//! rustix): quinn-udp's `sendmsg` per packet is a system call each, and on
//! a busy host each return from one is a point where the sender is
//! preempted by the receiver it just woke. Only plain IPv4 packets are
//! batched (one datagram, no source address, no ECN mark other than the
//! socket's default ECT(0)); the rest go one by one through quinn-udp,
//! which handles GSO, source addresses, other marks and IPv6.

use std::net::SocketAddrV4;

/// One plain IPv4 packet.
pub(super) struct Plain<'a> {
    pub(super) to: SocketAddrV4,
    pub(super) data: &'a [u8],
}

/// The TOS byte the batched socket marks every packet with: ECT(0), what
/// quinn-proto asks for while ECN works on the path (and harmless once it
/// has given ECN up).
pub(super) const DEFAULT_TOS: u32 = 0b10;

/// Sends `packets` on `socket`; returns how many the kernel took. A packet
/// it refuses (unreachable, too big) is skipped; a full buffer drops the
/// rest, which QUIC's loss recovery resends.
#[cfg(target_os = "linux")]
pub(super) fn send(socket: std::os::fd::BorrowedFd<'_>, packets: &[Plain<'_>]) -> usize {
    use rustix::io::Errno;
    use rustix::net::addr::SocketAddrArg;
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    use std::io::IoSlice;
    let addrs: Vec<SocketAddrAny> = packets.iter().map(|p| p.to.as_any()).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = packets.iter().map(|p| [IoSlice::new(p.data)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = packets
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut msgs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(controls.iter_mut())
        .map(|((a, iov), c)| MMsgHdr::new_with_addr(a, iov, c))
        .collect();
    let mut done = 0;
    while done < msgs.len() {
        match rustix::net::sendmmsg(socket, &mut msgs[done..], SendFlags::empty()) {
            Ok(n) => done += n.max(1),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return done,
            // This packet was refused; the others may still go.
            Err(_) => done += 1,
        }
    }
    done
}
