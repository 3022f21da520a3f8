//! The console: `device_open(device_master, D_WRITE, "console")` and `device_write`
//! (generated stubs). Before [`open`] succeeds, or if it fails, output goes to the
//! `mach_print` debugging trap instead.
//!
//! [`kprint!`](crate::kprint) / [`kprintln!`](crate::kprintln) format into a stack buffer
//! and write it with one `device_write` per 512 bytes.

use crate::env::Borrowed;
use crate::kernel::device::client as dev;
use crate::transport::TrapTransport;
use crate::trap;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use mig_runtime::{PortName, RpcError, SendRight};

/// `D_READ`.
pub const D_READ: u32 = 0x1;
/// `D_WRITE`.
pub const D_WRITE: u32 = 0x2;

static CONSOLE: AtomicU32 = AtomicU32::new(0);

/// Opens the kernel's `console` device through `device_master` and uses it from now on.
pub fn open(device_master: &SendRight) -> Result<(), RpcError> {
    let port = dev::device_open(&TrapTransport, device_master, D_READ | D_WRITE, b"console")?;
    CONSOLE.store(port.into_raw().0, Ordering::Relaxed);
    Ok(())
}

/// The console device port, if open (e.g. to give another task a send right to it).
pub fn port() -> Option<Borrowed> {
    match CONSOLE.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Borrowed::new(PortName(n))),
    }
}

/// Uses `name` (a send right to the console device, e.g. one the parent task inserted) as
/// the console.
pub fn adopt(name: PortName) {
    CONSOLE.store(name.0, Ordering::Relaxed);
}

fn mach_print_bytes(mut bytes: &[u8]) {
    let mut buf = [0u8; 128];
    while !bytes.is_empty() {
        let n = bytes.len().min(buf.len() - 1);
        buf[..n].copy_from_slice(&bytes[..n]);
        for b in &mut buf[..n] {
            if *b == 0 {
                *b = b'?';
            }
        }
        buf[n] = 0;
        if let Ok(s) = core::ffi::CStr::from_bytes_with_nul(&buf[..=n]) {
            trap::mach_print(s);
        }
        bytes = &bytes[n..];
    }
}

/// Writes raw bytes to the console (or `mach_print` when none is open).
pub fn write_bytes(mut bytes: &[u8]) {
    let Some(c) = port() else {
        mach_print_bytes(bytes);
        return;
    };
    while !bytes.is_empty() {
        match dev::device_write(&TrapTransport, &c, 0, 0, bytes) {
            Ok(n) if n > 0 => bytes = &bytes[(n as usize).min(bytes.len())..],
            _ => {
                mach_print_bytes(bytes);
                return;
            }
        }
    }
}

/// A formatter that buffers up to `N` bytes before each `device_write`.
pub struct Writer<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Writer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Writer {
            buf: [0; N],
            len: 0,
        }
    }
    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            write_bytes(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<const N: usize> Default for Writer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Writer<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut s = s.as_bytes();
        while !s.is_empty() {
            if self.len == N {
                self.flush();
            }
            let n = s.len().min(N - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
            self.len += n;
            s = &s[n..];
        }
        Ok(())
    }
}

impl<const N: usize> Drop for Writer<N> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Prints to the console (formatting without allocating).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        let mut w = $crate::console::Writer::<512>::new();
        let _ = ::core::fmt::Write::write_fmt(&mut w, ::core::format_args!($($arg)*));
    }};
}

/// Prints a line to the console (formatting without allocating).
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {{
        let mut w = $crate::console::Writer::<512>::new();
        let _ = ::core::fmt::Write::write_fmt(&mut w, ::core::format_args!($($arg)*));
        let _ = ::core::fmt::Write::write_str(&mut w, "\n");
    }};
}
