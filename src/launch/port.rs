//! Choosing an instance's port: an explicit port is checked to be free; port 0 is replaced by
//! one the kernel hands out when binding. The socket is held until just before the process is
//! spawned, and ports given to running instances are never handed out twice.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// How often binding may return a port that a running instance already has before giving up.
const PICK_ATTEMPTS: usize = 16;

/// The ports handed to instances that are still running.
#[derive(Debug, Default)]
pub struct PortBook {
    in_use: Mutex<HashSet<u16>>,
}

/// A chosen port: the bound socket (drop it right before spawning) and the book entry (drop it
/// when the process has exited).
#[derive(Debug)]
pub struct PortReservation {
    pub port: u16,
    pub socket: TcpListener,
    pub lease: PortLease,
}

/// Keeps a port marked as in use until dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    book: Arc<PortBook>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut in_use) = self.book.in_use.lock() {
            in_use.remove(&self.port);
        }
    }
}

impl PortBook {
    /// Reserves `requested` (or a free port when it is 0) on the address instances listen on.
    pub fn reserve(
        self: &Arc<Self>,
        listen: &str,
        requested: u16,
    ) -> Result<PortReservation, String> {
        let ip = bind_ip(listen);
        for _ in 0..PICK_ATTEMPTS {
            let socket = TcpListener::bind(SocketAddr::new(ip, requested)).map_err(|e| {
                if requested == 0 {
                    format!("cannot bind a free port on {ip}: {e}")
                } else {
                    format!(
                        "port {requested} on {ip} is not free ({e}); choose another port or use 0 \
                         to let comfy-fleet pick one"
                    )
                }
            })?;
            let port = socket.local_addr().map_err(|e| e.to_string())?.port();
            let mut in_use = self
                .in_use
                .lock()
                .map_err(|_| "port book poisoned".to_string())?;
            if in_use.insert(port) {
                return Ok(PortReservation {
                    port,
                    socket,
                    lease: PortLease {
                        port,
                        book: Arc::clone(self),
                    },
                });
            }
            if requested != 0 {
                return Err(format!(
                    "port {requested} is already given to another instance"
                ));
            }
        }
        Err("binding kept returning ports that other instances use".into())
    }
}

/// The address to bind when checking a port: the listen address when it is one IP address,
/// else loopback (host names, comma lists).
fn bind_ip(listen: &str) -> IpAddr {
    listen
        .trim()
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The base URL to reach an instance listening on `listen`: an unspecified address
/// (`0.0.0.0`, `::`) or anything but one IP address is reached through loopback.
pub fn url_for(listen: &str, port: u16) -> String {
    match listen.trim().parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{port}"),
        Ok(IpAddr::V6(ip)) => format!("http://[{ip}]:{port}"),
        Ok(IpAddr::V4(ip)) => format!("http://{ip}:{port}"),
        Err(_) => format!("http://127.0.0.1:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_differ_while_held_and_return_after_release() {
        let book = Arc::new(PortBook::default());
        let a = book.reserve("127.0.0.1", 0).unwrap();
        let b = book.reserve("127.0.0.1", 0).unwrap();
        assert_ne!(a.port, b.port);
        assert_ne!(a.port, 0);
        // Socket released (the process would now bind it) but the lease still held: the
        // same port cannot be reserved explicitly.
        let port = a.port;
        drop(a.socket);
        let err = book.reserve("127.0.0.1", port).unwrap_err();
        assert!(err.contains("another instance"), "{err}");
        drop(a.lease);
        assert_eq!(book.reserve("127.0.0.1", port).unwrap().port, port);
    }

    #[test]
    fn a_taken_explicit_port_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = Arc::new(PortBook::default())
            .reserve("127.0.0.1", port)
            .unwrap_err();
        assert!(
            err.contains(&format!("port {port}")) && err.contains("not free"),
            "{err}"
        );
    }

    #[test]
    fn urls_go_through_loopback_unless_a_specific_address_is_given() {
        assert_eq!(url_for("0.0.0.0", 8188), "http://127.0.0.1:8188");
        assert_eq!(url_for("::", 1), "http://127.0.0.1:1");
        assert_eq!(url_for("10.0.0.5", 2), "http://10.0.0.5:2");
        assert_eq!(url_for("::1", 3), "http://[::1]:3");
        assert_eq!(url_for("127.0.0.1,10.0.0.5", 4), "http://127.0.0.1:4");
    }
}
