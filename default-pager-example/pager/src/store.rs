//! Paging stores: where the pager keeps pages. A [`BackingStore`] is a plain array of
//! page-sized blocks; which blocks are free is the pager's business (a bitmap per store, see
//! [`crate::space`]), as in the Hurd's partitions.
//!
//! * [`MemStore`] (`no_std`): blocks in memory, allocated on first write;
//! * [`FileStore`] (`std`): a file, read and written with `pread`/`pwrite`;
//! * on GNU Mach (issue 8) a store over `device_read`/`device_write` of a disk implements the
//!   same trait.

use crate::platform::SpinLock;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The block number is past the end of the store.
    OutOfRange { block: u64, blocks: u64 },
    /// The buffer is not exactly one block long.
    BadLength { len: usize, block_size: usize },
    /// The device or file failed (the message says how).
    Io(alloc::string::String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::OutOfRange { block, blocks } => {
                write!(
                    f,
                    "block {block} is past the end of the store ({blocks} blocks)"
                )
            }
            StoreError::BadLength { len, block_size } => {
                write!(f, "buffer of {len} bytes for a block of {block_size}")
            }
            StoreError::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreError {}

/// A paging store: `blocks()` blocks of `block_size()` bytes, read and written whole. Reads
/// and writes of different blocks may run in parallel; the pager never accesses one block
/// from two threads at once.
pub trait BackingStore: Send + Sync {
    /// Bytes per block; the pager serves only objects whose page size equals it.
    fn block_size(&self) -> usize {
        crate::PAGE_SIZE
    }
    /// Number of blocks.
    fn blocks(&self) -> u64;
    /// Reads block `block` into `buf` (exactly one block).
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError>;
    /// Writes `data` (exactly one block) to block `block`.
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError>;
    /// A name for messages and statistics.
    fn name(&self) -> &str {
        "store"
    }
    /// Whether a read or write may block (disk I/O): the std layer then lets another object
    /// thread receive while it runs. `true` unless the store says otherwise.
    fn may_block(&self) -> bool {
        true
    }
}

/// Checks a block access against the store's geometry.
pub fn check_access(
    block: u64,
    blocks: u64,
    len: usize,
    block_size: usize,
) -> Result<(), StoreError> {
    if block >= blocks {
        return Err(StoreError::OutOfRange { block, blocks });
    }
    if len != block_size {
        return Err(StoreError::BadLength { len, block_size });
    }
    Ok(())
}

/// An in-memory store (`no_std`): each block is allocated when first written and reads as
/// zeros before that. Every block has its own lock, so threads do not contend.
pub struct MemStore {
    block_size: usize,
    blocks: Vec<SpinLock<Option<Box<[u8]>>>>,
    name: &'static str,
}

impl MemStore {
    /// A store of `blocks` blocks of [`crate::PAGE_SIZE`] bytes.
    pub fn new(blocks: u64) -> MemStore {
        MemStore::with_block_size(blocks, crate::PAGE_SIZE)
    }

    /// A store of `blocks` blocks of `block_size` bytes.
    pub fn with_block_size(blocks: u64, block_size: usize) -> MemStore {
        let n = usize::try_from(blocks).unwrap_or(usize::MAX);
        let mut v = Vec::new();
        v.resize_with(n, || SpinLock::new(None));
        MemStore {
            block_size,
            blocks: v,
            name: "memory",
        }
    }

    /// A store holding `bytes` bytes (rounded down to whole pages).
    pub fn with_bytes(bytes: u64) -> MemStore {
        MemStore::new(bytes / crate::PAGE_SIZE as u64)
    }

    /// Names the store (for statistics).
    pub fn named(mut self, name: &'static str) -> MemStore {
        self.name = name;
        self
    }

    /// Blocks that hold data (were written at least once).
    pub fn allocated_blocks(&self) -> u64 {
        self.blocks.iter().filter(|b| b.lock().is_some()).count() as u64
    }

    /// Flips one byte of a block (for tests of checksum verification). Returns whether the
    /// block holds data.
    pub fn corrupt(&self, block: u64, byte: usize) -> bool {
        let Some(slot) = usize::try_from(block).ok().and_then(|b| self.blocks.get(b)) else {
            return false;
        };
        let mut g = slot.lock();
        match g.as_mut().and_then(|d| d.get_mut(byte)) {
            Some(x) => {
                *x ^= 0xff;
                true
            }
            None => false,
        }
    }
}

impl BackingStore for MemStore {
    fn block_size(&self) -> usize {
        self.block_size
    }
    fn blocks(&self) -> u64 {
        self.blocks.len() as u64
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks(), buf.len(), self.block_size)?;
        let slot = &self.blocks[block as usize];
        match &*slot.lock() {
            Some(d) => buf.copy_from_slice(d),
            None => buf.fill(0),
        }
        Ok(())
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks(), data.len(), self.block_size)?;
        let slot = &self.blocks[block as usize];
        let mut g = slot.lock();
        match g.as_mut() {
            Some(d) => d.copy_from_slice(data),
            None => *g = Some(data.into()),
        }
        Ok(())
    }
    fn name(&self) -> &str {
        self.name
    }
    fn may_block(&self) -> bool {
        false
    }
}

