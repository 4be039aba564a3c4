//! The player port's UDP socket, bound with kernel buffers sized for a
//! tick's burst (see `GatewaySettings::socket_buffer_bytes`): every room
//! sends its members a datagram at once, and the acks come back together;
//! and what the kernel dropped on it, which nothing else in the node sees.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, Opts};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::OnceLock;

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

/// `anthill_player_port_drops_total`: packets the kernel dropped on the
/// player port because its receive buffer was full, read from
/// `/proc/net/udp` and `/proc/net/udp6` at scrape time (Linux; 0 elsewhere
/// and before the port is bound).
pub(crate) struct PortDrops {
    port: OnceLock<u16>,
    counter: IntCounter,
}

impl PortDrops {
    pub(crate) fn new() -> PortDrops {
        PortDrops {
            port: OnceLock::new(),
            counter: IntCounter::with_opts(Opts::new(
                "anthill_player_port_drops_total",
                "Packets the kernel dropped on the player port (receive buffer full; see gateway.socket_buffer_bytes).",
            ))
            .expect("a valid metric"),
        }
    }

    /// The port is bound: count its drops from now on.
    pub(crate) fn watch(&self, port: u16) {
        let _ = self.port.set(port);
    }

    fn read(&self) -> u64 {
        let Some(port) = self.port.get() else {
            return 0;
        };
        ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .map(|table| drops_on(&table, *port))
            .sum()
    }
}

/// The `drops` of the sockets bound to `port` in a `/proc/net/udp` table:
/// `sl local_address rem_address st … drops`, the address as `HEXIP:HEXPORT`.
fn drops_on(table: &str, port: u16) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            (u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.last()?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

impl Collector for PortDrops {
    fn desc(&self) -> Vec<&Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.counter.reset();
        self.counter.inc_by(self.read());
        self.counter.collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn drops_are_read_for_the_port_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 0100007F:1CB7 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17
  102: 0100007F:1CB8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 99
";
        assert_eq!(super::drops_on(table, 0x1cb7), 17);
        assert_eq!(super::drops_on(table, 0x1cb8), 99);
        assert_eq!(super::drops_on(table, 7), 0);
    }
}
