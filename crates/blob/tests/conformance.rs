//! The `BlobStore` conformance suite: every case in `cases` runs against
//! the filesystem backend (in a temporary directory) and against S3 (a
//! fresh key prefix in the bucket named by `BERTH_TEST_S3_*`), followed by
//! checks only one backend can make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_blob::{FsBlobStore, S3BlobStore};
use berth_core::error::CoreError;
use berth_core::ports::{BlobStore, ByteStream};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures::StreamExt;

const MIB: usize = 1 << 20;

// ---- harness -------------------------------------------------------------

/// One backend under test. `fresh()` opens another store instance over the
/// same storage, as another node or a restarted process would.
struct Harness {
    store: Arc<dyn BlobStore>,
    backend: Backend,
}

enum Backend {
    Fs(TempDir),
    S3 { url: String },
}

impl Harness {
    fn fs() -> Self {
        let dir = TempDir::new();
        let store = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        Harness {
            store,
            backend: Backend::Fs(dir),
        }
    }

    /// `None` (after a note) when S3 tests are skipped on purpose.
    fn s3() -> Option<Self> {
        let endpoint = match std::env::var("BERTH_TEST_S3_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => endpoint,
            _ if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") => {
                eprintln!(
                    "skipping S3 test: BERTH_TEST_SKIP_EXTERNAL=1 and no BERTH_TEST_S3_ENDPOINT"
                );
                return None;
            }
            _ => panic!(
                "BERTH_TEST_S3_ENDPOINT is not set: start an S3 server, see scripts/test-services \
                 (or set BERTH_TEST_SKIP_EXTERNAL=1 to skip the S3 tests)"
            ),
        };
        let bucket =
            std::env::var("BERTH_TEST_S3_BUCKET").unwrap_or_else(|_| "berth-test".to_owned());
        let prefix = format!("conformance-{}", uuid::Uuid::new_v4().simple());
        let url = format!(
            "s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1&allow_http=true\
             &access_key_id=testkey&secret_access_key=testsecret"
        );
        let store = Arc::new(S3BlobStore::from_url(&url).unwrap());
        Some(Harness {
            store,
            backend: Backend::S3 { url },
        })
    }

    fn store(&self) -> &dyn BlobStore {
        self.store.as_ref()
    }

    fn fresh(&self) -> Arc<dyn BlobStore> {
        match &self.backend {
            Backend::Fs(dir) => Arc::new(FsBlobStore::open(dir.path()).unwrap()),
            Backend::S3 { url } => Arc::new(S3BlobStore::from_url(url).unwrap()),
        }
    }

    fn fs_root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Fs(dir) => Some(dir.path()),
            Backend::S3 { .. } => None,
        }
    }
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("berth-blob-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Instantiates every case for both backends.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::Harness::fs();
                    super::cases::$case(&h).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = super::Harness::s3() else { return };
                    super::cases::$case(&h).await;
                }
            )*
        }
    };
}

conformance!(
    small_chunks_in_many_requests,
    chunks_crossing_part_boundaries,
    append_at_stale_offset_overwrites,
    resume_on_a_fresh_instance,
    concurrent_commits_of_one_digest,
    commit_when_blob_exists,
    range_reads,
    missing_blob,
    stat_and_delete_are_idempotent,
    abort_is_idempotent,
    empty_blob,
    read_upload_returns_what_was_written,
    sha512_blobs,
    invalid_upload_ids_are_rejected,
);

// ---- helpers -------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One request: appends `chunks` at `offset` and returns the new state.
async fn append(
    store: &dyn BlobStore,
    id: &str,
    state: &str,
    offset: u64,
    chunks: &[&[u8]],
) -> String {
    let mut w = store.append_upload(id, state, offset).await.unwrap();
    for chunk in chunks {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.finish().await.unwrap()
}

/// Splits `bytes` into chunks whose sizes cycle through `sizes`.
fn chunked<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        out.push(&bytes[at..end]);
        at = end;
    }
    out
}

