//! Small helpers: stable hashing, bounded subprocesses and an atomic on-disk cache.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{OracleError, Result};

/// A stable 128-bit content hash (two independent 64-bit FNV-1a lanes), printed as 32 hex
/// digits. Stable across Rust versions and runs, unlike `DefaultHasher`; collisions are not
/// a security concern here (it keys a build cache under `target/`).
#[derive(Clone, Debug)]
pub struct StableHasher {
    a: u64,
    b: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A fresh hasher.
    pub fn new() -> Self {
        StableHasher {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x6c62_272e_07bb_0142,
        }
    }

    /// Feeds `bytes`, length-prefixed so that consecutive items cannot run together.
    pub fn item(&mut self, bytes: &[u8]) -> &mut Self {
        self.raw(&(bytes.len() as u64).to_le_bytes());
        self.raw(bytes);
        self
    }

    /// Feeds a string item.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.item(s.as_bytes())
    }

    fn raw(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.a ^= u64::from(byte);
            self.a = self.a.wrapping_mul(Self::PRIME);
            self.b ^= u64::from(byte.rotate_left(3)) ^ 0x5a;
            self.b = self.b.wrapping_mul(Self::PRIME).rotate_left(5);
        }
    }

    /// The digest as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.a, self.b)
    }
}

/// What a finished subprocess left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` with stdin closed and stdout/stderr captured, killing it after `timeout`.
pub(crate) fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Finished> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| OracleError::new(format!("cannot start {shown}: {e}")))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OracleError::new(format!(
                    "{shown} did not finish within {timeout:?}; killed"
                )));
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(OracleError::new(format!("waiting for {shown}: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// Runs `cmd` and fails unless it exits with status 0; returns its stdout.
pub(crate) fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<Vec<u8>> {
    let shown = format!("{cmd:?}");
    let done = run_bounded(cmd, timeout)?;
    if !done.status.success() {
        return Err(OracleError::new(format!(
            "{shown} failed ({}):\n{}",
            done.status,
            tail(&String::from_utf8_lossy(&done.stderr), 4000)
        )));
    }
    Ok(done.stdout)
}

/// The last `max` bytes of `s` (on a char boundary), for error messages.
pub(crate) fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty scratch directory `<parent>/.tmp-<stem>-<unique>`.
pub(crate) fn scratch_dir(parent: &Path, stem: &str) -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!(".tmp-{stem}-{}-{n}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| OracleError::io("cannot create", &dir, e))?;
    Ok(dir)
}

/// Moves the finished `scratch` directory to `dest` atomically. If another process or
/// thread published `dest` first, `scratch` is removed and the existing `dest` is kept
/// (both have the same content, since `dest` is named by a content hash).
pub(crate) fn publish_dir(scratch: &Path, dest: &Path) -> Result<()> {
    match fs::rename(scratch, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(scratch);
            Ok(())
        }
        Err(e) => Err(OracleError::io("cannot publish cache entry", dest, e)),
    }
}

/// Writes `contents` to `path` unless it already holds exactly that (keeps mtimes stable).
pub(crate) fn write_if_changed(path: &Path, contents: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| OracleError::io("cannot create", parent, e))?;
    }
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, contents).map_err(|e| OracleError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| OracleError::io("cannot write", path, e))
}

/// Reads a UTF-8 (lossy) text file.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| OracleError::io("cannot read", path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_item_separated() {
        let h = |items: &[&str]| {
            let mut h = StableHasher::new();
            for i in items {
                h.str(i);
            }
            h.hex()
        };
        assert_eq!(h(&["ab", "c"]), h(&["ab", "c"]));
        assert_ne!(h(&["ab", "c"]), h(&["a", "bc"]));
        assert_eq!(h(&[]).len(), 32);
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("héllo", 3), "llo");
        assert_eq!(tail("hé", 1), "");
        assert_eq!(tail("abc", 10), "abc");
    }
}
