//! Length-prefixed framing: the [`Deframer`] that cuts a byte stream into frames.
//!
//! Every frame on the wire is `length: u32 BE`, then `length` bytes: one op byte
//! and the payload. The deframer's invariants:
//!
//! - A header announcing `length == 0` or `length > MAX_FRAME` is a fatal error
//!   the moment its four bytes are in; not one payload byte is buffered for it.
//! - Errors are sticky: after one, every later call returns the same error and
//!   bytes fed in are refused.
//! - Whole frames are parsed straight out of the caller's slice; only the tail of a
//!   read (a partial frame) is copied, so the buffer never holds more than one
//!   frame plus the unparsed rest of the last read. Once emptied, the buffer's
//!   memory is given back, so an idle connection holds none.
//! - "No complete frame yet" ([`Ok(None)`](Deframer::next_frame)) and "the stream
//!   ended" ([`Deframer::finish`]) are different calls: an empty read is never
//!   mistaken for a partial frame.

/// The largest `length` a frame header may announce (op byte plus payload).
pub const MAX_FRAME: usize = 16384;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// A fatal framing error. The stream cannot be resynchronised after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header announced a frame of length 0 (a frame always has an op byte).
    #[error("frame length 0 (a frame needs at least its op byte)")]
    ZeroLength,
    /// The header announced more than [`MAX_FRAME`] bytes.
    #[error("frame length {0} exceeds the maximum of 16384")]
    TooLong(u32),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
}

/// One complete frame, borrowed from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The op byte.
    pub op: u8,
    /// Everything after the op byte.
    pub payload: &'a [u8],
}

/// Checks a frame header and returns the frame's `length` (op plus payload).
pub fn check_header(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let length = u32::from_be_bytes(header);
    match length {
        0 => Err(FrameError::ZeroLength),
        n if n as usize > MAX_FRAME => Err(FrameError::TooLong(n)),
        n => Ok(n as usize),
    }
}

/// Writes a frame header for a frame of `op` plus `payload_len` bytes.
///
/// The caller guarantees `1 + payload_len <= MAX_FRAME`; encoders in this crate
/// only build frames within the limit.
pub fn put_header(out: &mut Vec<u8>, op: u8, payload_len: usize) {
    debug_assert!(payload_len < MAX_FRAME);
    let length = (1 + payload_len) as u32;
    out.extend_from_slice(&length.to_be_bytes());
    out.push(op);
}

/// Splits one frame off the front of `input`: `Ok(Some((frame, rest)))`, or
/// `Ok(None)` when `input` holds no complete frame yet.
fn split_frame(input: &[u8]) -> Result<Option<(RawFrame<'_>, &[u8])>, FrameError> {
    let Some((header, rest)) = input.split_first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let length = check_header(*header)?;
    if rest.len() < length {
        return Ok(None);
    }
    let (body, rest) = rest.split_at(length);
    let Some((&op, payload)) = body.split_first() else {
        return Err(FrameError::ZeroLength);
    };
    Ok(Some((RawFrame { op, payload }, rest)))
}

/// An incremental, allocation-bounded frame decoder for one direction of one
/// connection.
///
/// Drive it by handing each read's bytes to [`next_frame`](Self::next_frame)
/// through a cursor until it returns `Ok(None)`; call [`finish`](Self::finish) at
/// end of stream.
///
/// ```
/// use chat_core::codec::Deframer;
/// let stream = [0, 0, 0, 2, 0x05, 0xaa, 0, 0, 0, 1, 0x04];
/// let mut deframer = Deframer::new();
/// let mut ops = Vec::new();
/// for chunk in stream.chunks(3) {
///     let mut input = chunk;
///     while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
///         ops.push(frame.op);
///     }
/// }
/// assert_eq!(ops, [0x05, 0x04]);
/// assert!(deframer.finish().is_ok());
/// ```
#[derive(Debug, Default)]
pub struct Deframer {
    /// Bytes of an unfinished frame, or of a read not yet consumed.
    buf: Vec<u8>,
    /// How much of `buf` was already handed out as frames.
    consumed: usize,
    error: Option<FrameError>,
}

