//! The program's arguments: `${host-port} ${device-port} [option=value…]`.

use mach_trap::boot::{parse_u64, BootArgs};
use mig_runtime::PortName;

/// Where the pager keeps pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// A file-backed PCI memory BAR (qemu `ivshmem-plain`) mapped through the kernel's `mem`
    /// device: the default, since this kernel has no disk driver (see the README).
    Ivshmem,
    /// A disk through the kernel's disk driver (`device_read`/`device_write`), e.g. `hd0`.
    Device(&'static [u8]),
    /// Wired memory in the pager (needs RAM beyond the workload; for comparison only).
    Memory { mib: u64 },
}

/// What to break on purpose (to check that each failure is reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The worker reads its region after deallocating it.
    TouchAfterFree,
    /// Another default memory manager is registered before ours.
    SecondDmm,
}

/// The parsed command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub host_priv: PortName,
    pub device_master: PortName,
    /// The worker's region, in MiB.
    pub mem_mib: u64,
    /// The worker writes every `write_every`-th page (the others are never written).
    pub write_every: u64,
    pub store: StoreKind,
    /// Use at most this many MiB of the store (to provoke a full store).
    pub store_limit_mib: Option<u64>,
    pub fault: Fault,
    /// Seconds without any message before the pager declares the run stalled.
    pub stall_secs: u64,
    /// Print every protocol message's kind for the first `trace` messages.
    pub trace: u64,
}

fn parse_name(s: Option<&[u8]>, what: &'static str) -> Result<PortName, &'static str> {
    let n = s.and_then(parse_u64).ok_or(what)?;
    u32::try_from(n).map(PortName).map_err(|_| what)
}

impl Options {
    /// Parses `argv`.
    pub fn parse(args: &BootArgs) -> Result<Options, &'static str> {
        let mut o = Options {
            host_priv: parse_name(args.get(1), "argument 1 must be ${host-port}")?,
            device_master: parse_name(args.get(2), "argument 2 must be ${device-port}")?,
            mem_mib: 192,
            write_every: 2,
            store: StoreKind::Ivshmem,
            store_limit_mib: None,
            fault: Fault::None,
            stall_secs: 60,
            trace: 0,
        };
        for a in args.iter().skip(3) {
            let (k, v) = match a.iter().position(|&c| c == b'=') {
                Some(i) => (&a[..i], &a[i + 1..]),
                None => (a, &b""[..]),
            };
            let num = || parse_u64(v).ok_or("option value must be a decimal number");
            match k {
                b"mem" => o.mem_mib = num()?.clamp(1, 3072),
                b"write-every" => o.write_every = num()?.max(1),
                b"store-limit" => o.store_limit_mib = Some(num()?),
                b"stall" => o.stall_secs = num()?.max(1),
                b"trace" => o.trace = num()?,
                b"store" => {
                    o.store = if v == b"ivshmem" {
                        StoreKind::Ivshmem
                    } else if let Some(d) = v.strip_prefix(b"device:") {
                        StoreKind::Device(d)
                    } else if let Some(m) = v.strip_prefix(b"memory:") {
                        StoreKind::Memory {
                            mib: parse_u64(m).ok_or("store=memory:<MiB>")?,
                        }
                    } else {
                        return Err("store must be ivshmem, device:<name> or memory:<MiB>");
                    }
                }
                b"fault" => {
                    o.fault = match v {
                        b"none" => Fault::None,
                        b"touch-after-free" => Fault::TouchAfterFree,
                        b"second-dmm" => Fault::SecondDmm,
                        _ => return Err("fault must be none, touch-after-free or second-dmm"),
                    }
                }
                _ => return Err(
                    "unknown option (mem, write-every, store, store-limit, fault, stall, trace)",
                ),
            }
        }
        Ok(o)
    }
}
