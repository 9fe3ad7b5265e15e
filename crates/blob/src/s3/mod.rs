//! `S3BlobStore`: blobs as objects in one S3 bucket (under an optional key
//! prefix), written through resumable multipart uploads whose progress
//! lives in the upload's backend state, so any node can continue an upload
//! another node started.
//!
//! Layout under the prefix:
//!
//! ```text
//! blobs/<algorithm>/<first two hex digits>/<hex>   committed, immutable
//! uploads/<upload id>/data                         the multipart upload's key
//! uploads/<upload id>/tail-<version>               bytes not yet in a part
//! uploads/<upload id>/sealed-<version>             marker: `data` is complete
//! ```
//!
//! How an upload proceeds is described in the `upload` submodule. A commit
//! of an upload that fits in one part is a single PUT of the final object;
//! a larger one completes the multipart upload at `uploads/<id>/data` and
//! copies it to the final key server-side. Either way the final object
//! appears whole or not at all, because S3 writes objects atomically.
//!
//! `read_upload` has to complete ("seal") the multipart upload to read its
//! parts back. A sealed upload can still be committed or aborted, which is
//! all the domain does after reading one; appending to it fails.
//!
//! Abandoned multipart uploads (a node that died mid-request) cannot be
//! listed through `object_store`; give the bucket a lifecycle rule that
//! aborts incomplete multipart uploads after a day or so.

mod upload;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::error::{CoreError, CoreResult};
use berth_core::ports::{BlobStore, ByteStream, UploadWriter};
use berth_oci::Digest;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload};

use crate::upload_id::check_upload_id;
use upload::{S3UploadWriter, UploadState};

/// S3's smallest allowed part (all but the last part of an upload).
const MIN_PART_SIZE: u64 = 5 << 20;
/// Size of the parts new uploads are cut into. With S3's limit of 10,000
/// parts, this caps a blob at about 78 GiB.
const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// The largest object CopyObject accepts; larger ones are copied by
/// streaming them through this process.
const DEFAULT_COPY_LIMIT: u64 = 5 << 30;
/// Part size of a streamed copy, big enough for 640 GiB in 10,000 parts.
const STREAMED_COPY_PART_SIZE: u64 = 64 << 20;

/// Blob storage in an S3 bucket. Cheap to clone.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    s3: AmazonS3,
    bucket: String,
    prefix: Path,
    part_size: u64,
    copy_limit: u64,
    copy_part_size: u64,
}

impl fmt::Debug for S3BlobStore {
    // By hand: the client's own Debug would print credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix.as_ref())
            .finish()
    }
}

impl S3BlobStore {
    /// Connects to the store a URL describes:
    ///
    /// `s3://<bucket>[/<key prefix>][?<option>=<value>&…]`
    ///
    /// Options: `endpoint`, `region`, `access_key_id`, `secret_access_key`,
    /// `session_token`, `allow_http` (`true`/`false`) and
    /// `virtual_hosted_style` (`true`/`false`; path-style requests are the
    /// default). Each defaults to what the usual `AWS_*` environment
    /// variables say (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …);
    /// the URL overrides them. Unknown options are an error. Nothing is
    /// contacted until the first request.
    pub fn from_url(url: &str) -> CoreResult<Self> {
        let (bucket, prefix, builder) = parse_url(url, AmazonS3Builder::from_env())?;
        let s3 = builder
            .with_bucket_name(&bucket)
            .build()
            .map_err(|e| CoreError::Internal(format!("invalid S3 configuration: {e}")))?;
        Self::new(s3, bucket, &prefix)
    }

