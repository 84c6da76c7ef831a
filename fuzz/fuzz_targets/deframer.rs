//! Split-invariance of the deframer.
//!
//! Input layout: `k = data[0] % 32`, then `k` chunk-size bytes, then the byte
//! stream. The stream is fed to one deframer whole and to another in chunks
//! whose sizes cycle through the size bytes (a size byte `b < 0xf0` is `b`
//! bytes, so 0 is an empty read; `b >= 0xf0` is `(b - 0xef)` KiB). Both must
//! yield the same frames and end the same way (same error, or the same
//! unfinished tail), and each must keep the deframer's invariants on the way.

#![no_main]

use chat_core::codec::{Deframer, HEADER_LEN};
use chat_core::{ClientFrame, FrameError, MAX_FRAME, ServerFrame};
use libfuzzer_sys::fuzz_target;

/// What a deframer made of a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(u8, Vec<u8>)>,
    end: Result<(), FrameError>,
}

fn deframe(chunks: &[&[u8]]) -> Outcome {
    let mut deframer = Deframer::new();
    let mut frames = Vec::new();
    let mut error = None;
    for &chunk in chunks {
        let mut input = chunk;
        if let Some(error) = error {
            // Sticky: the same error again, and no byte taken.
            assert_eq!(deframer.next_frame(&mut input), Err(error));
            assert_eq!(input.len(), chunk.len());
            continue;
        }
        loop {
            match deframer.next_frame(&mut input) {
                Ok(Some(frame)) => {
                    assert!(
                        frame.payload.len() < MAX_FRAME,
                        "op + payload within MAX_FRAME"
                    );
                    frames.push((frame.op, frame.payload.to_vec()));
                }
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left over");
                    if deframer.buffered() == 0 {
                        assert_eq!(deframer.capacity(), 0, "idle deframer holds memory");
                    }
                    break;
                }
                Err(e) => {
                    assert!(deframer.is_failed());
                    let left = input;
                    assert_eq!(deframer.next_frame(&mut input), Err(e));
                    assert_eq!(input, left);
                    error = Some(e);
                    break;
                }
            }
        }
        assert!(deframer.buffered() <= HEADER_LEN + MAX_FRAME + chunk.len());
    }
    let end = deframer.finish();
    match error {
        Some(e) => assert_eq!(end, Err(e)),
        None => match deframer.buffered() {
            0 => assert_eq!(end, Ok(())),
            buffered => assert_eq!(end, Err(FrameError::Truncated { buffered })),
        },
    }
    Outcome { frames, end }
}

fn chunk_size(b: u8) -> usize {
    if b >= 0xf0 {
        usize::from(b - 0xef) * 1024
    } else {
        usize::from(b)
    }
}

fn split<'a>(mut stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    if sizes.iter().all(|&b| chunk_size(b) == 0) {
        chunks.extend(sizes.iter().map(|_| &[][..]));
        chunks.push(stream);
        return chunks;
    }
    for &b in sizes.iter().cycle() {
        if stream.is_empty() {
            break;
        }
        let (chunk, rest) = stream.split_at(chunk_size(b).min(stream.len()));
        chunks.push(chunk);
        stream = rest;
    }
    chunks
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 32).min(rest.len());
    let (sizes, stream) = rest.split_at(k);

    let whole = deframe(&[stream]);
    let chunked = deframe(&split(stream, sizes));
    assert_eq!(
        chunked, whole,
        "the stream's meaning depends on how it was cut"
    );

    // Typed decoding of whatever the deframer hands out is total.
    for (op, payload) in &whole.frames {
        let frame = chat_core::codec::RawFrame { op: *op, payload };
        let _ = ClientFrame::decode(frame);
        let _ = ServerFrame::decode(frame);
    }
});
