//! `FsBlobStore`: committed blobs and upload scratch files under one local
//! directory, with crash-safe commits (fsync, atomic rename, fsync of the
//! directory) and zero-copy reads through memory maps.
//!
//! Layout under the root:
//!
//! ```text
//! blobs/<algorithm>/<first two hex digits>/<hex>   committed, immutable
//! uploads/<upload id>/data                         bytes of an open upload
//! ```
//!
//! Uploads and blobs live on the same filesystem, so a commit is a
//! `rename(2)`: the final path holds either nothing or the complete blob.
//! The filesystem needs no backend state; it is always the empty string.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_core::error::{CoreError, CoreResult};
use berth_core::ports::{BlobStore, ByteStream, UploadWriter};
use berth_oci::Digest;
use bytes::Bytes;
use futures::StreamExt;
use memmap2::{Advice, MmapOptions};

use crate::upload_id::check_upload_id;

/// Incoming chunks are gathered up to this size before one blocking write:
/// hyper hands over 8–64 KiB at a time, and a thread hop per chunk would
/// dominate the cost of a large push.
const WRITE_BUFFER: usize = 1 << 20;
/// Reads of fewer bytes than this are copied into memory; larger ones are
/// served from a memory map.
const MMAP_THRESHOLD: u64 = 64 << 10;
/// Size of the chunks a read yields.
const READ_CHUNK: usize = 2 << 20;
/// Blobs are mapped this much at a time, so a large pull keeps only a few
/// windows mapped (and counted in the process's RSS) at once.
const MAP_WINDOW: u64 = 16 << 20;
/// Written data is handed to the kernel for write-back every this many
/// bytes, so the fsync that ends an upload has little left to do.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// Buffers in flight between the request and the writing thread.
const WRITE_QUEUE: usize = 4;

/// Blob storage in a local directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: Arc<PathBuf>,
    /// Fan-out directories whose own entry is known to be durable.
    durable_dirs: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> CoreResult<Self> {
        let root = root.into();
        for dir in [root.join("blobs"), root.join("uploads")] {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        }
        Ok(FsBlobStore {
            root: Arc::new(root),
            durable_dirs: Arc::default(),
        })
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_dir(&self, id: &str) -> CoreResult<PathBuf> {
        Ok(self.root.join("uploads").join(check_upload_id(id)?))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    fn kind(&self) -> &'static str {
        "filesystem"
    }

    async fn create_upload(&self, id: &str) -> CoreResult<String> {
        let dir = self.upload_dir(id)?;
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
            let data = dir.join("data");
            File::create(&data).map_err(|e| io_error("create", &data, e))?;
            Ok(String::new())
        })
        .await
    }

    async fn append_upload(
        &self,
        id: &str,
        _state: &str,
        offset: u64,
    ) -> CoreResult<Box<dyn UploadWriter>> {
        let dir = self.upload_dir(id)?;
        let file = blocking(move || open_for_append(&dir, offset)).await?;
        Ok(Box::new(FsUploadWriter::start(file, offset)))
    }

    async fn read_upload(&self, id: &str, _state: &str, size: u64) -> CoreResult<ByteStream> {
        let data = self.upload_dir(id)?.join("data");
        let file = blocking(move || {
            let file = File::open(&data).map_err(|e| io_error("open", &data, e))?;
            let len = file
                .metadata()
                .map_err(|e| io_error("stat", &data, e))?
                .len();
            if len < size {
                return Err(CoreError::Internal(format!(
                    "upload data {} holds {len} bytes, fewer than the {size} recorded",
                    data.display()
                )));
            }
            Ok(file)
        })
        .await?;
        // Upload files can still be truncated by a later append, so they
        // are read, never mapped.
        Ok(read_file_chunks(Arc::new(file), 0, size))
    }

    async fn commit_upload(
        &self,
        id: &str,
        _state: &str,
        size: u64,
        digest: &Digest,
    ) -> CoreResult<()> {
        let dir = self.upload_dir(id)?;
        let target = self.blob_path(digest);
        let durable_dirs = self.durable_dirs.clone();
        blocking(move || commit(&dir, &target, size, &durable_dirs)).await
    }

    async fn abort_upload(&self, id: &str, _state: &str) -> CoreResult<()> {
        let dir = self.upload_dir(id)?;
        blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &dir, e)),
        })
        .await
    }

    async fn read(&self, digest: &Digest, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
        let path = self.blob_path(digest);
        let digest = digest.clone();
        blocking(move || read_blob(&path, &digest, range)).await
    }

    async fn stat(&self, digest: &Digest) -> CoreResult<Option<u64>> {
        let path = self.blob_path(digest);
        blocking(move || match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("stat", &path, e)),
        })
        .await
    }

    async fn delete(&self, digest: &Digest) -> CoreResult<()> {
        let path = self.blob_path(digest);
        // Parent directories are left in place: removing one could race
        // with a commit that has just created it.
        blocking(move || remove_blob_file(&path)).await
    }

    /// Unlinks in `parallel` blocking threads, each taking a share.
    async fn delete_many(&self, digests: &[Digest], parallel: usize) -> CoreResult<()> {
        let paths: Vec<PathBuf> = digests.iter().map(|d| self.blob_path(d)).collect();
        let share = paths.len().div_ceil(parallel.max(1)).max(1);
        let jobs: Vec<_> = paths
            .chunks(share)
            .map(|c| {
                let c = c.to_vec();
                blocking(move || c.iter().try_for_each(|p| remove_blob_file(p)))
            })
            .collect();
        for r in futures::future::join_all(jobs).await {
            r?;
        }
        Ok(())
    }
}