#[cfg(feature = "std")]
pub use self::file::FileStore;

#[cfg(feature = "std")]
mod file {
    use super::{check_access, BackingStore, StoreError};
    use std::fs::{File, OpenOptions};
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};

    /// A paging file: block `n` is at byte `n * block_size`. Reads and writes use
    /// `pread`/`pwrite`, so threads share the file without a lock.
    pub struct FileStore {
        file: File,
        blocks: u64,
        block_size: usize,
        path: PathBuf,
        name: String,
    }

    impl FileStore {
        /// Creates (or truncates) `path` and makes it `bytes` long (rounded down to whole
        /// pages; a sparse file where the file system allows it).
        pub fn create(path: impl AsRef<Path>, bytes: u64) -> std::io::Result<FileStore> {
            let path = path.as_ref().to_path_buf();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            let bs = crate::PAGE_SIZE as u64;
            let blocks = bytes / bs;
            file.set_len(blocks * bs)?;
            Ok(FileStore::from_parts(file, blocks, path))
        }

        /// Opens an existing file as a store of its whole length (rounded down to pages).
        pub fn open(path: impl AsRef<Path>) -> std::io::Result<FileStore> {
            let path = path.as_ref().to_path_buf();
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let blocks = file.metadata()?.len() / crate::PAGE_SIZE as u64;
            Ok(FileStore::from_parts(file, blocks, path))
        }

        fn from_parts(file: File, blocks: u64, path: PathBuf) -> FileStore {
            FileStore {
                file,
                blocks,
                block_size: crate::PAGE_SIZE,
                name: path.display().to_string(),
                path,
            }
        }

        /// The file's path.
        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl BackingStore for FileStore {
        fn block_size(&self) -> usize {
            self.block_size
        }
        fn blocks(&self) -> u64 {
            self.blocks
        }
        fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
            check_access(block, self.blocks, buf.len(), self.block_size)?;
            self.file
                .read_exact_at(buf, block * self.block_size as u64)
                .map_err(|e| StoreError::Io(format!("{}: read of block {block}: {e}", self.name)))
        }
        fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
            check_access(block, self.blocks, data.len(), self.block_size)?;
            self.file
                .write_all_at(data, block * self.block_size as u64)
                .map_err(|e| StoreError::Io(format!("{}: write of block {block}: {e}", self.name)))
        }
        fn name(&self) -> &str {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_store_round_trip_and_bounds() {
        let s = MemStore::new(4);
        let mut buf = alloc::vec![1u8; 4096];
        s.read_block(3, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        s.write_block(3, &[7u8; 4096]).unwrap();
        s.read_block(3, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        assert_eq!(s.allocated_blocks(), 1);
        assert!(matches!(
            s.write_block(4, &[0; 4096]),
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.write_block(0, &[0; 10]),
            Err(StoreError::BadLength { .. })
        ));
        assert!(s.corrupt(3, 5));
        s.read_block(3, &mut buf).unwrap();
        assert_eq!(buf[5], !7);
    }

    #[cfg(feature = "std")]
    #[test]
    fn file_store_round_trip() {
        let p = std::env::temp_dir().join(format!("dp-filestore-{}", std::process::id()));
        let s = FileStore::create(&p, 3 * 4096 + 100).unwrap();
        assert_eq!(s.blocks(), 3);
        let page: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
        s.write_block(2, &page).unwrap();
        let mut buf = alloc::vec![0u8; 4096];
        s.read_block(2, &mut buf).unwrap();
        assert_eq!(buf, page);
        assert!(s.read_block(3, &mut buf).is_err());
        drop(s);
        let s = FileStore::open(&p).unwrap();
        assert_eq!(s.blocks(), 3);
        let _ = std::fs::remove_file(&p);
    }
}