/// Uploads `bytes` in one request and commits it.
async fn put_blob(store: &dyn BlobStore, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256(bytes);
    let id = new_id();
    let state = store.create_upload(&id).await.unwrap();
    let state = append(store, &id, &state, 0, &chunked(bytes, &[64 << 10])).await;
    store
        .commit_upload(&id, &state, bytes.len() as u64, &digest)
        .await
        .unwrap();
    digest
}

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn read_all(store: &dyn BlobStore, digest: &Digest) -> Vec<u8> {
    collect(store.read(digest, None).await.unwrap()).await
}

async fn read_range(store: &dyn BlobStore, digest: &Digest, start: u64, end: u64) -> Vec<u8> {
    collect(store.read(digest, Some((start, end))).await.unwrap()).await
}

/// Asserts equality without printing megabytes on failure.
#[track_caller]
fn assert_same(actual: &[u8], expected: &[u8]) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    if let Some(at) = actual.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("contents differ first at byte {at}");
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

// ---- the cases both backends pass ----------------------------------------

mod cases {
    use super::*;

    /// 22-byte PATCHes, as in the OCI conformance suite, and requests made
    /// of many tiny writes.
    pub async fn small_chunks_in_many_requests(h: &Harness) {
        let s = h.store();
        let bytes = data(40 * 22 + 3000, 1);
        let id = new_id();
        let mut state = s.create_upload(&id).await.unwrap();
        let mut offset = 0;
        for chunk in bytes[..40 * 22].chunks(22) {
            state = append(s, &id, &state, offset, &[chunk]).await;
            offset += chunk.len() as u64;
        }
        let rest = &bytes[40 * 22..];
        state = append(s, &id, &state, offset, &chunked(rest, &[1, 7, 100])).await;
        let digest = Digest::sha256(&bytes);
        s.commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(s, &digest).await, &bytes);
        assert_eq!(s.stat(&digest).await.unwrap(), Some(bytes.len() as u64));
    }

    /// 20 MiB in 1 MiB and 7-byte chunks, over three requests that end
    /// in the middle of parts.
    pub async fn chunks_crossing_part_boundaries(h: &Harness) {
        let s = h.store();
        let bytes = data(20 * MIB + 12345, 2);
        let id = new_id();
        let mut state = s.create_upload(&id).await.unwrap();
        let cuts = [0, 3 * MIB + 5, 11 * MIB + 77, bytes.len()];
        for pair in cuts.windows(2) {
            let piece = &bytes[pair[0]..pair[1]];
            state = append(
                s,
                &id,
                &state,
                pair[0] as u64,
                &chunked(piece, &[MIB, 7, 7, MIB - 3]),
            )
            .await;
        }
        let digest = Digest::sha256(&bytes);
        s.commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(s, &digest).await, &bytes);
    }

    /// A request that fails midway leaves bytes beyond the recorded size
    /// (here even a part); the next append from the recorded state
    /// overwrites them.
    pub async fn append_at_stale_offset_overwrites(h: &Harness) {
        let s = h.store();
        // The first request starts a multipart upload (one part); the
        // failed one adds a second part, which the retry must replace.
        let good = data(20 * MIB, 3);
        let junk = data(10 * MIB, 4);
        let first = 9 * MIB;
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(s, &id, &state, 0, &chunked(&good[..first], &[MIB])).await;

        // A request that dies before `finish`: the writer is dropped.
        let mut w = s.append_upload(&id, &state, first as u64).await.unwrap();
        for chunk in chunked(&junk, &[MIB]) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        drop(w);
        // And one that finished but whose state was never saved.
        let _lost = append(s, &id, &state, first as u64, &[&junk[..1000]]).await;

        let state = append(
            s,
            &id,
            &state,
            first as u64,
            &chunked(&good[first..], &[MIB / 2, 3]),
        )
        .await;
        let digest = Digest::sha256(&good);
        s.commit_upload(&id, &state, good.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(s, &digest).await, &good);
    }

    /// Each request runs on a different store instance, as it would on
    /// different nodes, with only the state string carried along.
    pub async fn resume_on_a_fresh_instance(h: &Harness) {
        let bytes = data(19 * MIB + 1, 5);
        let id = new_id();
        let state = h.fresh().create_upload(&id).await.unwrap();
        let mut state = state;
        let cuts = [0, 9 * MIB, 9 * MIB + 10, bytes.len()];
        for pair in cuts.windows(2) {
            let node = h.fresh();
            state = append(
                node.as_ref(),
                &id,
                &state,
                pair[0] as u64,
                &chunked(&bytes[pair[0]..pair[1]], &[MIB]),
            )
            .await;
        }
        let digest = Digest::sha256(&bytes);
        h.fresh()
            .commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(h.fresh().as_ref(), &digest).await, &bytes);
    }

    /// Two uploads of the same content committed at once both succeed,
    /// for a small blob and one made of parts.
    pub async fn concurrent_commits_of_one_digest(h: &Harness) {
        for len in [1000, 9 * MIB] {
            let bytes = data(len, 6);
            let digest = Digest::sha256(&bytes);
            let (a, b) = (new_id(), new_id());
            let s = h.store();
            let sa = s.create_upload(&a).await.unwrap();
            let sa = append(s, &a, &sa, 0, &chunked(&bytes, &[MIB])).await;
            let other = h.fresh();
            let sb = other.create_upload(&b).await.unwrap();
            let sb = append(other.as_ref(), &b, &sb, 0, &chunked(&bytes, &[MIB])).await;
            let (ra, rb) = tokio::join!(
                s.commit_upload(&a, &sa, len as u64, &digest),
                other.commit_upload(&b, &sb, len as u64, &digest),
            );
            ra.unwrap();
            rb.unwrap();
            assert_same(&read_all(s, &digest).await, &bytes);
            // Both uploads are gone; aborting them is a no-op.
            s.abort_upload(&a, &sa).await.unwrap();
            s.abort_upload(&b, &sb).await.unwrap();
        }
    }

    /// Committing content that is stored already discards the upload.
    pub async fn commit_when_blob_exists(h: &Harness) {
        let s = h.store();
        for len in [300, 9 * MIB] {
            let bytes = data(len, 7);
            let digest = put_blob(s, &bytes).await;
            let id = new_id();
            let state = s.create_upload(&id).await.unwrap();
            let state = append(s, &id, &state, 0, &chunked(&bytes, &[MIB])).await;
            s.commit_upload(&id, &state, len as u64, &digest)
                .await
                .unwrap();
            assert_same(&read_all(s, &digest).await, &bytes);
            // Committing again (a retried request) also succeeds.
            s.commit_upload(&id, &state, len as u64, &digest)
                .await
                .unwrap();
        }
        if let Some(root) = h.fs_root() {
            assert_eq!(files_under(&root.join("uploads")), Vec::<PathBuf>::new());
        }
    }

    pub async fn range_reads(h: &Harness) {
        let s = h.store();
        // A large blob (memory-mapped on the filesystem) and a small one.
        for len in [3 * MIB + 123, 5000] {
            let bytes = data(len, 8);
            let digest = put_blob(s, &bytes).await;
            let n = len as u64;
            assert_same(&read_all(s, &digest).await, &bytes);
            for (start, end) in [
                (0, 0),
                (0, 99),
                (n / 2 - 50, n / 2 + 4000.min(n / 3)),
                (n - 1, n - 1),
                (n - 100, n - 1),
                (0, n - 1),
                (1, n - 2),
                (7, (2 * MIB as u64 + 9).min(n - 1)),
            ] {
                let got = read_range(s, &digest, start, end).await;
                assert_same(&got, &bytes[start as usize..=end as usize]);
            }
        }
    }

    pub async fn missing_blob(h: &Harness) {
        let s = h.store();
        let digest = Digest::sha256(b"never stored");
        match s.read(&digest, None).await {
            Err(CoreError::BlobNotFound(d)) => assert_eq!(d, digest),
            Err(e) => panic!("expected BlobNotFound, got {e:?}"),
            Ok(_) => panic!("expected BlobNotFound, got a stream"),
        }
        assert!(matches!(
            s.read(&digest, Some((0, 3))).await,
            Err(CoreError::BlobNotFound(_))
        ));
        assert_eq!(s.stat(&digest).await.unwrap(), None);
    }

    pub async fn stat_and_delete_are_idempotent(h: &Harness) {
        let s = h.store();
        let bytes = data(4096, 9);
        let digest = put_blob(s, &bytes).await;
        assert_eq!(s.stat(&digest).await.unwrap(), Some(4096));
        assert_eq!(s.stat(&digest).await.unwrap(), Some(4096));
        s.delete(&digest).await.unwrap();
        assert_eq!(s.stat(&digest).await.unwrap(), None);
        s.delete(&digest).await.unwrap();
        assert!(matches!(
            s.read(&digest, None).await,
            Err(CoreError::BlobNotFound(_))
        ));
        // Deleted content can be stored again.
        put_blob(s, &bytes).await;
        assert_same(&read_all(s, &digest).await, &bytes);
    }

    /// Aborting twice, aborting an upload with a multipart upload in
    /// progress, and aborting an upload never created all succeed.
    pub async fn abort_is_idempotent(h: &Harness) {
        let s = h.store();
        for len in [100, 9 * MIB] {
            let id = new_id();
            let state = s.create_upload(&id).await.unwrap();
            let state = append(s, &id, &state, 0, &chunked(&data(len, 10), &[MIB])).await;
            s.abort_upload(&id, &state).await.unwrap();
            s.abort_upload(&id, &state).await.unwrap();
            assert!(s.read_upload(&id, &state, len as u64).await.is_err());
        }
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        s.abort_upload(&id, &state).await.unwrap();
        s.abort_upload(&new_id(), "").await.unwrap();
        if let Some(root) = h.fs_root() {
            assert_eq!(files_under(&root.join("uploads")), Vec::<PathBuf>::new());
        }
    }

    pub async fn empty_blob(h: &Harness) {
        let s = h.store();
        let digest = Digest::sha256(b"");
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        // A request with an empty body.
        let state = append(s, &id, &state, 0, &[]).await;
        let state = append(s, &id, &state, 0, &[b""]).await;
        assert_eq!(
            collect(s.read_upload(&id, &state, 0).await.unwrap()).await,
            b""
        );
        s.commit_upload(&id, &state, 0, &digest).await.unwrap();
        assert_eq!(s.stat(&digest).await.unwrap(), Some(0));
        assert_eq!(read_all(s, &digest).await, b"");
    }

    /// `read_upload` returns the bytes written (or a prefix), and the
    /// upload can be committed afterwards, as the domain does when a
    /// client closes with another digest algorithm than the session's.
    pub async fn read_upload_returns_what_was_written(h: &Harness) {
        let s = h.store();
        for len in [777, 17 * MIB + 5] {
            let bytes = data(len, 11);
            let id = new_id();
            let state = s.create_upload(&id).await.unwrap();
            let mid = len / 3;
            let state = append(s, &id, &state, 0, &chunked(&bytes[..mid], &[MIB, 13])).await;
            let state = append(s, &id, &state, mid as u64, &chunked(&bytes[mid..], &[MIB])).await;
            let got = collect(s.read_upload(&id, &state, len as u64).await.unwrap()).await;
            assert_same(&got, &bytes);
            let got = collect(s.read_upload(&id, &state, 500).await.unwrap()).await;
            assert_same(&got, &bytes[..500]);
            let digest = Digest::of(Algorithm::Sha512, &bytes);
            s.commit_upload(&id, &state, len as u64, &digest)
                .await
                .unwrap();
            assert_same(&read_all(s, &digest).await, &bytes);
        }
    }

    pub async fn sha512_blobs(h: &Harness) {
        let s = h.store();
        let bytes = data(70_000, 12);
        let digest = Digest::of(Algorithm::Sha512, &bytes);
        let other = Digest::sha256(&bytes);
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(s, &id, &state, 0, &[&bytes]).await;
        s.commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(s, &digest).await, &bytes);
        assert_eq!(s.stat(&other).await.unwrap(), None);
    }

    pub async fn invalid_upload_ids_are_rejected(h: &Harness) {
        let s = h.store();
        let digest = Digest::sha256(b"x");
        for id in [
            "../../etc",
            "",
            "a/b",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca42/",
        ] {
            assert!(s.create_upload(id).await.is_err(), "{id:?}");
            assert!(s.append_upload(id, "", 0).await.is_err(), "{id:?}");
            assert!(s.read_upload(id, "", 0).await.is_err(), "{id:?}");
            assert!(s.commit_upload(id, "", 0, &digest).await.is_err(), "{id:?}");
            assert!(s.abort_upload(id, "").await.is_err(), "{id:?}");
        }
    }
}