    /// Wraps an already configured client; keys are placed under `prefix`
    /// (may be empty). `bucket` is only used in logs and `Debug`.
    pub fn new(s3: AmazonS3, bucket: impl Into<String>, prefix: &str) -> CoreResult<Self> {
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|e| CoreError::Internal(format!("invalid S3 key prefix {prefix:?}: {e}")))?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                s3,
                bucket: bucket.into(),
                prefix,
                part_size: DEFAULT_PART_SIZE,
                copy_limit: DEFAULT_COPY_LIMIT,
                copy_part_size: STREAMED_COPY_PART_SIZE,
            }),
        })
    }

    /// Sets the part size of uploads created from now on (at least 5 MiB;
    /// 8 MiB by default). Uploads in progress keep the size they started
    /// with, which their state records.
    pub fn with_part_size(self, part_size: u64) -> CoreResult<Self> {
        if part_size < MIN_PART_SIZE || usize::try_from(part_size).is_err() {
            return Err(CoreError::Internal(format!(
                "S3 part size {part_size} is below the minimum of {MIN_PART_SIZE} bytes"
            )));
        }
        Ok(self.map_inner(|inner| inner.part_size = part_size))
    }

    /// Sets the size above which a commit copies the object by streaming it
    /// (in parts of `part_size`, at least 5 MiB) instead of with one
    /// server-side CopyObject. The default is CopyObject's own limit, 5 GiB;
    /// lower it for S3 implementations with a smaller one.
    pub fn with_copy_limit(self, limit: u64, part_size: u64) -> CoreResult<Self> {
        if part_size < MIN_PART_SIZE || usize::try_from(part_size).is_err() {
            return Err(CoreError::Internal(format!(
                "S3 copy part size {part_size} is below the minimum of {MIN_PART_SIZE} bytes"
            )));
        }
        Ok(self.map_inner(|inner| {
            inner.copy_limit = limit;
            inner.copy_part_size = part_size;
        }))
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                s3: shared.s3.clone(),
                bucket: shared.bucket.clone(),
                prefix: shared.prefix.clone(),
                part_size: shared.part_size,
                copy_limit: shared.copy_limit,
                copy_part_size: shared.copy_part_size,
            },
        };
        f(&mut inner);
        S3BlobStore {
            inner: Arc::new(inner),
        }
    }
}

