//! The paging stores this program can use, behind the pager core's `BackingStore` trait.
//!
//! * [`MmioStore`] — the default: a file-backed PCI memory BAR. This kernel (Debian 13's
//!   `gnumach-1.8-amd64-up`) has **no disk driver at all** (x86_64 GNU Mach leaves disks to
//!   user-space drivers such as the Hurd's rumpdisk; its device table is `console`, `com`,
//!   `lpr`, `kbd`, `mouse`, `mem`, `kmsg`, `irq`, `time`, `mbinfo`), so `device_open("hd0")`
//!   and every other disk name are refused with `D_NO_SUCH_DEVICE`. qemu's `ivshmem-plain`
//!   device exposes a host file (a raw image made with `truncate`) as a PCI BAR; the pager
//!   finds it in PCI configuration space and maps it through the kernel's `mem` device.
//!   The data lives outside guest RAM, in the image file, like a disk.
//! * [`DeviceStore`] — a disk through the kernel's driver (`device_read`/`device_write`),
//!   for kernels that have one (`store=device:hd0`).
//! * `store=memory:<MiB>` — the core's `MemStore` in this (wired) task: needs RAM beyond
//!   the workload, so it only shows the plumbing.

use crate::pci::{self, CallError, Ecam};
use alloc::format;
use alloc::sync::Arc;
use default_pager::store::{check_access, BackingStore, MemStore, StoreError};
use default_pager::PAGE_SIZE;
use mach_trap::console::{D_READ, D_WRITE};
use mach_trap::kernel::device::client as dev;
use mach_trap::{Explain, TrapTransport};
use mig_runtime::SendRight;

/// qemu's `ivshmem-plain`: vendor Red Hat/Qumranet 0x1af4, device 0x1110; BAR 2 is the
/// shared memory.
const IVSHMEM: (u16, u16) = (0x1af4, 0x1110);

/// Blocks in device memory mapped into this task.
pub struct MmioStore {
    base: *mut u8,
    blocks: u64,
    name: &'static str,
}

// SAFETY: the mapping is owned by this store for the life of the program and never
// unmapped; the pager core never accesses one block from two threads at once, and reads
// and writes of different blocks touch disjoint bytes.
unsafe impl Send for MmioStore {}
// SAFETY: see above.
unsafe impl Sync for MmioStore {}

impl MmioStore {
    fn at(&self, block: u64) -> *mut u8 {
        // SAFETY: callers check `block < self.blocks`, so the offset is inside the mapping.
        unsafe { self.base.add(block as usize * PAGE_SIZE) }
    }
}

impl BackingStore for MmioStore {
    fn blocks(&self) -> u64 {
        self.blocks
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, buf.len(), PAGE_SIZE)?;
        // SAFETY: the block is inside the mapping (checked) and `buf` is one block long;
        // the regions cannot overlap (the mapping is device memory).
        unsafe { core::ptr::copy_nonoverlapping(self.at(block), buf.as_mut_ptr(), PAGE_SIZE) };
        Ok(())
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, data.len(), PAGE_SIZE)?;
        // SAFETY: as in `read_block`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.at(block), PAGE_SIZE) };
        Ok(())
    }
    fn name(&self) -> &str {
        self.name
    }
}

/// Finds the ivshmem device and maps its whole BAR 2.
pub fn open_ivshmem(master: &SendRight) -> Result<(MmioStore, u64), alloc::string::String> {
    let mem = dev::device_open(&TrapTransport, master, D_READ | D_WRITE, b"mem")
        .map_err(|e| format!("kernel refused device_open(\"mem\"): {}", Explain(e)))?;
    let ecam = Ecam::map(&mem, pci::Q35_ECAM).map_err(|e: CallError| format!("{e}"))?;
    if !ecam.present() {
        return Err(format!(
            "no PCI configuration space at {:#x} (boot qemu with -M q35)",
            pci::Q35_ECAM
        ));
    }
    let f = ecam.find(IVSHMEM.0, IVSHMEM.1).ok_or_else(|| {
        alloc::string::String::from(
            "no ivshmem-plain device (qemu -object memory-backend-file,…,share=on \
             -device ivshmem-plain,memdev=…)",
        )
    })?;
    let (base, size) = f
        .memory_bar(2)
        .ok_or_else(|| alloc::string::String::from("ivshmem BAR 2 is not a memory BAR"))?;
    if base == 0 {
        return Err(format!(
            "ivshmem BAR 2 ({size} bytes) has no address assigned"
        ));
    }
    let p = pci::map_physical(&mem, base, size).map_err(|e| format!("{e}"))?;
    Ok((
        MmioStore {
            base: p,
            blocks: size / PAGE_SIZE as u64,
            name: "ivshmem",
        },
        base,
    ))
}

/// A disk through the kernel's driver.
pub struct DeviceStore {
    device: SendRight,
    blocks: u64,
    record_size: u64,
    name: alloc::string::String,
}