// ---- filesystem only -------------------------------------------------------

mod fs_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_leaves_nothing_under_uploads() {
        let h = Harness::fs();
        let root = h.fs_root().unwrap();
        let bytes = data(3 * MIB, 20);
        put_blob(h.store(), &bytes).await;
        assert_eq!(files_under(&root.join("uploads")), Vec::<PathBuf>::new());
        let blobs = files_under(&root.join("blobs"));
        assert_eq!(blobs.len(), 1);
        let digest = Digest::sha256(&bytes);
        assert_eq!(
            blobs[0],
            root.join("blobs/sha256")
                .join(&digest.hex()[..2])
                .join(digest.hex())
        );
    }

    /// Nothing reaches `blobs/` before the commit, whatever was written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_written_uploads_never_appear_under_blobs() {
        let h = Harness::fs();
        let s = h.store();
        let root = h.fs_root().unwrap();
        let bytes = data(5 * MIB, 21);
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let mut w = s.append_upload(&id, &state, 0).await.unwrap();
        for chunk in chunked(&bytes[..3 * MIB], &[100_000]) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            assert!(files_under(&root.join("blobs")).is_empty());
        }
        drop(w);
        let state = append(s, &id, &state, 0, &chunked(&bytes, &[MIB])).await;
        assert!(files_under(&root.join("blobs")).is_empty());
        // The data file holds what was written, and only that.
        let data_file = root.join("uploads").join(&id).join("data");
        assert_eq!(
            std::fs::metadata(&data_file).unwrap().len(),
            bytes.len() as u64
        );
        let digest = Digest::sha256(&bytes);
        s.commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert!(!data_file.exists());
        assert_eq!(files_under(&root.join("blobs")).len(), 1);
    }

    /// A commit after a crash that followed the rename (the upload
    /// directory is still there, the data file is not) succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_retried_after_the_rename_succeeds() {
        let h = Harness::fs();
        let s = h.store();
        let root = h.fs_root().unwrap();
        let bytes = data(1000, 22);
        let digest = Digest::sha256(&bytes);
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(s, &id, &state, 0, &[&bytes]).await;
        s.commit_upload(&id, &state, 1000, &digest).await.unwrap();
        std::fs::create_dir_all(root.join("uploads").join(&id)).unwrap();
        s.commit_upload(&id, &state, 1000, &digest).await.unwrap();
        assert!(!root.join("uploads").join(&id).exists());
        assert_same(&read_all(s, &digest).await, &bytes);
    }

    /// A commit only takes the recorded size, even if a failed request
    /// left more bytes in the data file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_truncates_to_the_recorded_size() {
        let h = Harness::fs();
        let s = h.store();
        let bytes = data(2000, 23);
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(s, &id, &state, 0, &[&bytes[..1500]]).await;
        let mut w = s.append_upload(&id, &state, 1500).await.unwrap();
        w.write(Bytes::from_static(b"left behind by a failed request"))
            .await
            .unwrap();
        let _ = w.finish().await.unwrap();
        let digest = Digest::sha256(&bytes[..1500]);
        s.commit_upload(&id, &state, 1500, &digest).await.unwrap();
        assert_same(&read_all(s, &digest).await, &bytes[..1500]);
    }

    /// A read of a deleted blob that was already open keeps working.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_survive_deletion() {
        let h = Harness::fs();
        let s = h.store();
        let bytes = data(6 * MIB, 24);
        let digest = put_blob(s, &bytes).await;
        let stream = s.read(&digest, None).await.unwrap();
        s.delete(&digest).await.unwrap();
        assert_same(&collect(stream).await, &bytes);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn out_of_bounds_ranges_are_errors_not_panics() {
        let h = Harness::fs();
        let s = h.store();
        let digest = put_blob(s, &data(100, 25)).await;
        assert!(s.read(&digest, Some((100, 200))).await.is_err());
        assert!(s.read(&digest, Some((50, 10))).await.is_err());
        let clamped = read_range(s, &digest, 90, u64::MAX).await;
        assert_eq!(clamped.len(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_beyond_the_data_is_an_error() {
        let h = Harness::fs();
        let s = h.store();
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        assert!(s.append_upload(&id, &state, 10).await.is_err());
        assert!(s.read_upload(&id, &state, 10).await.is_err());
        assert_eq!(s.kind(), "filesystem");
    }
}

// ---- S3 only ---------------------------------------------------------------

mod s3_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_at_a_wrong_offset_is_an_error() {
        let Some(h) = Harness::s3() else { return };
        let s = h.store();
        assert_eq!(s.kind(), "s3");
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(s, &id, &state, 0, &[b"hello"]).await;
        assert!(s.append_upload(&id, &state, 4).await.is_err());
        assert!(s.append_upload(&id, &state, 6).await.is_err());
        assert!(s
            .commit_upload(&id, &state, 4, &Digest::sha256(b"hell"))
            .await
            .is_err());
        s.abort_upload(&id, &state).await.unwrap();
    }

    /// `read_upload` completes the multipart upload. Committing that same
    /// state afterwards works; an append to it fails, and so does a commit
    /// of the state such an append returns: a sealed upload is never
    /// committed with bytes other than the ones it holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sealed_upload_is_only_committed_as_read() {
        let Some(h) = Harness::s3() else { return };
        let Backend::S3 { url } = &h.backend else {
            unreachable!()
        };
        // moto answers a part for a finished upload with a 500, which the
        // client would retry for a minute: don't.
        let s = no_retry_store(url);
        let bytes = data(9 * MIB + 10, 32);
        let id = new_id();
        let state = s.create_upload(&id).await.unwrap();
        let state = append(&s, &id, &state, 0, &chunked(&bytes, &[MIB])).await;
        let got = collect(
            s.read_upload(&id, &state, bytes.len() as u64)
                .await
                .unwrap(),
        )
        .await;
        assert_same(&got, &bytes);

        // An append that fills no part "succeeds" (it only writes a tail)...
        let mut w = s
            .append_upload(&id, &state, bytes.len() as u64)
            .await
            .unwrap();
        w.write(Bytes::from_static(b"more")).await.unwrap();
        let longer = w.finish().await.unwrap();
        // ...but its state cannot be committed.
        let mut more = bytes.clone();
        more.extend_from_slice(b"more");
        assert!(s
            .commit_upload(&id, &longer, more.len() as u64, &Digest::sha256(&more))
            .await
            .is_err());
        // One that fills a part fails at once.
        let mut w = s
            .append_upload(&id, &state, bytes.len() as u64)
            .await
            .unwrap();
        let write = w.write(Bytes::from(data(8 * MIB, 33))).await;
        let finish = w.finish().await;
        assert!(write.is_err() || finish.is_err());

        let digest = Digest::sha256(&bytes);
        s.commit_upload(&id, &state, bytes.len() as u64, &digest)
            .await
            .unwrap();
        assert_same(&read_all(&s, &digest).await, &bytes);
    }

    fn no_retry_store(url: &str) -> S3BlobStore {
        use object_store::aws::AmazonS3Builder;
        use object_store::RetryConfig;
        let parsed = url::Url::parse(url).unwrap();
        let endpoint = parsed
            .query_pairs()
            .find(|(k, _)| k == "endpoint")
            .unwrap()
            .1
            .into_owned();
        let bucket = parsed.host_str().unwrap().to_owned();
        let s3 = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&bucket)
            .with_region("us-east-1")
            .with_access_key_id("testkey")
            .with_secret_access_key("testsecret")
            .with_allow_http(true)
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .unwrap();
        S3BlobStore::new(s3, bucket, parsed.path()).unwrap()
    }

    /// Objects above the copy limit are copied by streaming them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_copy_above_the_copy_limit() {
        let Some(h) = Harness::s3() else { return };
        let Backend::S3 { url } = &h.backend else {
            unreachable!()
        };
        let s = S3BlobStore::from_url(url)
            .unwrap()
            .with_part_size(5 * MIB as u64)
            .unwrap()
            .with_copy_limit(MIB as u64, 5 * MIB as u64)
            .unwrap();
        let bytes = data(12 * MIB + 3, 30);
        let digest = put_blob(&s, &bytes).await;
        assert_same(&read_all(&s, &digest).await, &bytes);
        assert_same(&read_all(h.store(), &digest).await, &bytes);
    }

    /// After a commit, nothing is left under the upload's prefix.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_and_abort_leave_no_upload_objects() {
        use object_store::aws::AmazonS3Builder;
        use object_store::path::Path as Key;
        use object_store::ObjectStore;
        let Some(h) = Harness::s3() else { return };
        let Backend::S3 { url } = &h.backend else {
            unreachable!()
        };
        let s = h.store();
        // Several requests, so that several tails were written.
        let bytes = data(10 * MIB, 31);
        let id = new_id();
        let mut state = s.create_upload(&id).await.unwrap();
        for (i, piece) in chunked(&bytes, &[3 * MIB]).into_iter().enumerate() {
            state = append(s, &id, &state, (i * 3 * MIB) as u64, &[piece]).await;
        }
        let aborted = new_id();
        let astate = s.create_upload(&aborted).await.unwrap();
        let astate = append(s, &aborted, &astate, 0, &chunked(&bytes, &[MIB])).await;
        s.commit_upload(&id, &state, bytes.len() as u64, &Digest::sha256(&bytes))
            .await
            .unwrap();
        s.abort_upload(&aborted, &astate).await.unwrap();

        let parsed = url::Url::parse(url).unwrap();
        let endpoint = parsed
            .query_pairs()
            .find(|(k, _)| k == "endpoint")
            .unwrap()
            .1
            .into_owned();
        let raw = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(parsed.host_str().unwrap())
            .with_region("us-east-1")
            .with_access_key_id("testkey")
            .with_secret_access_key("testsecret")
            .with_allow_http(true)
            .build()
            .unwrap();
        let prefix = Key::from(parsed.path().trim_matches('/'));
        let keys: Vec<String> = raw
            .list(Some(&prefix))
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await;
        assert!(
            keys.iter().all(|k| k.contains("/blobs/")),
            "objects left behind: {keys:?}"
        );
        assert_eq!(keys.len(), 1, "{keys:?}");
    }
}