/// Splits an `s3://` URL into bucket, key prefix and a builder carrying its
/// options on top of `builder`.
fn parse_url(
    url: &str,
    mut builder: AmazonS3Builder,
) -> CoreResult<(String, String, AmazonS3Builder)> {
    let bad = |why: String| CoreError::Internal(format!("invalid S3 URL: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if parsed.scheme() != "s3" {
        return Err(bad(format!(
            "the scheme is {:?}, expected \"s3\"",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.port().is_some() {
        return Err(bad(
            "credentials and ports go in the query (access_key_id=…, endpoint=…)".into(),
        ));
    }
    if parsed.fragment().is_some() {
        return Err(bad("a fragment (#…) has no meaning here".into()));
    }
    let bucket = match parsed.host_str() {
        Some(bucket) if !bucket.is_empty() => bucket.to_owned(),
        _ => return Err(bad("no bucket: expected s3://<bucket>/<prefix>".into())),
    };
    let prefix = parsed.path().trim_matches('/').to_owned();
    for (key, value) in parsed.query_pairs() {
        let flag = |value: &str| match value {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad(format!("{key} must be true or false"))),
        };
        builder = match key.as_ref() {
            "endpoint" => builder.with_endpoint(value.as_ref()),
            "region" => builder.with_region(value.as_ref()),
            "access_key_id" => builder.with_access_key_id(value.as_ref()),
            "secret_access_key" => builder.with_secret_access_key(value.as_ref()),
            "session_token" => builder.with_token(value.as_ref()),
            "allow_http" => builder.with_allow_http(flag(&value)?),
            "virtual_hosted_style" => builder.with_virtual_hosted_style_request(flag(&value)?),
            _ => return Err(bad(format!("unknown option {key:?}"))),
        };
    }
    Ok((bucket, prefix, builder))
}

impl Inner {
    fn blob_key(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.prefix
            .child("blobs")
            .child(digest.algorithm().name())
            .child(&hex[..2])
            .child(hex)
    }

    fn upload_dir(&self, id: &str) -> CoreResult<Path> {
        Ok(self.prefix.child("uploads").child(check_upload_id(id)?))
    }

    /// The key the multipart upload completes to.
    fn data_key(&self, id: &str) -> CoreResult<Path> {
        Ok(self.upload_dir(id)?.child("data"))
    }

    fn tail_key(&self, id: &str, version: &str) -> CoreResult<Path> {
        Ok(self
            .upload_dir(id)?
            .child(format!("tail-{version}").as_str()))
    }

    fn sealed_key(&self, id: &str, version: &str) -> CoreResult<Path> {
        Ok(self
            .upload_dir(id)?
            .child(format!("sealed-{version}").as_str()))
    }

    /// The bytes after the last full part.
    async fn read_tail(&self, id: &str, state: &UploadState) -> CoreResult<Bytes> {
        if state.tail_len == 0 {
            return Ok(Bytes::new());
        }
        let key = self.tail_key(id, &state.version)?;
        let tail = self
            .s3
            .get(&key)
            .await
            .map_err(|e| storage_error("read upload tail", e))?
            .bytes()
            .await
            .map_err(|e| storage_error("read upload tail", e))?;
        if tail.len() as u64 != state.tail_len {
            return Err(CoreError::Internal(format!(
                "upload tail {key} holds {} bytes, not the {} recorded",
                tail.len(),
                state.tail_len
            )));
        }
        Ok(tail)
    }

    /// Completes the multipart upload of `state`, with its tail as the last
    /// part, so that `uploads/<id>/data` holds all of its bytes.
    ///
    /// A marker written after the completion records which state the
    /// object holds, so a second seal of the same state (a retried commit,
    /// or a commit after `read_upload`) finds it done. A state the marker
    /// does not name never accepts the object. Without the marker (a crash
    /// right after completing) the upload cannot be proven intact and the
    /// seal fails; the client then starts over, which is safe.
    async fn seal(&self, id: &str, state: &UploadState) -> CoreResult<()> {
        let multipart = state
            .multipart
            .as_ref()
            .ok_or_else(|| CoreError::Internal("sealing an upload without parts".into()))?;
        let data = self.data_key(id)?;
        let sealed = self.sealed_key(id, &state.version)?;
        if self.is_sealed(&data, &sealed, state).await {
            return Ok(());
        }
        let attempt: CoreResult<()> = async {
            let mut parts: Vec<PartId> = state
                .parts
                .iter()
                .map(|content_id| PartId {
                    content_id: content_id.clone(),
                })
                .collect();
            if state.tail_len > 0 {
                let tail = self.read_tail(id, state).await?;
                let part = self
                    .s3
                    .put_part(&data, multipart, parts.len(), PutPayload::from(tail))
                    .await
                    .map_err(|e| storage_error("upload last part", e))?;
                parts.push(part);
            }
            self.s3
                .complete_multipart(&data, multipart, parts)
                .await
                .map_err(|e| storage_error("complete multipart upload", e))?;
            Ok(())
        }
        .await;
        match attempt {
            Ok(()) => {
                self.s3
                    .put(&sealed, PutPayload::default())
                    .await
                    .map_err(|e| storage_error("mark upload sealed", e))?;
                Ok(())
            }
            // Sealed meanwhile by a request whose lease had run out?
            Err(e) if self.is_sealed(&data, &sealed, state).await => {
                tracing::debug!(upload = id, error = %e, "upload was sealed concurrently");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `data` is the completed multipart upload of `state`: its
    /// marker exists and the object has the state's size.
    async fn is_sealed(&self, data: &Path, sealed: &Path, state: &UploadState) -> bool {
        if self.s3.head(sealed).await.is_err() {
            return false;
        }
        matches!(self.s3.head(data).await, Ok(meta) if meta.size == state.total())
    }

    /// Copies the sealed upload `from` (of `size` bytes) to the key `to`.
    async fn copy_into_place(&self, from: &Path, to: &Path, size: u64) -> CoreResult<()> {
        if size <= self.copy_limit {
            return self
                .s3
                .copy(from, to)
                .await
                .map_err(|e| storage_error("copy upload into place", e));
        }
        let multipart = self
            .s3
            .create_multipart(to)
            .await
            .map_err(|e| storage_error("start streamed copy", e))?;
        let result: CoreResult<()> = async {
            let mut parts = Vec::new();
            let mut at = 0;
            while at < size {
                let end = (at + self.copy_part_size).min(size);
                let bytes = self
                    .s3
                    .get_range(from, at..end)
                    .await
                    .map_err(|e| storage_error("read for streamed copy", e))?;
                if bytes.len() as u64 != end - at {
                    return Err(CoreError::Internal(format!(
                        "short read of {from} at {at} during streamed copy"
                    )));
                }
                let part = self
                    .s3
                    .put_part(to, &multipart, parts.len(), PutPayload::from(bytes))
                    .await
                    .map_err(|e| storage_error("write for streamed copy", e))?;
                parts.push(part);
                at = end;
            }
            self.s3
                .complete_multipart(to, &multipart, parts)
                .await
                .map_err(|e| storage_error("complete streamed copy", e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            if let Err(e) = self.s3.abort_multipart(to, &multipart).await {
                tracing::warn!(key = %to, error = %e, "could not abort a failed streamed copy");
            }
        }
        result
    }

    /// Releases everything upload `id` stored: its multipart upload, if it
    /// is still open, and every object under `uploads/<id>/`.
    async fn release(&self, id: &str, state: Option<&UploadState>) -> CoreResult<()> {
        let dir = self.upload_dir(id)?;
        if let Some(multipart) = state.and_then(|s| s.multipart.as_ref()) {
            match self.s3.abort_multipart(&dir.child("data"), multipart).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error("abort multipart upload", e)),
            }
        }
        let keys: Vec<Path> = self
            .s3
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| storage_error("list upload objects", e))?;
        for key in keys {
            match self.s3.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error("delete upload object", e)),
            }
        }
        Ok(())
    }

    /// Like [`Inner::release`] after a successful commit: the blob is
    /// stored, so a failure to clean up is only logged.
    async fn release_after_commit(&self, id: &str, state: &UploadState) {
        if let Err(e) = self.release(id, Some(state)).await {
            tracing::warn!(upload = id, error = %e, "could not remove a committed upload's objects");
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn create_upload(&self, id: &str) -> CoreResult<String> {
        check_upload_id(id)?;
        // Nothing is stored until the first bytes arrive.
        UploadState::new(self.inner.part_size).to_json()
    }

    async fn append_upload(
        &self,
        id: &str,
        state: &str,
        offset: u64,
    ) -> CoreResult<Box<dyn UploadWriter>> {
        check_upload_id(id)?;
        let state = UploadState::parse(state, self.inner.part_size)?;
        if offset != state.total() {
            return Err(CoreError::Internal(format!(
                "append to upload {id} at {offset}, but its state holds {} bytes",
                state.total()
            )));
        }
        let tail = self.inner.read_tail(id, &state).await?;
        let data = self.inner.data_key(id)?;
        Ok(Box::new(S3UploadWriter::new(
            Arc::clone(&self.inner),
            id.to_owned(),
            data,
            state,
            tail,
        )))
    }

    async fn read_upload(&self, id: &str, state: &str, size: u64) -> CoreResult<ByteStream> {
        check_upload_id(id)?;
        let state = UploadState::parse(state, self.inner.part_size)?;
        if size > state.total() {
            return Err(CoreError::Internal(format!(
                "read of {size} bytes of upload {id}, which holds {}",
                state.total()
            )));
        }
        if size == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let key = if state.parts.is_empty() {
            self.inner.tail_key(id, &state.version)?
        } else {
            // Parts of an open multipart upload cannot be read back, so
            // the upload is completed here; a later commit of this state
            // finds it sealed and copies it. (Appending to a sealed upload
            // fails: the domain only commits or aborts after reading.)
            self.inner.seal(id, &state).await?;
            self.inner.data_key(id)?
        };
        get_stream(&self.inner.s3, &key, Some(GetRange::Bounded(0..size)))
            .await
            .map_err(|e| storage_error("read upload", e))
    }

    async fn commit_upload(
        &self,
        id: &str,
        state: &str,
        size: u64,
        digest: &Digest,
    ) -> CoreResult<()> {
        check_upload_id(id)?;
        let inner = &self.inner;
        let state = UploadState::parse(state, inner.part_size)?;
        if size != state.total() {
            return Err(CoreError::Internal(format!(
                "commit of {size} bytes of upload {id}, whose state holds {}",
                state.total()
            )));
        }
        let target = inner.blob_key(digest);
        match inner.s3.head(&target).await {
            Ok(meta) if meta.size == size => {
                // Stored already: keep the one copy.
                inner.release_after_commit(id, &state).await;
                return Ok(());
            }
            Ok(meta) => tracing::warn!(
                key = %target,
                found = meta.size,
                expected = size,
                "stored blob has the wrong size; replacing it"
            ),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(storage_error("look up blob", e)),
        }
        if state.parts.is_empty() {
            let tail = inner.read_tail(id, &state).await?;
            inner
                .s3
                .put(&target, PutPayload::from(tail))
                .await
                .map_err(|e| storage_error("store blob", e))?;
        } else {
            inner.seal(id, &state).await?;
            inner
                .copy_into_place(&inner.data_key(id)?, &target, size)
                .await?;
        }
        inner.release_after_commit(id, &state).await;
        Ok(())
    }

    async fn abort_upload(&self, id: &str, state: &str) -> CoreResult<()> {
        check_upload_id(id)?;
        let state = match UploadState::parse(state, self.inner.part_size) {
            Ok(state) => Some(state),
            Err(e) => {
                // Still remove what can be found without the state.
                tracing::warn!(upload = id, error = %e, "aborting an upload with a corrupt state");
                None
            }
        };
        self.inner.release(id, state.as_ref()).await
    }

    async fn read(&self, digest: &Digest, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
        let range = match range {
            None => None,
            Some((start, end)) => {
                let end = end
                    .checked_add(1)
                    .filter(|&end| start < end)
                    .ok_or_else(|| {
                        CoreError::Internal(format!("invalid range {start}-{end} of {digest}"))
                    })?;
                Some(GetRange::Bounded(start..end))
            }
        };
        match get_stream(&self.inner.s3, &self.inner.blob_key(digest), range).await {
            Ok(stream) => Ok(stream),
            Err(object_store::Error::NotFound { .. }) => {
                Err(CoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(storage_error("read blob", e)),
        }
    }

    async fn stat(&self, digest: &Digest) -> CoreResult<Option<u64>> {
        match self.inner.s3.head(&self.inner.blob_key(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error("look up blob", e)),
        }
    }

    async fn delete(&self, digest: &Digest) -> CoreResult<()> {
        match self.inner.s3.delete(&self.inner.blob_key(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error("delete blob", e)),
        }
    }

    /// One `DeleteObjects` request per 1000 keys (object_store batches the
    /// stream); `parallel` does not apply.
    async fn delete_many(&self, digests: &[Digest], _parallel: usize) -> CoreResult<()> {
        let keys: Vec<object_store::Result<Path>> =
            digests.iter().map(|d| Ok(self.inner.blob_key(d))).collect();
        let mut results = self
            .inner
            .s3
            .delete_stream(futures::stream::iter(keys).boxed());
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error("delete blobs", e)),
            }
        }
        Ok(())
    }
}

/// One GET of `key` (or of `range` of it), as a byte stream.
async fn get_stream(
    s3: &AmazonS3,
    key: &Path,
    range: Option<GetRange>,
) -> Result<ByteStream, object_store::Error> {
    let options = GetOptions {
        range,
        ..GetOptions::default()
    };
    let result = s3.get_opts(key, options).await?;
    Ok(result.into_stream().map_err(std::io::Error::other).boxed())
}

fn storage_error(what: &str, e: object_store::Error) -> CoreError {
    CoreError::Internal(format!("S3: {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> CoreResult<(String, String, AmazonS3Builder)> {
        parse_url(url, AmazonS3Builder::new())
    }

    #[test]
    fn url_gives_bucket_prefix_and_options() {
        let (bucket, prefix, builder) = parse(
            "s3://my-bucket/some/prefix/?endpoint=http://127.0.0.1:5000&region=eu-west-1\
             &allow_http=true&virtual_hosted_style=false&access_key_id=k&secret_access_key=s",
        )
        .unwrap();
        assert_eq!(bucket, "my-bucket");
        assert_eq!(prefix, "some/prefix");
        use object_store::aws::AmazonS3ConfigKey as K;
        assert_eq!(
            builder.get_config_value(&K::Endpoint).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            builder.get_config_value(&K::Region).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            builder.get_config_value(&K::AccessKeyId).as_deref(),
            Some("k")
        );
        let (_, prefix, _) = parse("s3://b").unwrap();
        assert_eq!(prefix, "");
    }

    #[test]
    fn url_query_overrides_the_environment_defaults() {
        let base = AmazonS3Builder::new()
            .with_region("us-west-2")
            .with_endpoint("http://elsewhere");
        let (_, _, builder) = parse_url("s3://b?region=us-east-1", base).unwrap();
        use object_store::aws::AmazonS3ConfigKey as K;
        assert_eq!(
            builder.get_config_value(&K::Region).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            builder.get_config_value(&K::Endpoint).as_deref(),
            Some("http://elsewhere")
        );
    }

    #[test]
    fn url_errors() {
        for url in [
            "s3://b?colour=blue",
            "s3://b?allow_http=maybe",
            "http://b/prefix",
            "s3:///prefix",
            "s3://user:pass@b/",
            "not a url",
        ] {
            assert!(parse(url).is_err(), "{url} was accepted");
        }
        assert!(S3BlobStore::from_url("s3://b/bad//prefix").is_err());
    }

    #[test]
    fn debug_shows_no_secrets() {
        let store = S3BlobStore::from_url(
            "s3://b/p?endpoint=http://127.0.0.1:1&allow_http=true&access_key_id=AKIDSECRET\
             &secret_access_key=VERYSECRET&region=us-east-1",
        )
        .unwrap();
        let text = format!("{store:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("\"p\""), "{text}");
    }

    #[test]
    fn part_sizes_below_the_s3_minimum_are_rejected() {
        let store = S3BlobStore::from_url("s3://b?region=us-east-1").unwrap();
        assert!(store.clone().with_part_size(1 << 20).is_err());
        assert!(store.clone().with_copy_limit(0, 1 << 20).is_err());
        assert!(store.with_part_size(5 << 20).is_ok());
    }
}