impl Deframer {
    /// A deframer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the next complete frame, taking bytes from the front of `*input`.
    ///
    /// `Ok(None)` means every byte of `*input` has been taken (kept as the start
    /// of a frame) and no complete frame is left: feed the next read. A frame is
    /// parsed in place from `*input` when nothing is buffered; otherwise just
    /// enough of `*input` is copied to complete the buffered frame.
    ///
    /// Errors are fatal and sticky; once one is returned, `*input` is left as is
    /// and every later call returns it again.
    pub fn next_frame<'s, 'i: 's>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<RawFrame<'s>>, FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.consumed == self.buf.len() {
            // Everything buffered was handed out: start over, memory given back.
            self.buf = Vec::new();
            self.consumed = 0;
        }
        if self.buf.is_empty() {
            // Fast path: parse straight from the caller's bytes.
            let whole: &'i [u8] = input;
            return match split_frame(whole) {
                Ok(Some((frame, rest))) => {
                    *input = rest;
                    Ok(Some(frame))
                }
                Ok(None) => {
                    self.buf.extend_from_slice(whole);
                    *input = &[];
                    Ok(None)
                }
                Err(error) => Err(self.fail(error)),
            };
        }
        // Slow path: complete the buffered frame from the front of `input`.
        let pending = self.buf.len() - self.consumed;
        if pending < HEADER_LEN {
            self.take_from(input, HEADER_LEN - pending);
        }
        let Some(header) = self
            .buf
            .get(self.consumed..)
            .and_then(|pending| pending.first_chunk::<HEADER_LEN>())
        else {
            return Ok(None);
        };
        let length = match check_header(*header) {
            Ok(length) => length,
            Err(error) => return Err(self.fail(error)),
        };
        let missing = (HEADER_LEN + length).saturating_sub(self.buf.len() - self.consumed);
        self.take_from(input, missing);
        if self.buf.len() - self.consumed < HEADER_LEN + length {
            // Still unfinished and `input` is exhausted: keep only this frame.
            self.buf.drain(..self.consumed);
            self.consumed = 0;
            return Ok(None);
        }
        let start = self.consumed + HEADER_LEN;
        self.consumed = start + length;
        let body = crate::in_bounds(&self.buf, start..self.consumed);
        // `length >= 1` was checked, so the body always has its op byte.
        Ok(body
            .split_first()
            .map(|(&op, payload)| RawFrame { op, payload }))
    }

    /// Declares the end of the stream: `Ok(())` if it ended on a frame boundary,
    /// [`FrameError::Truncated`] if it ended inside a frame, or the sticky error.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }

    /// Bytes held that have not been handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Bytes of heap memory the deframer holds.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether a fatal error has occurred.
    pub fn is_failed(&self) -> bool {
        self.error.is_some()
    }

    /// Stores unparsed bytes to be decoded on a later [`next_frame`](Self::next_frame)
    /// call. Used to hold the rest of a read while its connection is paused.
    pub fn stash(&mut self, bytes: &[u8]) {
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        if self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Puts the frame `op` + `payload` (the one just returned) back in front
    /// of everything buffered, to be returned again by the next call: its
    /// connection could not act on it yet. Copies at most one frame plus
    /// what is buffered.
    pub fn unread(&mut self, op: u8, payload: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let rest = crate::in_bounds(&self.buf, self.consumed..);
        let mut buf = Vec::with_capacity(HEADER_LEN + 1 + payload.len() + rest.len());
        put_header(&mut buf, op, payload.len());
        buf.extend_from_slice(payload);
        buf.extend_from_slice(rest);
        self.buf = buf;
        self.consumed = 0;
    }

    /// Moves up to `n` bytes from the front of `input` into the buffer.
    fn take_from(&mut self, input: &mut &[u8], n: usize) {
        let (head, rest) = input.split_at(n.min(input.len()));
        self.buf.extend_from_slice(head);
        *input = rest;
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.error = Some(error);
        self.buf = Vec::new();
        self.consumed = 0;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, op, payload.len());
        out.extend_from_slice(payload);
        out
    }

    /// Feeds `chunks` and collects every frame as (op, payload).
    fn decode_chunks(
        deframer: &mut Deframer,
        chunks: &[&[u8]],
    ) -> Result<Vec<(u8, Vec<u8>)>, FrameError> {
        let mut frames = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            while let Some(f) = deframer.next_frame(&mut input)? {
                frames.push((f.op, f.payload.to_vec()));
            }
            assert!(input.is_empty(), "Ok(None) must mean all input was taken");
        }
        Ok(frames)
    }

    #[test]
    fn whole_split_and_pipelined_frames_decode_alike() {
        let mut stream = frame(0x02, b"hello");
        stream.extend(frame(0x04, b""));
        stream.extend(frame(0x05, &7u64.to_be_bytes()));
        let expected = vec![
            (0x02, b"hello".to_vec()),
            (0x04, vec![]),
            (0x05, 7u64.to_be_bytes().to_vec()),
        ];
        let mut d = Deframer::new();
        assert_eq!(decode_chunks(&mut d, &[&stream]).unwrap(), expected);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let mut d = Deframer::new();
        assert_eq!(decode_chunks(&mut d, &bytes).unwrap(), expected);
        assert_eq!(d.finish(), Ok(()));
        assert_eq!(d.capacity(), 0, "an emptied deframer gives its memory back");
    }

    #[test]
    fn zero_length_fails_on_the_fourth_header_byte() {
        let mut d = Deframer::new();
        assert_eq!(decode_chunks(&mut d, &[&[0, 0, 0]]).unwrap(), vec![]);
        assert_eq!(decode_chunks(&mut d, &[&[0]]), Err(FrameError::ZeroLength));
    }

    #[test]
    fn oversized_length_fails_before_any_payload_is_buffered() {
        let mut d = Deframer::new();
        let header = (MAX_FRAME as u32 + 1).to_be_bytes();
        let mut input: &[u8] = &header;
        assert_eq!(
            d.next_frame(&mut input),
            Err(FrameError::TooLong(MAX_FRAME as u32 + 1))
        );
        assert_eq!(d.capacity(), 0);
        let mut d = Deframer::new();
        assert_eq!(
            decode_chunks(&mut d, &[&[0xff, 0xff], &[0xff, 0xff, 1, 2, 3]]),
            Err(FrameError::TooLong(u32::MAX))
        );
    }

    #[test]
    fn the_largest_frame_is_accepted() {
        let big = frame(0x02, &vec![b'a'; MAX_FRAME - 1]);
        let mut d = Deframer::new();
        let chunks: Vec<&[u8]> = big.chunks(1000).collect();
        let frames = decode_chunks(&mut d, &chunks).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1.len(), MAX_FRAME - 1);
    }

    #[test]
    fn errors_are_sticky_and_refuse_further_bytes() {
        let mut d = Deframer::new();
        assert!(decode_chunks(&mut d, &[&[0, 0, 0, 0]]).is_err());
        let good = frame(0x04, b"");
        let mut input: &[u8] = &good;
        assert_eq!(d.next_frame(&mut input), Err(FrameError::ZeroLength));
        assert_eq!(input.len(), good.len(), "bytes after the error are refused");
        assert_eq!(d.finish(), Err(FrameError::ZeroLength));
    }

    #[test]
    fn end_of_stream_is_distinct_from_no_frame_yet() {
        let mut d = Deframer::new();
        // An empty read is just "nothing yet".
        assert_eq!(decode_chunks(&mut d, &[&[]]).unwrap(), vec![]);
        assert_eq!(d.finish(), Ok(()));
        let f = frame(0x02, b"abc");
        assert_eq!(decode_chunks(&mut d, &[&f[..6]]).unwrap(), vec![]);
        assert_eq!(d.finish(), Err(FrameError::Truncated { buffered: 6 }));
        assert_eq!(decode_chunks(&mut d, &[&f[6..]]).unwrap().len(), 1);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn an_unread_frame_comes_back_first_then_the_stashed_rest() {
        let mut stream = frame(0x02, b"one");
        stream.extend(frame(0x02, b"two"));
        stream.extend(frame(0x04, b""));
        for split in [0, 5, 9, stream.len()] {
            let mut d = Deframer::new();
            let mut first = &stream[..split];
            let mut seen = decode_chunks(&mut d, &[first]).unwrap();
            first = &stream[split..];
            let mut input = first;
            let Some(f) = d.next_frame(&mut input).unwrap() else {
                continue;
            };
            let (op, payload) = (f.op, f.payload.to_vec());
            d.unread(op, &payload);
            d.stash(input);
            seen.extend(decode_chunks(&mut d, &[&[]]).unwrap());
            let ops: Vec<Vec<u8>> = seen.into_iter().map(|(_, p)| p).collect();
            assert_eq!(
                ops,
                [b"one".to_vec(), b"two".to_vec(), vec![]],
                "split {split}"
            );
            assert_eq!(d.finish(), Ok(()));
        }
    }

    #[test]
    fn buffer_never_exceeds_one_frame_plus_one_read() {
        let mut stream = Vec::new();
        for i in 0..50u8 {
            stream.extend(frame(0x02, &vec![b'x'; usize::from(i) * 97]));
        }
        let mut d = Deframer::new();
        for chunk in stream.chunks(777) {
            let mut input = chunk;
            while d.next_frame(&mut input).unwrap().is_some() {}
            assert!(d.buffered() <= HEADER_LEN + MAX_FRAME + chunk.len());
        }
        assert_eq!(d.finish(), Ok(()));
    }
}
