//! Socket set-up and tear-down that both servers share: the listening
//! socket, the options of an accepted connection, and the end of a graceful
//! close.

use std::io::{self, ErrorKind, IoSlice};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Duration;

/// Connects to the first address of `addr` that answers within `timeout`
/// (each address gets the whole timeout), as both clients do.
pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(ErrorKind::InvalidInput, "no address to connect to");
    for candidate in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// How every server ends a connection once the core says so. Graceful: FIN
/// after the last bytes, and what the peer already sent taken (up to 64 KiB,
/// without blocking), so that closing does not turn into a reset that could
/// destroy our BYE in the peer's receive buffer; leaves the socket
/// non-blocking. Otherwise a reset (SO_LINGER 0), dropping whatever the
/// kernel still buffers for the peer.
pub fn close_connection(socket: &impl AsFd, graceful: bool) {
    let socket = socket2::SockRef::from(socket);
    if !graceful {
        let _ = socket.set_linger(Some(Duration::ZERO));
        return;
    }
    let _ = socket.shutdown(Shutdown::Write);
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    for _ in 0..16 {
        match socket.recv(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// Kernel send buffer requested for every accepted connection (Linux
/// doubles it). Output the kernel holds is beyond the core's pacing: with
/// the default autotuning (up to 4 MiB on loopback) an honest client's echo
/// waited behind megabytes of a flood (p99 5-7 ms); with 64 KiB, 1.3 ms, at
/// the same fan-out throughput (docs/BENCHMARKS.md).
pub const SEND_BUFFER: usize = 64 * 1024;

/// Socket options for an accepted connection, in every server: no Nagle
/// delay, and a bounded kernel send buffer ([`SEND_BUFFER`]). Takes any
/// socket (a `std` or a tokio `TcpStream`).
pub fn tune_accepted(stream: &impl AsFd) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_nodelay(true)?;
    socket.set_send_buffer_size(SEND_BUFFER)
}

/// Binds a listening socket with a backlog deep enough for connect storms
/// (std's `TcpListener::bind` uses 128) and `SO_REUSEADDR`, so a restarted
/// server can bind while old connections linger in TIME_WAIT.
pub fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        let attempt = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(4096)?;
            Ok::<_, io::Error>(TcpListener::from(socket))
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address to bind")))
}

/// Average run length below which [`coalesce`] gathers a write's runs.
const SMALL_RUN: usize = 512;

/// Prepares the runs of one vectored write (`Server::outbound_vectored`):
/// when there are several and they are small on average (lines shared with
/// other queues, one run each), copies them into `scratch` and leaves that
/// as the only run. The kernel copies every byte into the socket anyway,
/// but it pays per run, and many runs of one line each cost more than this
/// copy. Returns how many runs to write: 1 after gathering (at most
/// `runs.len()` × 512 bytes), else `runs.len()`.
pub fn coalesce<'a>(runs: &mut [IoSlice<'a>], scratch: &'a mut Vec<u8>) -> usize {
    let total: usize = runs.iter().map(|run| run.len()).sum();
    if runs.len() < 4 || total > runs.len() * SMALL_RUN {
        return runs.len();
    }
    scratch.clear();
    for run in runs.iter() {
        scratch.extend_from_slice(run);
    }
    let gathered: &'a [u8] = scratch;
    if let Some(first) = runs.first_mut() {
        *first = IoSlice::new(gathered);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_small_runs_are_gathered_and_large_ones_left_alone() {
        let lines: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i; 70]).collect();
        let mut runs: Vec<IoSlice<'_>> = lines.iter().map(|l| IoSlice::new(l)).collect();
        let mut scratch = Vec::new();
        assert_eq!(coalesce(&mut runs, &mut scratch), 1);
        assert_eq!(&*runs[0], &lines.concat()[..]);

        let big = vec![b'x'; 4096];
        let mut runs = vec![
            IoSlice::new(&big),
            IoSlice::new(&lines[0]),
            IoSlice::new(&big),
            IoSlice::new(&lines[1]),
        ];
        let mut scratch = Vec::new();
        assert_eq!(
            coalesce(&mut runs, &mut scratch),
            4,
            "large on average: written as they are"
        );
        assert!(scratch.is_empty());

        let mut runs = vec![IoSlice::new(&lines[0]), IoSlice::new(&lines[1])];
        assert_eq!(
            coalesce(&mut runs, &mut scratch),
            2,
            "a few runs: not worth a copy"
        );
    }
}
