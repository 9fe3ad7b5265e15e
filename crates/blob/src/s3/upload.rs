//! The state of an S3 upload and the writer that appends one request's
//! bytes to it.
//!
//! S3 multipart parts must be at least 5 MiB (all but the last), but OCI
//! clients may send chunks of a few bytes. So an upload is a multipart
//! upload of fixed-size parts plus a "tail" object holding the bytes after
//! the last full part. Each append reads the tail back (less than one
//! part), cuts full parts from tail + new bytes as they fill, and writes the
//! remainder as a new tail in `finish`. Nothing else is ever read back.
//!
//! The state, a small JSON document the domain stores with the session,
//! says which multipart upload, which parts and which tail make up the
//! upload, so a request on any node continues where the last one ended.
//! Every `finish` that wrote bytes gets a fresh `version`, which names its
//! tail object: a request that failed, or whose new state was never saved,
//! leaves the saved state's tail untouched. Parts have fixed indexes, so a
//! retried append overwrites the parts a failed one left behind.

use std::sync::Arc;

use async_trait::async_trait;
use berth_core::error::{CoreError, CoreResult};
use berth_core::ports::UploadWriter;
use bytes::{Bytes, BytesMut};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::{storage_error, Inner};

/// What an upload holds, as persisted in its backend state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UploadState {
    /// Size of every part but the last, fixed when the upload is created.
    pub part_size: u64,
    /// Names this state's tail and seal marker; new for every append that
    /// wrote bytes, empty before the first one.
    #[serde(default)]
    pub version: String,
    /// The multipart upload at `uploads/<id>/data`, created when the first
    /// part filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    /// Content ids (ETags) of the full parts; part `i` has index `i`.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Bytes in the tail object, always fewer than `part_size`.
    #[serde(default)]
    pub tail_len: u64,
    /// The version whose tail this state replaced. Once an append starts
    /// from this state it is known to be saved, and that tail is garbage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_tail: Option<String>,
}

impl UploadState {
    pub fn new(part_size: u64) -> Self {
        UploadState {
            part_size,
            version: String::new(),
            multipart: None,
            parts: Vec::new(),
            tail_len: 0,
            prev_tail: None,
        }
    }

    /// Reads a stored state; the empty string is a new upload.
    pub fn parse(text: &str, default_part_size: u64) -> CoreResult<Self> {
        if text.is_empty() {
            return Ok(Self::new(default_part_size));
        }
        let state: UploadState = serde_json::from_str(text)
            .map_err(|e| CoreError::Internal(format!("corrupt S3 upload state: {e}")))?;
        if state.part_size < super::MIN_PART_SIZE
            || usize::try_from(state.part_size).is_err()
            || state.tail_len >= state.part_size
            || ((state.tail_len > 0 || !state.parts.is_empty()) && state.version.is_empty())
            || (!state.parts.is_empty() && state.multipart.is_none())
        {
            return Err(CoreError::Internal(format!(
                "inconsistent S3 upload state: {text}"
            )));
        }
        Ok(state)
    }

    pub fn to_json(&self) -> CoreResult<String> {
        serde_json::to_string(self).map_err(CoreError::internal)
    }

    /// Bytes in the upload: the full parts and the tail.
    pub fn total(&self) -> u64 {
        self.parts.len() as u64 * self.part_size + self.tail_len
    }
}

/// Appends one request's bytes to an S3 upload.
pub(super) struct S3UploadWriter {
    inner: Arc<Inner>,
    id: String,
    /// `uploads/<id>/data`, the multipart upload's key.
    data: Path,
    /// The state the append started from.
    base: UploadState,
    multipart: Option<String>,
    parts: Vec<String>,
    /// The tail read back, then whatever has not filled a part yet.
    buffer: BytesMut,
    /// The part being uploaded while the next one fills.
    in_flight: Option<JoinHandle<CoreResult<String>>>,
    /// A multipart upload this writer created: aborted if the writer is
    /// dropped unfinished, since no saved state can refer to it.
    created: Option<String>,
    written: u64,
}

impl S3UploadWriter {
    pub fn new(inner: Arc<Inner>, id: String, data: Path, base: UploadState, tail: Bytes) -> Self {
        let mut buffer = BytesMut::with_capacity(base.part_size as usize);
        buffer.extend_from_slice(&tail);
        S3UploadWriter {
            inner,
            id,
            data,
            multipart: base.multipart.clone(),
            parts: base.parts.clone(),
            base,
            buffer,
            in_flight: None,
            created: None,
            written: 0,
        }
    }

    fn part_size(&self) -> usize {
        // Checked to fit when the state was parsed.
        self.base.part_size as usize
    }

