//! A reply read as it arrives: a version 8 server's stream of pages, whose frames come out
//! whole as their bytes arrive (each committed by the session before the next is read), or any
//! other body, kept whole under the response cap. Bounded per frame: a frame's length before
//! its bytes, its time to arrive.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::protocol::stream::{self, Frame, FrameReader};
use crate::transport::HttpReply;

/// How long one frame of a stream may take to arrive whole: 64 KB in a minute is a quarter of
/// the slowest 2G link; a server dripping a byte a minute is cut.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(120);

/// A reply as it arrives: a stream of pages (a version 8 server's answer to a sync request),
/// whose frames come out as they complete, or any other body, kept whole (within the response
/// cap) until it ends.
#[derive(Debug, Default)]
pub struct Incoming {
    status: u16,
    started: bool,
    whole: Vec<u8>,
    stream: Option<FrameReader>,
    /// When the frame being received began: the end of the last whole frame.
    frame_since: Option<Instant>,
}

/// How a reply ended.
pub enum Finished {
    /// A stream, ended as the server meant: the frames it held.
    Stream(usize),
    /// Any other reply, whole.
    Whole(HttpReply),
}

impl Incoming {
    /// Takes the next piece of the reply.
    pub fn feed(&mut self, status: u16, bytes: &[u8]) -> Result<()> {
        self.status = status;
        if !self.started {
            self.whole.extend_from_slice(bytes);
            // Four bytes tell a stream from a single body.
            if self.whole.len() < stream::STREAM_MAGIC.len() {
                return Ok(());
            }
            self.started = true;
            if status == 200 && stream::is_stream(&self.whole) {
                let mut reader = FrameReader::new();
                reader.feed(&std::mem::take(&mut self.whole))?;
                self.stream = Some(reader);
                self.frame_since = Some(Instant::now());
            }
            return self.check_whole();
        }
        match &mut self.stream {
            Some(reader) => {
                reader.feed(bytes)?;
                if self
                    .frame_since
                    .is_some_and(|since| since.elapsed() > FRAME_TIMEOUT)
                {
                    return Err(Error::Offline(format!(
                        "a page of the server's stream took longer than {} s: \
                         the pages before it are kept",
                        FRAME_TIMEOUT.as_secs()
                    )));
                }
                Ok(())
            }
            None => {
                self.whole.extend_from_slice(bytes);
                self.check_whole()
            }
        }
    }

    fn check_whole(&self) -> Result<()> {
        if self.whole.len() > crate::transport::RESPONSE_BYTES_MAX {
            return Err(crate::transport::too_large());
        }
        Ok(())
    }

    /// A stream's next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some(reader) = &mut self.stream else {
            return Ok(None);
        };
        let frame = reader.next_frame()?;
        if frame.is_some() {
            self.frame_since = Some(Instant::now());
        }
        Ok(frame)
    }

    /// The reply once it has ended: a stream without its end marker was cut (its whole frames
    /// were committed as they came; the next sync goes on after the last).
    pub fn finish(self) -> Result<Finished> {
        match self.stream {
            Some(reader) if reader.ended() => Ok(Finished::Stream(reader.frames())),
            Some(reader) => Err(Error::Offline(format!(
                "the link dropped during the server's stream, after {} whole pages \
                 (kept; the next sync goes on from there)",
                reader.frames()
            ))),
            None => Ok(Finished::Whole(HttpReply {
                status: self.status,
                body: self.whole,
            })),
        }
    }
}
