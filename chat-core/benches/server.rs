//! The server core alone, no I/O: one SAY fanned out to 1,000 registered
//! clients, and a mixed workload. Throughput is in deliveries (recipient
//! frames queued) per second.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use chat_core::{ClientFrame, ConnId, Name, Server, ServerConfig, Text};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CLIENTS: usize = 1000;

fn registered_server(now: Instant) -> (Server, Vec<ConnId>) {
    let mut server = Server::new(ServerConfig {
        max_clients: CLIENTS + 1,
        ..ServerConfig::default()
    });
    let mut conns = Vec::new();
    for i in 0..CLIENTS {
        let conn = server.handle_accept(now);
        let hello = ClientFrame::Hello {
            name: Name::new(&format!("user{i}")).unwrap(),
        };
        server.handle_input(now, conn, &hello.to_bytes());
        conns.push(conn);
    }
    drain(&mut server, &conns, now);
    (server, conns)
}

/// Plays a runtime whose sockets take everything at once.
fn drain(server: &mut Server, conns: &[ConnId], now: Instant) {
    while server.poll_transmit().is_some() {}
    while server.poll_event().is_some() {}
    for &conn in conns {
        // Own frames first, then the shared feed: until nothing is left.
        loop {
            let n = server.outbound(conn).len();
            if n == 0 {
                break;
            }
            black_box(server.outbound(conn));
            server.handle_written(now, conn, n);
        }
    }
}

fn fanout(c: &mut Criterion) {
    let now = Instant::now();
    let (mut server, conns) = registered_server(now);
    let say = ClientFrame::Say {
        text: Text::new("x".repeat(64)).unwrap(),
    }
    .to_bytes();
    // 16 SAYs per round before the queues are drained, as a busy loop turn would.
    let per_round = 16;
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements((per_round * CLIENTS) as u64));
    group.bench_function("fanout_say64_to_1000", |b| {
        b.iter(|| {
            for i in 0..per_round {
                server.handle_input(now, conns[i % conns.len()], &say);
            }
            drain(&mut server, &conns, now);
        })
    });
    let mut mixed = Vec::new();
    for frame in [
        ClientFrame::Say {
            text: Text::new("hello there, everyone").unwrap(),
        },
        ClientFrame::Whisper {
            to: Name::new("user7").unwrap(),
            text: Text::new("psst").unwrap(),
        },
        ClientFrame::Ping { token: 9 },
        ClientFrame::Say {
            text: Text::new("x".repeat(200)).unwrap(),
        },
    ] {
        frame.encode(&mut mixed);
    }
    // Two SAYs reach everyone, the whisper one user, the ping its sender.
    group.throughput(Throughput::Elements((2 * CLIENTS + 2) as u64));
    group.bench_function("mixed_say_whisper_ping", |b| {
        b.iter(|| {
            server.handle_input(now, conns[3], &mixed);
            drain(&mut server, &conns, now);
        })
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
