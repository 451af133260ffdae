//! A phone's link to the in-process server, and what it does to requests as the seed says.

use super::*;
use suivi_core::sync::protocol::stream;

/// A request the link holds back, delivered to the server later.
pub(super) struct Delayed {
    pub(super) path: String,
    pub(super) body: Vec<u8>,
    pub(super) credentials: Option<Credentials>,
}

/// A phone's link to the in-process server: it may lose a request or its reply, hold a request
/// back for later, or deliver it twice, as the seed says.
pub(super) struct Link<'w> {
    pub(super) world: &'w World,
}

impl Transport for Link<'_> {
    fn post(
        &self,
        path: &str,
        _content_type: &str,
        body: Vec<u8>,
        credentials: Option<&Credentials>,
    ) -> suivi_core::Result<HttpReply> {
        let w = self.world;
        let offline = || Error::Offline("the simulated link failed".into());
        let fault = if w.faulty.get() { w.below(100) } else { 99 };
        let deliver = |body: &[u8]| {
            w.deliver(path, body, credentials)
                .map_err(|e| Error::Protocol(format!("simulated server: {e}")))
        };
        let count = |what: &'static str| w.fault(what);
        match fault {
            0..=4 => {
                count("requests lost");
                Err(offline())
            }
            5..=9 => {
                count("requests delayed");
                w.delayed.borrow_mut().push_back(Delayed {
                    path: path.to_string(),
                    body,
                    credentials: credentials.cloned(),
                });
                Err(offline())
            }
            10..=14 => {
                count("replies lost");
                deliver(&body)?;
                Err(offline())
            }
            15..=17 => {
                count("requests duplicated");
                deliver(&body)?;
                deliver(&body)
            }
            // A stream of pages cut at any byte before its end marker: inside a frame, or just
            // after one (what came whole is committed, the sync ends offline).
            18..=20 => {
                let mut reply = deliver(&body)?;
                if reply.status == 200 && stream::is_stream(&reply.body) {
                    count("streams cut mid-frame");
                    let frames_len = reply.body.len() - stream::STREAM_MAGIC.len() - 4;
                    let cut = stream::STREAM_MAGIC.len() + w.below(frames_len.max(1));
                    reply.body.truncate(cut);
                }
                Ok(reply)
            }
            _ => deliver(&body),
        }
    }
}
