//! Codec throughput: deframing plus parsing and validation of client frames, and
//! encoding of the same frames.
//!
//! Run with `cargo bench -p sansio-chat-core --bench codec`. The target for decoding is
//! at least 1 GiB/s.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;

use chat_core::codec::Deframer;
use chat_core::frame::RawClientFrame;
use chat_core::validate_text;
use chat_core::{ClientFrame, Name, Text};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Size of the streams decoded in one iteration.
const STREAM_BYTES: usize = 1 << 20;

/// Size of one read handed to the deframer.
const CHUNK: usize = 64 << 10;

/// A 64-byte text, all printable ASCII.
fn text64() -> Text {
    Text::new("The quick brown fox jumps over the lazy dog; 0123456789 abcdefgh").unwrap()
}

/// SAY frames of 64-byte texts, about `STREAM_BYTES` of them.
fn say_frames() -> Vec<ClientFrame> {
    let say = ClientFrame::Say { text: text64() };
    let n = STREAM_BYTES / say.to_bytes().len();
    vec![say; n]
}

/// Every client frame kind in turn, with texts of several lengths and scripts,
/// about `STREAM_BYTES` of them.
fn mixed_frames() -> Vec<ClientFrame> {
    let names = [
        Name::new("alice").unwrap(),
        Name::new("Bob_the-Builder").unwrap(),
        Name::new("abcdefghijklmnopqrstuvwxyz012345").unwrap(),
    ];
    let texts = [
        Text::new("hi").unwrap(),
        text64(),
        Text::new("héllo wörld ✓ 🎉\tand a tab\nand a line ".repeat(8)).unwrap(),
        Text::new("x".repeat(1000)).unwrap(),
    ];
    let mut frames = Vec::new();
    let mut size = 0;
    let mut i = 0usize;
    while size < STREAM_BYTES {
        let name = names[i % names.len()];
        let text = texts[i % texts.len()].clone();
        let frame = match i % 7 {
            0 => ClientFrame::Hello { name },
            1 => ClientFrame::Say { text },
            2 => ClientFrame::Whisper { to: name, text },
            3 => ClientFrame::Who,
            4 => ClientFrame::Ping { token: i as u64 },
            5 => ClientFrame::Pong { token: i as u64 },
            _ => ClientFrame::Bye,
        };
        size += frame.to_bytes().len();
        frames.push(frame);
        i += 1;
    }
    frames
}

fn encode_all(frames: &[ClientFrame], out: &mut Vec<u8>) {
    out.clear();
    for frame in frames {
        frame.encode(out);
    }
}

/// Deframes `stream` in `CHUNK`-sized reads, parses every frame and validates
/// its names and texts without allocating, as the server's hot path does.
/// Returns the number of valid frames.
fn decode_raw(stream: &[u8]) -> usize {
    let mut deframer = Deframer::new();
    let mut valid = 0;
    for chunk in stream.chunks(CHUNK) {
        let mut input = chunk;
        while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
            let ok = match RawClientFrame::parse(frame).unwrap() {
                RawClientFrame::Say { text } => validate_text(text).is_ok(),
                RawClientFrame::Whisper { to, text } => {
                    validate_text(text).is_ok() && Name::from_bytes(to).is_ok()
                }
                RawClientFrame::Hello { name } => Name::from_bytes(name).is_ok(),
                RawClientFrame::Who
                | RawClientFrame::Ping { .. }
                | RawClientFrame::Pong { .. }
                | RawClientFrame::Bye => true,
            };
            valid += usize::from(ok);
        }
    }
    deframer.finish().unwrap();
    valid
}

/// Deframing and structural parsing only, no name or text validation: the
/// framing layer's share of `decode_raw`.
fn decode_structure(stream: &[u8]) -> usize {
    let mut deframer = Deframer::new();
    let mut frames = 0;
    for chunk in stream.chunks(CHUNK) {
        let mut input = chunk;
        while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
            black_box(RawClientFrame::parse(frame).unwrap());
            frames += 1;
        }
    }
    deframer.finish().unwrap();
    frames
}

/// The same, decoding into owned typed frames (`ClientFrame::decode`).
fn decode_typed(stream: &[u8]) -> usize {
    let mut deframer = Deframer::new();
    let mut valid = 0;
    for chunk in stream.chunks(CHUNK) {
        let mut input = chunk;
        while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
            let frame = ClientFrame::decode(frame).unwrap();
            valid += usize::from(black_box(&frame) != &ClientFrame::Who);
        }
    }
    deframer.finish().unwrap();
    valid
}

fn bench_stream(c: &mut Criterion, label: &str, frames: &[ClientFrame]) {
    let mut stream = Vec::new();
    encode_all(frames, &mut stream);
    let bytes = stream.len() as u64;
    assert_eq!(decode_raw(&stream), frames.len());

    let mut group = c.benchmark_group(format!("codec/{label}"));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("decode_raw", |b| {
        b.iter(|| decode_raw(black_box(&stream)));
    });
    group.bench_function("decode_structure", |b| {
        b.iter(|| decode_structure(black_box(&stream)));
    });
    group.bench_function("decode_typed", |b| {
        b.iter(|| decode_typed(black_box(&stream)));
    });
    let mut out = Vec::with_capacity(stream.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            encode_all(black_box(frames), &mut out);
            out.len()
        });
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_stream(c, "say64", &say_frames());
    bench_stream(c, "mixed", &mixed_frames());
}

criterion_group!(benches, codec);
criterion_main!(benches);
