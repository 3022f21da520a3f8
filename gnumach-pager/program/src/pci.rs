//! Physical memory through the kernel's `mem` device (`device_open("mem")`, `device_map`,
//! `vm_map`), and just enough PCI to find a device's memory BAR: the PCI Express
//! configuration space (ECAM) that qemu's `q35` machine puts at 0xb000_0000.
//!
//! GNU Mach's `mem` device maps any physical address that is not RAM the kernel manages
//! (`memmmap` refuses `biosmem`-available pages), which is what device memory is.

use mach_trap::env::task_self;
use mach_trap::kernel::{device, mach};
use mach_trap::TrapTransport;
use mig_runtime::{RpcError, SendRight};

/// `VM_PROT_READ | VM_PROT_WRITE`.
const VM_PROT_RW: i32 = 0x3;
/// `VM_INHERIT_NONE`: a task created from this one does not get the mapping.
const VM_INHERIT_NONE: i32 = 2;

/// Where qemu's `q35` machine (and the firmware) put the ECAM window.
pub const Q35_ECAM: u64 = 0xb000_0000;

/// A kernel call that failed, for the failure line.
#[derive(Debug)]
pub struct CallError {
    pub call: &'static str,
    pub error: RpcError,
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "kernel refused {}: {}",
            self.call,
            mach_trap::Explain(self.error)
        )
    }
}

fn call<V>(name: &'static str, r: Result<V, RpcError>) -> Result<V, CallError> {
    r.map_err(|error| CallError { call: name, error })
}

/// Maps `size` bytes of physical memory at `phys` (page-aligned) read-write into this task.
pub fn map_physical(mem: &SendRight, phys: u64, size: u64) -> Result<*mut u8, CallError> {
    let t = TrapTransport;
    let pager = call(
        "device_map(mem)",
        device::client::device_map(&t, mem, VM_PROT_RW, phys, size, 0),
    )?;
    let addr = call(
        "vm_map(mem)",
        mach::client::vm_map(
            &t,
            &task_self(),
            0,
            size,
            0,
            1,
            &pager,
            0,
            0,
            VM_PROT_RW,
            VM_PROT_RW,
            VM_INHERIT_NONE,
        ),
    )?;
    // The mapping holds its own reference to the device pager; `pager` is dropped here.
    Ok(core::ptr::with_exposed_provenance_mut(addr as usize))
}

/// A PCI function's configuration space through an ECAM mapping.
pub struct Function {
    base: *mut u8,
}

impl Function {
    pub fn read32(&self, reg: usize) -> u32 {
        // SAFETY: `base` maps the function's 4 KiB configuration space and `reg < 4096`
        // is 4-aligned (callers pass register offsets); device memory wants volatile.
        unsafe { (self.base.add(reg & 0xffc) as *const u32).read_volatile() }
    }
    pub fn write32(&self, reg: usize, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { (self.base.add(reg & 0xffc) as *mut u32).write_volatile(v) }
    }
    pub fn vendor(&self) -> u16 {
        self.read32(0) as u16
    }
    pub fn device(&self) -> u16 {
        (self.read32(0) >> 16) as u16
    }

    /// Base address and size of memory BAR `bar` (0–5), sized the standard way (decoding
    /// off, all ones written, read back, restored). `None` for an I/O or absent BAR.
    pub fn memory_bar(&self, bar: usize) -> Option<(u64, u64)> {
        let reg = 0x10 + 4 * bar;
        let lo = self.read32(reg);
        if lo & 1 != 0 {
            return None;
        }
        let is64 = (lo >> 1) & 3 == 2;
        let hi = if is64 { self.read32(reg + 4) } else { 0 };
        let cmd = self.read32(0x04);
        self.write32(0x04, cmd & !0x2);
        self.write32(reg, !0);
        if is64 {
            self.write32(reg + 4, !0);
        }
        let mlo = self.read32(reg) & !0xf;
        let mhi = if is64 { self.read32(reg + 4) } else { !0 };
        self.write32(reg, lo);
        if is64 {
            self.write32(reg + 4, hi);
        }
        self.write32(0x04, cmd);
        let mask = (u64::from(mhi) << 32) | u64::from(mlo);
        if mask == 0 || mlo == 0 && mhi == !0 {
            return None;
        }
        let size = (!mask).wrapping_add(1);
        let base = (u64::from(hi) << 32) | u64::from(lo & !0xf);
        Some((base, size))
    }
}

/// Bus 0 of the PCI Express configuration space.
pub struct Ecam {
    base: *mut u8,
}

impl Ecam {
    /// Maps bus 0 (1 MiB) of the ECAM window at `phys`.
    pub fn map(mem: &SendRight, phys: u64) -> Result<Ecam, CallError> {
        Ok(Ecam {
            base: map_physical(mem, phys, 1 << 20)?,
        })
    }

    /// Device `dev`, function `func` of bus 0.
    pub fn function(&self, dev: usize, func: usize) -> Function {
        Function {
            // SAFETY: dev < 32 and func < 8 keep the offset inside the 1 MiB mapping.
            base: unsafe { self.base.add(((dev & 31) << 15) | ((func & 7) << 12)) },
        }
    }

    /// Whether anything answers (a host bridge at 00:00.0).
    pub fn present(&self) -> bool {
        self.function(0, 0).vendor() != 0xffff
    }

    /// The first function with this vendor and device id.
    pub fn find(&self, vendor: u16, device: u16) -> Option<Function> {
        for dev in 0..32 {
            for func in 0..8 {
                let f = self.function(dev, func);
                if f.vendor() == 0xffff {
                    if func == 0 {
                        break;
                    }
                    continue;
                }
                if f.vendor() == vendor && f.device() == device {
                    return Some(f);
                }
                // Single-function device: functions 1–7 do not exist.
                if func == 0 && (f.read32(0x0c) >> 16) & 0x80 == 0 {
                    break;
                }
            }
        }
        None
    }
}
