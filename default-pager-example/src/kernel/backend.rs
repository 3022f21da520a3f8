//! How pages get in and out of task memory: real userfaultfd operations, or the portable
//! software emulation. The VM layer calls these with the object's state locked, so every
//! state change and the matching page-table change happen together. Installing a page does
//! not wake the threads waiting for it: the VM layer wakes them ([`Backend::wake`]) once it
//! has released the object's lock, so that a woken thread's next fault on the object does
//! not find the lock still held (and sleep on it) while the installing thread finishes.

use super::uffd::{mem, Install, Uffd};
use super::PAGE;

/// Where the kernel's page faults come from.
pub enum Backend {
    /// Real page faults: task memory is registered with userfaultfd (MISSING + WP).
    Uffd(Uffd),
    /// No userfaultfd: tasks access memory through `EmuTask::read`/`write`, which raise
    /// software faults; installing a page is a `memcpy`.
    Portable,
}

/// What happened when a page was installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    Done,
    /// Already present (`EEXIST`): counted, the range woken.
    Present,
}

impl Backend {
    pub fn is_uffd(&self) -> bool {
        matches!(self, Backend::Uffd(_))
    }

    fn installed(r: Install) -> Installed {
        match r {
            Install::Done => Installed::Done,
            Install::Exists => Installed::Present,
        }
    }

    /// Installs `data` (one page) at `addr`: write-protected (clean, dirty tracking) unless
    /// `writable`.
    pub fn install(&self, addr: usize, data: &[u8], writable: bool) -> Result<Installed, i32> {
        match self {
            Backend::Uffd(u) => Ok(Self::installed(u.copy(addr, data, !writable, false)?)),
            Backend::Portable => {
                // SAFETY: `addr` is a page of a read-write mapping owned by the emulator
                // (the caller holds the object's lock, so no task access races with it).
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, PAGE);
                }
                Ok(Installed::Done)
            }
        }
    }

    /// Installs several adjacent pages at once (one `UFFDIO_COPY`); `Present` if any page of
    /// the run was already there (the caller then installs page by page).
    pub fn install_run(&self, addr: usize, data: &[u8], writable: bool) -> Result<Installed, i32> {
        match self {
            Backend::Uffd(u) => Ok(Self::installed(u.copy(addr, data, !writable, false)?)),
            Backend::Portable => {
                // SAFETY: as in `install`, for `data.len()` bytes of the object's mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len());
                }
                Ok(Installed::Done)
            }
        }
    }

    /// Zero-fills the page at `addr`: for a read fault the shared zero page (one `ZEROPAGE`),
    /// **not** write-protected — a write copies it in the
    /// Linux kernel without a userfault, so the VM treats such a page as possibly written
    /// and write-protects and inspects it before it pages it out (`clean_page`); for a write
    /// fault a writable page of zeros (`COPY`: no extra copy-on-write fault).
    /// With `copy_for_reads`, read faults get a write-protected `COPY` of zeros instead (a
    /// real page instead of the shared zero page; the first write is a write-protect fault).
    pub fn zero_fill(
        &self,
        addr: usize,
        write: bool,
        zeros: &[u8],
        copy_for_reads: bool,
    ) -> Result<Installed, i32> {
        match self {
            Backend::Uffd(u) => {
                if write {
                    return self.install(addr, zeros, true);
                }
                if copy_for_reads {
                    return self.install(addr, zeros, false);
                }
                Ok(Self::installed(u.zeropage(addr, PAGE, false)?))
            }
            Backend::Portable => self.install(addr, zeros, true),
        }
    }

    /// Makes the next access of `addr` fail (SIGBUS with userfaultfd).
    pub fn poison(&self, addr: usize) -> Result<(), i32> {
        match self {
            Backend::Uffd(u) => {
                let r = u.poison(addr, PAGE)?;
                if r == Install::Exists {
                    let _ = u.wake(addr, PAGE);
                }
                Ok(())
            }
            Backend::Portable => Ok(()),
        }
    }

    /// Write-protects (`on`) or unprotects (waking waiters) a resident page.
    pub fn protect(&self, addr: usize, on: bool) -> Result<(), i32> {
        match self {
            Backend::Uffd(u) => u.write_protect(addr, PAGE, on, true),
            Backend::Portable => Ok(()),
        }
    }

    /// Wakes the threads waiting on `addr..addr+len`.
    pub fn wake(&self, addr: usize, len: usize) {
        if let Backend::Uffd(u) = self {
            let _ = u.wake(addr, len);
        }
    }

    /// Drops a page (`MADV_DONTNEED`): the next access faults again.
    pub fn discard(&self, addr: usize, len: usize) -> Result<(), i32> {
        mem::discard(addr, len)
    }
}