/// `DEV_GET_SIZE` and its two results.
const DEV_GET_SIZE: u32 = 0;

impl DeviceStore {
    /// Opens `name` read-write and asks its size.
    pub fn open(master: &SendRight, name: &[u8]) -> Result<DeviceStore, alloc::string::String> {
        let shown = alloc::string::String::from_utf8_lossy(name).into_owned();
        let device = dev::device_open(&TrapTransport, master, D_READ | D_WRITE, name)
            .map_err(|e| format!("kernel refused device_open(\"{shown}\"): {}", Explain(e)))?;
        let st = dev::device_get_status(&TrapTransport, &device, DEV_GET_SIZE, 2).map_err(|e| {
            format!(
                "kernel refused device_get_status(\"{shown}\", DEV_GET_SIZE): {}",
                Explain(e)
            )
        })?;
        let (bytes, record) = (
            st.first().copied().unwrap_or(0),
            st.get(1).copied().unwrap_or(0),
        );
        if bytes <= 0 || record <= 0 || PAGE_SIZE as i32 % record != 0 {
            return Err(format!(
                "{shown}: unusable geometry ({bytes} bytes, {record}-byte records)"
            ));
        }
        Ok(DeviceStore {
            device,
            blocks: bytes as u64 / PAGE_SIZE as u64,
            record_size: record as u64,
            name: shown,
        })
    }
}

impl BackingStore for DeviceStore {
    fn blocks(&self) -> u64 {
        self.blocks
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, buf.len(), PAGE_SIZE)?;
        let rec = block * PAGE_SIZE as u64 / self.record_size;
        let data = dev::device_read(&TrapTransport, &self.device, 0, rec, PAGE_SIZE as i32)
            .map_err(|e| {
                StoreError::Io(format!("device_read({}, {rec}): {}", self.name, Explain(e)))
            })?;
        if data.len() < PAGE_SIZE {
            return Err(StoreError::Io(format!(
                "device_read({}, {rec}): short read",
                self.name
            )));
        }
        buf.copy_from_slice(&data[..PAGE_SIZE]);
        Ok(())
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, data.len(), PAGE_SIZE)?;
        let rec = block * PAGE_SIZE as u64 / self.record_size;
        match dev::device_write(&TrapTransport, &self.device, 0, rec, data) {
            Ok(n) if n as usize == PAGE_SIZE => Ok(()),
            Ok(n) => Err(StoreError::Io(format!(
                "device_write({}, {rec}): wrote {n}",
                self.name
            ))),
            Err(e) => Err(StoreError::Io(format!(
                "device_write({}, {rec}): {}",
                self.name,
                Explain(e)
            ))),
        }
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A store cut down to its first `blocks` blocks (`store-limit=`).
pub struct Limited {
    inner: Arc<dyn BackingStore>,
    blocks: u64,
}

impl BackingStore for Limited {
    fn blocks(&self) -> u64 {
        self.blocks
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, buf.len(), PAGE_SIZE)?;
        self.inner.read_block(block, buf)
    }
    fn write_block(&self, block: u64, data: &[u8]) -> Result<(), StoreError> {
        check_access(block, self.blocks, data.len(), PAGE_SIZE)?;
        self.inner.write_block(block, data)
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
}

/// Opens the store the options ask for; the string describes it for the console.
pub fn open(
    master: &SendRight,
    kind: crate::options::StoreKind,
    limit_mib: Option<u64>,
) -> Result<(Arc<dyn BackingStore>, alloc::string::String), alloc::string::String> {
    use crate::options::StoreKind;
    let (store, what): (Arc<dyn BackingStore>, _) = match kind {
        StoreKind::Ivshmem => {
            let (s, phys) = open_ivshmem(master)?;
            let what = format!(
                "ivshmem BAR at {phys:#x}, {} MiB, through device_map(\"mem\")",
                (s.blocks * PAGE_SIZE as u64) >> 20
            );
            (Arc::new(s), what)
        }
        StoreKind::Device(name) => {
            let s = DeviceStore::open(master, name)?;
            let what = format!(
                "disk {} through device_read/device_write, {} MiB",
                s.name,
                (s.blocks * PAGE_SIZE as u64) >> 20
            );
            (Arc::new(s), what)
        }
        StoreKind::Memory { mib } => {
            let s = MemStore::with_bytes(mib << 20).named("wired memory");
            (Arc::new(s), format!("wired memory in the pager, {mib} MiB"))
        }
    };
    match limit_mib {
        Some(l) if (l << 20) / (PAGE_SIZE as u64) < store.blocks() => {
            let blocks = (l << 20) / PAGE_SIZE as u64;
            Ok((
                Arc::new(Limited {
                    inner: store,
                    blocks,
                }),
                format!("{what}, limited to {l} MiB"),
            ))
        }
        _ => Ok((store, what)),
    }
}
