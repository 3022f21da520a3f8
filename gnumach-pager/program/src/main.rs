//! The reference default pager as GNU Mach's default memory manager.
//!
//! Started by the kernel's boot script as
//! `gnumach-pager ${host-port} ${device-port} [option=value…] $(task-create) $(task-resume)`,
//! it opens the console, creates the worker task, wires itself, maps its paging store,
//! registers as the default memory manager and serves the kernel with the `default-pager`
//! core (the same one as the emulated kernel's demo) until the worker is done; then it
//! prints one summary line and reboots the machine (`host_reboot`), which makes
//! `qemu -no-reboot` exit. Every failure prints `GNUMACH-PAGER: RESULT FAIL <cause>` first.
//!
//! Every kernel call goes through mig-rs-generated stubs over `mach_trap::TrapTransport`.
#![no_std]
#![no_main]

extern crate alloc;

mod counting;
mod observe;
mod options;
mod pci;
mod serve;
mod store;
mod worker;

/// This program's own worker-report interface (`defs/worker.defs`).
#[allow(dead_code, missing_docs, clippy::all)]
mod worker_defs {
    include!(concat!(env!("OUT_DIR"), "/worker.rs"));
}

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};
use mach_trap::kernel::mach_host;
use mach_trap::{env, kprintln, TrapTransport};

#[global_allocator]
static HEAP: mach_trap::heap::VmHeap = mach_trap::heap::VmHeap::new();

mach_trap::entry!(pager_main);

/// Which task this copy of the program is running as.
static ROLE: AtomicU8 = AtomicU8::new(ROLE_PAGER);
const ROLE_PAGER: u8 = 0;
const ROLE_WORKER: u8 = 1;

/// Every console line the test parses starts with this.
pub const TAG: &str = "GNUMACH-PAGER:";

/// `RB_AUTOBOOT`: reboot (qemu `-no-reboot` then exits).
const RB_AUTOBOOT: i32 = 0;

/// Prints the failure line and reboots. Never returns.
pub fn fail(cause: fmt::Arguments<'_>) -> ! {
    if ROLE.load(Ordering::Relaxed) == ROLE_WORKER {
        worker::fail_in_worker(cause);
    }
    kprintln!("{TAG} RESULT FAIL {cause}");
    halt()
}

/// Reboots the machine through `host_reboot` (generated stub); if the kernel refuses, says
/// so and parks the thread (the test's timeout is the last resort).
pub fn halt() -> ! {
    if let Some(host) = env::host_priv() {
        if let Err(e) = mach_host::client::host_reboot(&TrapTransport, &host, RB_AUTOBOOT) {
            kprintln!("{TAG} host_reboot failed: {}", mach_trap::Explain(e));
        }
    }
    loop {
        mach_trap::trap::swtch();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // Formats without allocating: the heap may be what failed.
    fail(format_args!("panic: {info}"))
}

fn pager_main(args: mach_trap::boot::BootArgs) -> ! {
    mach_trap::spaces::install();
    mach_trap::transport::observe_sends(counting::note_sent);
    let opts = match options::Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            // No console yet: the kernel's debugging trap still prints.
            kprintln!("{TAG} RESULT FAIL bad arguments: {e}");
            halt()
        }
    };
    env::set_privileged_ports(opts.host_priv, opts.device_master);
    let master = env::device_master().expect("device master port");
    if let Err(e) = mach_trap::console::open(&master) {
        kprintln!(
            "{TAG} RESULT FAIL kernel refused device_open(\"console\"): {}",
            mach_trap::Explain(e)
        );
        halt()
    }
    serve::run(opts)
}
