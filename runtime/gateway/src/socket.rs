//! The player port's UDP socket, bound with kernel buffers sized for a
//! tick's burst (see `GatewaySettings::socket_buffer_bytes`): every room
//! sends its members a datagram at once, and the acks come back together.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// A UDP socket bound to `addr` with `buffer` bytes of receive and send
/// buffer asked for; warns when the kernel grants less.
pub(crate) fn player_socket(
    addr: SocketAddr,
    buffer: usize,
) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // As quinn's own binding does: an IPv6 wildcard takes IPv4 too.
        let _ = socket.set_only_v6(false);
    }
    socket.set_recv_buffer_size(buffer)?;
    socket.set_send_buffer_size(buffer)?;
    // Linux reports twice what it keeps for its own bookkeeping.
    let granted = socket.recv_buffer_size()? / 2;
    if granted < buffer {
        tracing::warn!(
            asked = buffer,
            granted,
            "the player port's receive buffer is smaller than gateway.socket_buffer_bytes: \
             under load the kernel drops packets (raise net.core.rmem_max and net.core.wmem_max)"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
