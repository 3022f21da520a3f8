//! A thin, safe wrapper over Linux userfaultfd (raw `ioctl`s, structures and numbers from
//! `linux-raw-sys`), with only what the emulated kernel needs: MISSING + WP registration,
//! `COPY`, `ZEROPAGE`, `WRITEPROTECT`, `WAKE`, `POISON`, and batched event reads.
//!
//! Every operation takes plain addresses: the caller (the VM layer) guarantees they lie in a
//! range it registered. The kernel validates ranges itself, so a wrong address gives an
//! error (`EINVAL`/`ENOENT`), never memory unsafety in this process — except `COPY`'s source,
//! which is always a slice here.

use linux_raw_sys::general as g;
use linux_raw_sys::ioctl as io;
use std::io::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `_IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)` (Linux 6.6+; not in the ioctl table
/// of `linux-raw-sys` 0.12).
const UFFDIO_POISON: u32 = 0xC020_AA08;
/// `USERFAULTFD_IOC_NEW` on `/dev/userfaultfd` (Linux 6.1+): `_IO(0xAA, 0)`.
const USERFAULTFD_IOC_NEW: u32 = 0xAA00;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
const UFFDIO_ZEROPAGE_MODE_DONTWAKE: u64 = 1;

/// One decoded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A page fault at `addr`: `write` for a write access, `wp` for a write-protect fault
    /// (the page is present but write-protected).
    Fault { addr: usize, write: bool, wp: bool },
    /// A non-cooperative event (fork, remap, remove, unmap): never requested, counted.
    Other(u8),
}

/// How an ioctl that installs a page ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// Installed (and the waiters woken, unless `DONTWAKE` was asked).
    Done,
    /// `EEXIST`: a page is already mapped there (another resolution won the race). The
    /// caller treats it as success and wakes the range: GNU Mach's `KERN_MEMORY_PRESENT`.
    Exists,
}

/// A userfaultfd with the features the emulator needs.
pub struct Uffd {
    fd: OwnedFd,
    features: u64,
}