fn remove_blob_file(path: &Path) -> CoreResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path, e)),
    }
}

/// What the request side sends to the writing thread.
enum WriteOp {
    Data(Bytes),
    /// Everything was sent: make it durable and stop.
    Finish,
}

/// Appends to one upload's data file. Chunks are gathered into
/// `WRITE_BUFFER` batches and written by a dedicated blocking thread, so
/// receiving and hashing the next bytes overlaps with writing the last
/// ones; write-back to the disk starts every `WRITEBACK_EVERY` bytes.
struct FsUploadWriter {
    buffer: Vec<u8>,
    tx: Option<tokio::sync::mpsc::Sender<WriteOp>>,
    worker: Option<tokio::task::JoinHandle<CoreResult<()>>>,
    /// Set when the request is dropped before `finish`: the thread stops
    /// writing what is still queued.
    abandoned: Arc<AtomicBool>,
}

impl Drop for FsUploadWriter {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.abandoned.store(true, Ordering::Release);
        }
    }
}

impl FsUploadWriter {
    fn start(mut file: File, offset: u64) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<WriteOp>(WRITE_QUEUE);
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = abandoned.clone();
        let worker = tokio::task::spawn_blocking(move || -> CoreResult<()> {
            let fail =
                |e: io::Error| CoreError::Internal(format!("writing upload data failed: {e}"));
            let mut flushed = offset;
            let mut written = offset;
            while let Some(op) = rx.blocking_recv() {
                match op {
                    WriteOp::Data(bytes) => {
                        if stop.load(Ordering::Acquire) {
                            // Nothing is promised about an abandoned
                            // request's data; a retry rewrites it.
                            return Ok(());
                        }
                        file.write_all(&bytes).map_err(fail)?;
                        written += bytes.len() as u64;
                        if written - flushed >= WRITEBACK_EVERY {
                            start_writeback(&file, flushed, written - flushed);
                            flushed = written;
                        }
                    }
                    WriteOp::Finish => return file.sync_data().map_err(fail),
                }
            }
            // The request was abandoned: nothing is promised about the data.
            Ok(())
        });
        FsUploadWriter {
            buffer: Vec::new(),
            tx: Some(tx),
            worker: Some(worker),
            abandoned,
        }
    }

    async fn send(&mut self, op: WriteOp) -> CoreResult<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| CoreError::Internal("upload writer used after it finished".into()))?;
        if tx.send(op).await.is_err() {
            // The thread stopped: its result says why.
            return Err(self.join().await.err().unwrap_or_else(|| {
                CoreError::Internal("the upload writing thread stopped".into())
            }));
        }
        Ok(())
    }

    async fn send_buffer(&mut self) -> CoreResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.buffer);
        self.send(WriteOp::Data(Bytes::from(full))).await
    }

    async fn join(&mut self) -> CoreResult<()> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w
                .await
                .map_err(|e| CoreError::Internal(format!("upload writing thread failed: {e}")))?,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl UploadWriter for FsUploadWriter {
    async fn write(&mut self, chunk: Bytes) -> CoreResult<()> {
        if chunk.len() >= WRITE_BUFFER {
            self.send_buffer().await?;
            return self.send(WriteOp::Data(chunk)).await;
        }
        if self.buffer.len() + chunk.len() > WRITE_BUFFER {
            self.send_buffer().await?;
        }
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> CoreResult<String> {
        self.send_buffer().await?;
        self.send(WriteOp::Finish).await?;
        self.join().await?;
        Ok(String::new())
    }
}

/// Asks the kernel to start writing `[offset, offset + len)` to the disk
/// now (Linux `sync_file_range`), without waiting. A hint: errors are
/// reported by the final fsync.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor we own; it reads no
        // memory of ours.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Opens an upload's data file positioned at `offset`, dropping whatever a
/// failed request left beyond it.
fn open_for_append(dir: &Path, offset: u64) -> CoreResult<File> {
    let data = dir.join("data");
    if offset == 0 {
        // The upload may have been created just before a crash that lost
        // its (not yet durable) directory: nothing is lost, start afresh.
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(offset == 0)
        .truncate(false)
        .open(&data)
        .map_err(|e| io_error("open", &data, e))?;
    // A writer of an abandoned request may still be finishing its queued
    // writes: wait for it before truncating (the lock lives as long as the
    // file, which the new writer keeps).
    file.lock().map_err(|e| io_error("lock", &data, e))?;
    let len = file
        .metadata()
        .map_err(|e| io_error("stat", &data, e))?
        .len();
    if len < offset {
        return Err(CoreError::Internal(format!(
            "upload data {} holds {len} bytes, fewer than the {offset} recorded",
            data.display()
        )));
    }
    if len > offset {
        file.set_len(offset)
            .map_err(|e| io_error("truncate", &data, e))?;
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io_error("seek", &data, e))?;
    Ok(file)
}

/// Moves the first `size` bytes of the upload in `dir` to `target`.
///
/// Order matters for crash safety: the data is made durable before the
/// rename, and the rename before the upload is removed, so at any moment
/// `target` is absent or complete.
fn commit(
    dir: &Path,
    target: &Path,
    size: u64,
    durable_dirs: &Mutex<HashSet<PathBuf>>,
) -> CoreResult<()> {
    if blob_has_size(target, size)? {
        // Stored already (a parallel push, or a retry after a crash that
        // followed the rename): keep the one copy.
        remove_upload_dir(dir);
        return Ok(());
    }
    let data = dir.join("data");
    let file = match OpenOptions::new().write(true).open(&data) {
        Ok(file) => file,
        // A concurrent commit of this very upload may have moved it.
        Err(e) if e.kind() == io::ErrorKind::NotFound && blob_has_size(target, size)? => {
            remove_upload_dir(dir);
            return Ok(());
        }
        Err(e) => return Err(io_error("open", &data, e)),
    };
    // No abandoned writer may still change what is about to be committed.
    file.lock().map_err(|e| io_error("lock", &data, e))?;
    let len = file
        .metadata()
        .map_err(|e| io_error("stat", &data, e))?
        .len();
    if len < size {
        return Err(CoreError::Internal(format!(
            "upload data {} holds {len} bytes, fewer than the {size} to commit",
            data.display()
        )));
    }
    if len > size {
        file.set_len(size)
            .map_err(|e| io_error("truncate", &data, e))?;
    }
    file.sync_all().map_err(|e| io_error("fsync", &data, e))?;
    drop(file);

    let parent = target
        .parent()
        .ok_or_else(|| CoreError::Internal(format!("{} has no parent", target.display())))?;
    create_dir_durable(parent)?;
    // Atomic replace: concurrent commits of one digest each rename their
    // own (identical) file; readers keep whichever inode they opened.
    std::fs::rename(&data, target).map_err(|e| io_error("rename into", target, e))?;
    sync_dir(parent)?;
    // The fan-out directory may have been created moments ago by another
    // commit that has not yet made its entry durable: do it here too, so
    // this commit is durable when it returns — once per directory and
    // process, after which it is known to be durable.
    let known = durable_dirs
        .lock()
        .map(|d| d.contains(parent))
        .unwrap_or(false);
    if !known {
        if let Some(grandparent) = parent.parent() {
            sync_dir(grandparent)?;
        }
        if let Ok(mut d) = durable_dirs.lock() {
            d.insert(parent.to_path_buf());
        }
    }
    remove_upload_dir(dir);
    Ok(())
}

/// Whether `path` is a stored blob of `size` bytes. A blob of another size
/// cannot be a correct copy and is replaced by the commit.
fn blob_has_size(path: &Path, size: u64) -> CoreResult<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == size => Ok(true),
        Ok(meta) => {
            tracing::warn!(
                path = %path.display(),
                found = meta.len(),
                expected = size,
                "stored blob has the wrong size; replacing it"
            );
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("stat", path, e)),
    }
}

