//! The streamed pull (version 8): one sync request answered by a stream of frames, each a whole
//! page (a `SyncResponse` as a version 7 server sends it alone), so the phone commits each as it
//! arrives and a cut link loses only the frame in flight. Each frame is compressed on its own:
//! one zstd stream across the caseload would compress a little better, but its encoder state
//! (megabytes at level 9) would stay on the server for as long as a 2G phone takes to read,
//! which is what a slow reader must not hold.
//!
//! The body: `STREAM_MAGIC`, then frames of a little-endian `u32` length and that many bytes
//! (a kind byte, then the message), then a zero length, which says the stream ended as the
//! server meant it to. See PROTOCOL.md.

use crate::error::{Error, Result};

use super::SYNC_BODY_BYTES_MAX;

/// How a streamed body starts. A single response starts with zstd's magic number (28 b5 2f fd),
/// so the first four bytes tell the two apart.
pub const STREAM_MAGIC: &[u8; 4] = b"SVS8";
/// The version from which a sync request is answered as a stream.
pub const STREAM_VERSION: u16 = 8;
/// Largest frame: a page's compressed body (and its kind byte), bounded as a single response is.
pub const FRAME_BYTES_MAX: usize = SYNC_BODY_BYTES_MAX + 1;
/// The end of a stream: a frame of no bytes.
pub const STREAM_END: [u8; 4] = [0; 4];

/// What a frame carries: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A page: a `SyncResponse`, compressed as a single reply is.
    Page = 1,
    /// List rows sent ahead of the histories at a first sync: a `CaseRows`, compressed.
    Rows = 2,
}

/// A frame as it arrived: its kind byte (an unknown one is skipped by the reader's caller) and
/// its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn is(&self, kind: FrameKind) -> bool {
        self.kind == kind as u8
    }
}

/// A frame as it goes on the wire: its length, its kind, then its message.
pub fn frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    // A message is at most `FRAME_BYTES_MAX`, far below u32::MAX.
    out.extend_from_slice(&(body.len() as u32 + 1).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    out
}

/// A whole stream of pages, ended: what a server sends, in one piece.
pub fn stream(pages: &[Vec<u8>]) -> Vec<u8> {
    stream_of(
        &pages
            .iter()
            .map(|p| (FrameKind::Page, p.clone()))
            .collect::<Vec<_>>(),
    )
}

/// A whole stream of the frames given, ended.
pub fn stream_of(frames: &[(FrameKind, Vec<u8>)]) -> Vec<u8> {
    let mut out = STREAM_MAGIC.to_vec();
    for (kind, body) in frames {
        out.extend(frame(*kind, body));
    }
    out.extend_from_slice(&STREAM_END);
    out
}

/// Whether a reply body (or its first bytes) is a stream.
pub fn is_stream(start: &[u8]) -> bool {
    start.starts_with(STREAM_MAGIC)
}

/// The pages of a whole reply body: a stream's pages (it must have ended; other frames left
/// out), or a single response as its one page. For tools and tests that read a reply whole.
pub fn pages(body: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !is_stream(body) {
        return Ok(vec![body.to_vec()]);
    }
    let mut reader = FrameReader::new();
    reader.feed(body)?;
    let mut pages = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        if frame.is(FrameKind::Page) {
            pages.push(frame.body);
        }
    }
    if !reader.ended() {
        return Err(Error::Protocol("the stream was cut".into()));
    }
    Ok(pages)
}