fn errno() -> i32 {
    Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Uffd {
    /// Opens a userfaultfd (`userfaultfd(2)`, or `/dev/userfaultfd` when the system call is
    /// refused), non-blocking and close-on-exec, and negotiates the API with write-protect
    /// fault flags and `POISON`. Fails if either feature is missing.
    pub fn open() -> Result<Uffd, String> {
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: userfaultfd(2) takes one integer argument and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as i32;
        let fd = if fd >= 0 {
            fd
        } else {
            let first = Error::last_os_error();
            match Self::open_dev(flags) {
                Ok(fd) => fd,
                Err(second) => {
                    return Err(format!(
                        "userfaultfd(2): {first}; /dev/userfaultfd: {second} \
                         (needs root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access \
                         to /dev/userfaultfd)"
                    ))
                }
            }
        };
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let want = u64::from(g::UFFD_FEATURE_PAGEFAULT_FLAG_WP | g::UFFD_FEATURE_POISON);
        let mut api = g::uffdio_api {
            api: u64::from(g::UFFD_API),
            features: want,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes a `uffdio_api`, which `api` is.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), io::UFFDIO_API as _, &mut api) };
        if r < 0 {
            return Err(format!(
                "UFFDIO_API with write-protect and poison features: {}",
                Error::last_os_error()
            ));
        }
        if api.features & want != want {
            return Err(format!(
                "the kernel's userfaultfd lacks features {:#x} (has {:#x})",
                want & !api.features,
                api.features
            ));
        }
        Ok(Uffd {
            fd,
            features: api.features,
        })
    }

    fn open_dev(flags: i32) -> Result<i32, Error> {
        let path = c"/dev/userfaultfd";
        // SAFETY: `path` is a NUL-terminated string; open returns a fd or -1.
        let dev = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if dev < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: USERFAULTFD_IOC_NEW takes the new fd's flags as an integer argument.
        let fd = unsafe { libc::ioctl(dev, USERFAULTFD_IOC_NEW as _, flags) };
        let err = Error::last_os_error();
        // SAFETY: `dev` is ours and no longer needed.
        unsafe { libc::close(dev) };
        if fd < 0 {
            Err(err)
        } else {
            Ok(fd)
        }
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The raw descriptor (for `poll`).
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn ioctl<T>(&self, req: u32, arg: &mut T) -> Result<(), i32> {
        // SAFETY: every caller passes the structure the request number is defined for.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), req as _, arg as *mut T) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// `UFFDIO_REGISTER` for missing-page and (if `wp`) write-protect faults.
    pub fn register(&self, addr: usize, len: usize, wp: bool) -> Result<(), String> {
        let mut mode = u64::from(g::UFFDIO_REGISTER_MODE_MISSING);
        if wp {
            mode |= u64::from(g::UFFDIO_REGISTER_MODE_WP);
        }
        let mut reg = g::uffdio_register {
            range: g::uffdio_range {
                start: addr as u64,
                len: len as u64,
            },
            mode,
            ioctls: 0,
        };
        self.ioctl(io::UFFDIO_REGISTER, &mut reg).map_err(|e| {
            format!(
                "UFFDIO_REGISTER {addr:#x}+{len:#x}: {}",
                Error::from_raw_os_error(e)
            )
        })
    }

    /// `UFFDIO_COPY` of `src` (whole pages) to `dst`. `wp`: map write-protected (a later write
    /// raises a write-protect fault: dirty tracking). Retries partial copies (`EAGAIN`).
    pub fn copy(&self, dst: usize, src: &[u8], wp: bool, wake: bool) -> Result<Install, i32> {
        let mut done = 0usize;
        while done < src.len() {
            let mut mode = 0u64;
            if wp {
                mode |= u64::from(g::UFFDIO_COPY_MODE_WP);
            }
            if !wake {
                mode |= u64::from(g::UFFDIO_COPY_MODE_DONTWAKE);
            }
            let mut c = g::uffdio_copy {
                dst: (dst + done) as u64,
                src: src[done..].as_ptr() as u64,
                len: (src.len() - done) as u64,
                mode,
                copy: 0,
            };
            match self.ioctl(io::UFFDIO_COPY, &mut c) {
                Ok(()) => return Ok(Install::Done),
                Err(libc::EEXIST) => return Ok(Install::Exists),
                Err(libc::EAGAIN) if c.copy > 0 => done += c.copy as usize,
                Err(libc::EAGAIN) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        Ok(Install::Done)
    }

    /// `UFFDIO_ZEROPAGE` (maps the shared zero page).
    pub fn zeropage(&self, dst: usize, len: usize, wake: bool) -> Result<Install, i32> {
        loop {
            let mut z = g::uffdio_zeropage {
                range: g::uffdio_range {
                    start: dst as u64,
                    len: len as u64,
                },
                mode: if wake {
                    0
                } else {
                    UFFDIO_ZEROPAGE_MODE_DONTWAKE
                },
                zeropage: 0,
            };
            match self.ioctl(io::UFFDIO_ZEROPAGE, &mut z) {
                Ok(()) => return Ok(Install::Done),
                Err(libc::EEXIST) => return Ok(Install::Exists),
                Err(libc::EAGAIN) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
    }

    /// `UFFDIO_WRITEPROTECT`: protect (`on`) or unprotect (which wakes, unless `!wake`).
    pub fn write_protect(&self, addr: usize, len: usize, on: bool, wake: bool) -> Result<(), i32> {
        let mut mode = 0;
        if on {
            mode |= UFFDIO_WRITEPROTECT_MODE_WP;
        } else if !wake {
            mode |= 2; // UFFDIO_WRITEPROTECT_MODE_DONTWAKE
        }
        let mut w = g::uffdio_writeprotect {
            range: g::uffdio_range {
                start: addr as u64,
                len: len as u64,
            },
            mode,
        };
        loop {
            match self.ioctl(io::UFFDIO_WRITEPROTECT, &mut w) {
                Err(libc::EAGAIN) => std::thread::yield_now(),
                r => return r,
            }
        }
    }

    /// `UFFDIO_WAKE`: wakes the threads waiting on faults in the range.
    pub fn wake(&self, addr: usize, len: usize) -> Result<(), i32> {
        let mut r = g::uffdio_range {
            start: addr as u64,
            len: len as u64,
        };
        self.ioctl(io::UFFDIO_WAKE, &mut r)
    }

    /// `UFFDIO_POISON`: the next access of the range raises SIGBUS (wakes the waiters).
    pub fn poison(&self, addr: usize, len: usize) -> Result<Install, i32> {
        loop {
            let mut p = g::uffdio_poison {
                range: g::uffdio_range {
                    start: addr as u64,
                    len: len as u64,
                },
                mode: 0,
                updated: 0,
            };
            match self.ioctl(UFFDIO_POISON, &mut p) {
                Ok(()) => return Ok(Install::Done),
                Err(libc::EEXIST) => return Ok(Install::Exists),
                Err(libc::EAGAIN) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits up to `timeout_ms` for events; true if some are readable.
    pub fn poll(&self, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        r > 0 && p.revents & libc::POLLIN != 0
    }

    /// Reads pending events (non-blocking) into `out` (cleared first); returns how many.
    pub fn read_events(&self, out: &mut Vec<Event>) -> usize {
        const N: usize = 64;
        out.clear();
        // SAFETY: `uffd_msg` is plain old data; all-zero bytes are a valid value.
        let mut buf: [g::uffd_msg; N] = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<g::uffd_msg>();
        // SAFETY: the buffer holds N messages of `size` bytes.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                N * size,
            )
        };
        if r <= 0 {
            return 0;
        }
        for m in buf.iter().take(r as usize / size) {
            let ev = m.event;
            if u32::from(ev) == g::UFFD_EVENT_PAGEFAULT {
                // SAFETY: for a PAGEFAULT event the `pagefault` member of the union is set.
                let pf = unsafe { m.arg.pagefault };
                let flags = pf.flags;
                out.push(Event::Fault {
                    addr: pf.address as usize,
                    write: flags & u64::from(g::UFFD_PAGEFAULT_FLAG_WRITE) != 0,
                    wp: flags & u64::from(g::UFFD_PAGEFAULT_FLAG_WP) != 0,
                });
            } else {
                out.push(Event::Other(ev));
            }
        }
        out.len()
    }
}

/// Anonymous memory helpers (mmap/madvise) shared by both modes.
pub mod mem {
    use std::io::Error;

    /// Reserves `len` bytes of address space (`PROT_NONE`, no backing).
    pub fn reserve(len: usize) -> Result<usize, String> {
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap reserve {len:#x}: {}", Error::last_os_error()));
        }
        Ok(p as usize)
    }

    /// Maps fresh read-write anonymous memory over `addr..addr+len` (inside a reservation this
    /// program owns) and asks for 4 KiB pages (`MADV_NOHUGEPAGE`).
    pub fn map_rw(addr: usize, len: usize) -> Result<(), String> {
        remap(addr, len, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: the range was just mapped by us.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
        if r != 0 {
            return Err(format!("madvise NOHUGEPAGE: {}", Error::last_os_error()));
        }
        Ok(())
    }

    /// Replaces `addr..addr+len` with inaccessible memory: any access raises SIGSEGV, and the
    /// addresses stay reserved so nothing else is ever mapped there (no silent reuse).
    pub fn quarantine(addr: usize, len: usize) -> Result<(), String> {
        remap(addr, len, libc::PROT_NONE)
    }

    fn remap(addr: usize, len: usize, prot: i32) -> Result<(), String> {
        // SAFETY: MAP_FIXED over a range inside a reservation owned by the emulator; no Rust
        // object lives there.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap fixed {addr:#x}+{len:#x}: {}",
                Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Drops the pages of a range (`MADV_DONTNEED`): the next access is a missing-page fault.
    pub fn discard(addr: usize, len: usize) -> Result<(), i32> {
        // SAFETY: the range belongs to a mapping owned by the emulator.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if r != 0 {
            Err(super::errno())
        } else {
            Ok(())
        }
    }

    /// Unmaps a whole reservation.
    pub fn release(addr: usize, len: usize) {
        // SAFETY: the reservation belongs to the emulator and nothing uses it any more.
        unsafe { libc::munmap(addr as *mut libc::c_void, len) };
    }
}