/// Removes an upload's directory after its commit. The blob is committed
/// by then, so a failure is only logged.
fn remove_upload_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "could not remove upload"),
    }
}

/// Creates `dir` and any missing parents, making each new entry durable.
fn create_dir_durable(dir: &Path) -> CoreResult<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = dir
                .parent()
                .ok_or_else(|| io_error("create directory", dir, e))?;
            create_dir_durable(parent)?;
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error("create directory", dir, e)),
            }
        }
        Err(e) => return Err(io_error("create directory", dir, e)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> CoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync directory", dir, e))
}

/// Opens a committed blob and streams `range` (inclusive) or all of it.
fn read_blob(path: &Path, digest: &Digest, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CoreError::BlobNotFound(digest.clone()))
        }
        Err(e) => return Err(io_error("open", path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| io_error("stat", path, e))?
        .len();
    let (start, count) = match range {
        None => (0, len),
        Some((start, end)) => {
            if start > end || start >= len {
                return Err(CoreError::Internal(format!(
                    "range {start}-{end} is outside blob {digest} of {len} bytes"
                )));
            }
            // Clamp rather than fail on an end past the blob, as HTTP does.
            (start, end.min(len - 1) - start + 1)
        }
    };
    if count == 0 {
        return Ok(futures::stream::empty().boxed());
    }
    if count < MMAP_THRESHOLD {
        let mut buf = vec![0; count as usize];
        file.read_exact_at(&mut buf, start)
            .map_err(|e| io_error("read", path, e))?;
        return Ok(futures::stream::once(async move { Ok(Bytes::from(buf)) }).boxed());
    }
    let file = Arc::new(file);
    let path = path.to_path_buf();
    let windows = (0..count)
        .step_by(MAP_WINDOW as usize)
        .map(move |w| (start + w, (count - w).min(MAP_WINDOW)));
    Ok(futures::stream::iter(windows)
        .flat_map(move |(at, len)| match map_window(&file, &path, at, len) {
            Ok(chunks) => futures::stream::iter(chunks.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::once(async move { Err(io::Error::other(e.to_string())) })
                .right_stream(),
        })
        .boxed())
}

/// Maps `len` bytes of a committed blob from `at`, as zero-copy chunks.
/// The window is unmapped when the last chunk is dropped.
fn map_window(file: &File, path: &Path, at: u64, len: u64) -> CoreResult<Vec<Bytes>> {
    let len = usize::try_from(len)
        .map_err(|_| CoreError::Internal(format!("window of {len} bytes cannot be mapped")))?;
    // SAFETY: the map is read-only and committed blobs are immutable: a
    // blob file is never written or truncated after its rename into place,
    // only replaced by another rename (a new inode) or unlinked, and
    // neither affects pages already mapped from this inode. The one way to
    // break this is someone editing the store's files by hand.
    let map = unsafe { MmapOptions::new().offset(at).len(len).map(file) }
        .map_err(|e| io_error("map", path, e))?;
    // Hints only: read ahead, so the page faults taken while the response
    // is written hit the page cache instead of the disk.
    let _ = map.advise(Advice::Sequential);
    let _ = map.advise(Advice::WillNeed);
    let bytes = Bytes::from_owner(map);
    Ok((0..len)
        .step_by(READ_CHUNK)
        .map(|o| bytes.slice(o..(o + READ_CHUNK).min(len)))
        .collect())
}

/// Streams `count` bytes of `file` from `start`, one blocking read per chunk.
fn read_file_chunks(file: Arc<File>, start: u64, count: u64) -> ByteStream {
    let end = start + count;
    futures::stream::try_unfold(start, move |pos| {
        let file = Arc::clone(&file);
        async move {
            if pos >= end {
                return Ok(None);
            }
            let n = (end - pos).min(READ_CHUNK as u64) as usize;
            let buf = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; n];
                file.read_exact_at(&mut buf, pos).map(|()| buf)
            })
            .await
            .map_err(io::Error::other)??;
            Ok(Some((Bytes::from(buf), pos + n as u64)))
        }
    })
    .boxed()
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T, F>(f: F) -> CoreResult<T>
where
    F: FnOnce() -> CoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("blocking storage task failed: {e}")))?
}

fn io_error(what: &str, path: &Path, e: io::Error) -> CoreError {
    CoreError::Internal(format!("{what} {}: {e}", path.display()))
}