/// Reads a stream as its bytes arrive, in pieces of any size: `feed` what came, then take each
/// whole frame with `next_frame` (frames before a bad one are handed out first, so they can be
/// committed). A frame's length is checked before its bytes are waited for, so a server
/// announcing a gigabyte costs nothing; bytes after the end are refused.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes received and not yet handed out: the magic, a length, or a frame's start.
    pending: Vec<u8>,
    magic_read: bool,
    ended: bool,
    frames: usize,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if self.ended && !bytes.is_empty() {
            return Err(after_end());
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole frame, or `None` until more bytes come (or after the end).
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.ended {
            return if self.pending.is_empty() {
                Ok(None)
            } else {
                Err(after_end())
            };
        }
        if !self.magic_read {
            if self.pending.len() < STREAM_MAGIC.len() {
                return Ok(None);
            }
            if !is_stream(&self.pending) {
                return Err(Error::Protocol("not a sync stream".into()));
            }
            self.pending.drain(..STREAM_MAGIC.len());
            self.magic_read = true;
        }
        if self.pending.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([
            self.pending[0],
            self.pending[1],
            self.pending[2],
            self.pending[3],
        ]) as usize;
        if len > FRAME_BYTES_MAX {
            return Err(Error::Protocol(format!(
                "a frame of {len} bytes, larger than {FRAME_BYTES_MAX}"
            )));
        }
        if len == 0 {
            self.pending.drain(..4);
            self.ended = true;
            return self.next_frame();
        }
        if self.pending.len() < 4 + len {
            return Ok(None);
        }
        let rest = self.pending.split_off(4 + len);
        let mut body = std::mem::replace(&mut self.pending, rest);
        let kind = body[4];
        body.drain(..5);
        self.frames += 1;
        Ok(Some(Frame { kind, body }))
    }

    /// Whether the server's end marker arrived: a stream without it was cut.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> usize {
        self.frames
    }
}

fn after_end() -> Error {
    Error::Protocol("bytes after the end of the stream".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_cut() {
        let bodies = vec![vec![1u8; 10], vec![2u8; 300], vec![3u8; 1]];
        let wire = stream(&bodies);
        for piece in [1, 2, 3, 5, 7, 64, wire.len()] {
            let mut reader = FrameReader::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                reader.feed(chunk).unwrap();
                while let Some(frame) = reader.next_frame().unwrap() {
                    assert!(frame.is(FrameKind::Page));
                    got.push(frame.body);
                }
            }
            assert_eq!(got, bodies, "pieces of {piece} bytes");
            assert!(reader.ended());
            assert_eq!(reader.frames(), 3);
        }
    }

    fn all(reader: &mut FrameReader, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        reader.feed(bytes)?;
        let mut got = Vec::new();
        while let Some(frame) = reader.next_frame()? {
            got.push(frame.body);
        }
        Ok(got)
    }

    #[test]
    fn a_cut_stream_hands_out_the_whole_frames_and_is_not_ended() {
        let bodies = vec![vec![1u8; 10], vec![2u8; 300]];
        let wire = stream(&bodies);
        // Cut inside the second frame: the first only.
        let mut reader = FrameReader::new();
        assert_eq!(
            all(&mut reader, &wire[..4 + 5 + 10 + 5 + 100]).unwrap(),
            vec![bodies[0].clone()]
        );
        assert!(!reader.ended());
        // Cut between the last frame and the end marker: both, not ended.
        let mut reader = FrameReader::new();
        assert_eq!(all(&mut reader, &wire[..wire.len() - 4]).unwrap(), bodies);
        assert!(!reader.ended());
    }

    #[test]
    fn hostile_streams_are_refused_before_their_bytes_are_kept() {
        // A single response is not a stream.
        let single =
            crate::protocol::encode(&crate::protocol::SyncResponse::nothing_new(0, 0)).unwrap();
        assert!(!is_stream(&single));
        assert!(all(&mut FrameReader::new(), &single).is_err());
        // A frame announced larger than any page.
        let mut huge = STREAM_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = FrameReader::new();
        let err = all(&mut reader, &huge).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
        assert!(reader.pending.capacity() < 1024);
        // Bytes after the end, in the same piece or a later one.
        // Frames before a bad one still come out.
        let mut after = stream(&[vec![1]]);
        after.push(9);
        let mut reader = FrameReader::new();
        reader.feed(&after).unwrap();
        assert_eq!(reader.next_frame().unwrap().map(|f| f.body), Some(vec![1]));
        assert!(reader.next_frame().is_err());
        let mut reader = FrameReader::new();
        all(&mut reader, &stream(&[vec![1]])).unwrap();
        assert!(reader.feed(&[0]).is_err());
    }
}