    /// Waits for the part in flight, if any, and records it.
    async fn land_in_flight(&mut self) -> CoreResult<()> {
        if let Some(handle) = self.in_flight.take() {
            let content_id = handle
                .await
                .map_err(|e| CoreError::Internal(format!("part upload task failed: {e}")))??;
            self.parts.push(content_id);
        }
        Ok(())
    }

    /// Starts uploading `part` as the next part, after the previous one
    /// has landed: one part uploads while the next one fills.
    async fn send_part(&mut self, part: Bytes) -> CoreResult<()> {
        self.land_in_flight().await?;
        let multipart = match &self.multipart {
            Some(multipart) => multipart.clone(),
            None => {
                let multipart = self
                    .inner
                    .s3
                    .create_multipart(&self.data)
                    .await
                    .map_err(|e| storage_error("start multipart upload", e))?;
                self.multipart = Some(multipart.clone());
                self.created = Some(multipart.clone());
                multipart
            }
        };
        let index = self.parts.len();
        let inner = Arc::clone(&self.inner);
        let data = self.data.clone();
        self.in_flight = Some(tokio::spawn(async move {
            inner
                .s3
                .put_part(&data, &multipart, index, PutPayload::from(part))
                .await
                .map(|part| part.content_id)
                .map_err(|e| storage_error("upload part", e))
        }));
        Ok(())
    }
}

#[async_trait]
impl UploadWriter for S3UploadWriter {
    async fn write(&mut self, chunk: Bytes) -> CoreResult<()> {
        self.written += chunk.len() as u64;
        let part_size = self.part_size();
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.buffer.is_empty() && rest.len() >= part_size {
                // A whole part straight from the request: no copy.
                let part = rest.split_to(part_size);
                self.send_part(part).await?;
                continue;
            }
            let take = (part_size - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest.split_to(take));
            if self.buffer.len() == part_size {
                let part = self.buffer.split().freeze();
                self.buffer.reserve(part_size);
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> CoreResult<String> {
        self.land_in_flight().await?;
        if self.written == 0 {
            self.created = None;
            return self.base.to_json();
        }
        let version = uuid::Uuid::new_v4().simple().to_string();
        let tail_len = self.buffer.len() as u64;
        if tail_len > 0 {
            let tail = self.inner.tail_key(&self.id, &version)?;
            let bytes = self.buffer.split().freeze();
            self.inner
                .s3
                .put(&tail, PutPayload::from(bytes))
                .await
                .map_err(|e| storage_error("write upload tail", e))?;
        }
        if let Some(prev) = &self.base.prev_tail {
            let key = self.inner.tail_key(&self.id, prev)?;
            if let Err(e) = self.inner.s3.delete(&key).await {
                tracing::warn!(key = %key, error = %e, "could not delete an old upload tail");
            }
        }
        let state = UploadState {
            part_size: self.base.part_size,
            version,
            multipart: self.multipart.clone(),
            parts: std::mem::take(&mut self.parts),
            tail_len,
            prev_tail: (self.base.tail_len > 0).then(|| self.base.version.clone()),
        };
        self.created = None;
        state.to_json()
    }
}

impl Drop for S3UploadWriter {
    fn drop(&mut self) {
        // Unfinished: the request failed, and its retry uploads this part
        // again.
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
        }
        let Some(multipart) = self.created.take() else {
            return;
        };
        // Best effort: without a runtime the upload is left to the
        // bucket's lifecycle rule.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(&self.inner);
        let data = self.data.clone();
        runtime.spawn(async move {
            if let Err(e) = inner.s3.abort_multipart(&data, &multipart).await {
                tracing::debug!(key = %data, error = %e, "could not abort an unfinished upload");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::UploadState;

    const MIB: u64 = 1 << 20;

    #[test]
    fn state_round_trips_and_counts_bytes() {
        let state = UploadState {
            part_size: 8 * MIB,
            version: "v2".into(),
            multipart: Some("mp".into()),
            parts: vec!["e1".into(), "e2".into()],
            tail_len: 5,
            prev_tail: Some("v1".into()),
        };
        let text = state.to_json().unwrap();
        assert_eq!(UploadState::parse(&text, 5 * MIB).unwrap(), state);
        assert_eq!(state.total(), 16 * MIB + 5);
        assert_eq!(
            UploadState::parse("", 8 * MIB).unwrap(),
            UploadState::new(8 * MIB)
        );
    }

    #[test]
    fn inconsistent_states_are_rejected() {
        for text in [
            "nonsense",
            r#"{"part_size":1024}"#,
            r#"{"part_size":8388608,"tail_len":8388608,"version":"v"}"#,
            r#"{"part_size":8388608,"tail_len":3}"#,
            r#"{"part_size":8388608,"parts":["e"],"version":"v"}"#,
            r#"{"part_size":8388608,"parts":["e"],"multipart":"m"}"#,
        ] {
            assert!(UploadState::parse(text, 8 * MIB).is_err(), "{text}");
        }
    }
}
