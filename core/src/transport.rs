//! The HTTP transport. Sync logic talks to a `Transport`, so tests can put a fake or faulty
//! network in its place; `HttpTransport` is reqwest with rustls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{self, ErrorBody};

/// Cancels a running sync from another thread. The sync stops before its next request, or at
/// once if it is waiting on the network; pages committed before stay committed.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(super) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
}

/// A device's credential as the server issued it at enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub device_id: String,
    pub token: String,
}

impl Credentials {
    pub fn header(&self) -> String {
        format!("Bearer {}.{}", self.device_id, self.token)
    }
}

#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

pub trait Transport {
    /// POSTs a body; `Err(Offline)` when the server cannot be reached or the link drops.
    fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
    ) -> Result<HttpReply>;

    /// `post`, given up on with `Err(Cancelled)` once `cancel` is set. This default checks
    /// before sending only; a network transport returns while still waiting on the server.
    fn post_cancellable(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
        cancel: &Cancel,
    ) -> Result<HttpReply> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        self.post(path, content_type, body, credentials)
    }

    /// POSTs a body and hands its reply to `read` as it arrives: the status with each piece of
    /// the body, in order. A version 8 server streams a sync's pages, and the phone commits
    /// each as it completes, so a cut keeps what arrived whole. This default hands over the
    /// whole reply at once (the in-process and scripted transports of tests); an error from
    /// `read` ends the request.
    fn post_streamed(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
        cancel: &Cancel,
        read: &mut dyn FnMut(u16, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let reply = self.post_cancellable(path, content_type, body, credentials, cancel)?;
        read(reply.status, &reply.body)
    }
}

/// How often a cancellable request looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Round trips on EDGE take seconds; a dead link must still end a sync in bounded time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

pub struct HttpTransport {
    base: String,
    client: reqwest::blocking::Client,
}

impl HttpTransport {
    pub fn new(base: &str) -> Result<HttpTransport> {
        Self::with_root_certificate(base, None)
    }

    /// Also trusts a project's own certificate authority (PEM), for a server whose certificate
    /// is not signed by a public one.
    pub fn with_root_certificate(base: &str, ca_pem: Option<&[u8]>) -> Result<HttpTransport> {
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("suivi/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::InvalidInput(format!("CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(Error::InvalidInput(
                    "CA certificate: no certificate in the PEM".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| Error::Offline(e.to_string()))?;
        Ok(HttpTransport {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }
}

impl HttpTransport {
    fn request(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
    ) -> reqwest::blocking::RequestBuilder {
        let mut request = self
            .client
            .post(format!("{}{}", self.base, path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(c) = credentials {
            request = request.header(reqwest::header::AUTHORIZATION, c.header());
        }
        request
    }
}

/// Largest response body read: the largest sync body (an enrollment or error reply is far
/// smaller). A server is untrusted input: its body is read under this cap as it streams, so a
/// gigabyte answer costs the phone at most this much memory.
pub const RESPONSE_BYTES_MAX: usize = crate::protocol::SYNC_BODY_BYTES_MAX;

pub(crate) fn too_large() -> Error {
    Error::Protocol(format!(
        "the server's response is larger than {RESPONSE_BYTES_MAX} bytes"
    ))
}

impl Transport for HttpTransport {
    fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
    ) -> Result<HttpReply> {
        self.post_cancellable(path, content_type, body, credentials, &Cancel::default())
    }

    /// The reply read whole, under `RESPONSE_BYTES_MAX` as it arrives; a cancel returns at once
    /// (the request's thread stops at its next piece; nothing was committed from it).
    fn post_cancellable(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
        cancel: &Cancel,
    ) -> Result<HttpReply> {
        let mut reply = HttpReply {
            status: 0,
            body: Vec::new(),
        };
        self.post_streamed(
            path,
            content_type,
            body,
            credentials,
            cancel,
            &mut |status, bytes| {
                reply.status = status;
                if reply.body.len() + bytes.len() > RESPONSE_BYTES_MAX {
                    return Err(too_large());
                }
                reply.body.extend_from_slice(bytes);
                Ok(())
            },
        )?;
        Ok(reply)
    }

    /// The reply is read on its own thread, in pieces handed to `read` as they come; a cancel
    /// returns at once (the thread stops at its next piece).
    fn post_streamed(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
        cancel: &Cancel,
        read: &mut dyn FnMut(u16, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let request = self.request(path, content_type, body, credentials);
        let (tx, rx) = std::sync::mpsc::sync_channel(PIECES_QUEUED);
        std::thread::Builder::new()
            .name("suivi-stream".into())
            .spawn(move || read_pieces(request, tx))
            .map_err(|e| Error::Offline(format!("cannot start a request thread: {e}")))?;
        loop {
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(Piece::Bytes(status, bytes)) => read(status, &bytes)?,
                Ok(Piece::Done) => return Ok(()),
                Ok(Piece::Failed(e)) => return Err(e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(Error::Cancelled)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Offline("request failed".into()))
                }
            }
        }
    }
}

/// A piece of a reply, from the thread that reads it.
enum Piece {
    Bytes(u16, Vec<u8>),
    Done,
    Failed(Error),
}

/// Bytes read from the network at a time, and pieces queued between the reading thread and
/// the sync: what a stream holds in memory before it is committed, beside the frame itself.
const READ_BYTES: usize = 16 * 1024;
const PIECES_QUEUED: usize = 8;

/// Sends a request and reads its reply in pieces onto `tx`, until the reply ends, the link
/// fails or the receiver is gone (a cancel, or a refused piece). Each read waits at most the
/// client's timeout, so a silent server ends the request.
fn read_pieces(request: reqwest::blocking::RequestBuilder, tx: std::sync::mpsc::SyncSender<Piece>) {
    use std::io::Read;
    let mut response = match request.send() {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Piece::Failed(Error::Offline(without_url(&e))));
            return;
        }
    };
    let status = response.status().as_u16();
    // A body declared larger than any reply is refused unread (a stream declares none).
    if response
        .content_length()
        .is_some_and(|n| n > RESPONSE_BYTES_MAX as u64)
    {
        let _ = tx.send(Piece::Failed(too_large()));
        return;
    }
    // The status first, so an empty body still has one.
    if tx.send(Piece::Bytes(status, Vec::new())).is_err() {
        return;
    }
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        match response.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Piece::Done);
                return;
            }
            Ok(n) => {
                if tx.send(Piece::Bytes(status, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(_) => {
                let _ = tx.send(Piece::Failed(Error::Offline("connection dropped".into())));
                return;
            }
        }
    }
}

/// reqwest's messages include the URL; keep only the kind of failure.
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "connection dropped"
    } else {
        "request failed"
    };
    kind.to_string()
}

pub(crate) fn status_error(reply: &HttpReply) -> Error {
    let body: Option<ErrorBody> = serde_json::from_slice(&reply.body).ok();
    if reply.status == protocol::UPGRADE_REQUIRED_STATUS
        || body
            .as_ref()
            .is_some_and(|b| b.error == protocol::UPGRADE_REQUIRED)
    {
        return Error::UpgradeRequired;
    }
    let message = body
        .map(|b| b.message)
        .unwrap_or_else(|| format!("HTTP {}", reply.status));
    match reply.status {
        401 | 403 => Error::Forbidden(message),
        // Busy or broken server, or a link too slow for the server to wait on (408: a body
        // below the minimum rate): transient, like being offline; the next sync continues.
        408 | 429 | 500..=599 => Error::Offline(message),
        _ => Error::Protocol(message),
    }
}
