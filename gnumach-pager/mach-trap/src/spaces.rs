//! [`TrapSpaces`]: how dropped rights are released on a real kernel — generated
//! `mach_port_deallocate` / `mach_port_mod_refs` / `mach_port_insert_right` /
//! `mach_port_extract_right` stubs on the calling task. Install it once with
//! [`install`] (the runtime's [`mig_runtime::rights::install_port_spaces`]).

use crate::env::task_self;
use crate::kernel::mach_port::client as mp;
use crate::transport::{
    TrapTransport, MACH_PORT_RIGHT_PORT_SET, MACH_PORT_RIGHT_RECEIVE, MACH_PORT_RIGHT_SEND,
};
use core::sync::atomic::{AtomicU32, Ordering};
use mig_runtime::rights::{PortSpaces, RightKind};
use mig_runtime::wire::type_name;
use mig_runtime::{KernReturn, Poly, PortName, SpaceId};

/// Releases rights in the calling task's space through generated stubs.
pub struct TrapSpaces;

/// How many releases the kernel refused (e.g. a name that died meanwhile); for diagnostics.
pub static RELEASE_FAILURES: AtomicU32 = AtomicU32::new(0);

impl PortSpaces for TrapSpaces {
    fn release(&self, _space: SpaceId, name: PortName, kind: RightKind) {
        let t = TrapTransport;
        let task = task_self();
        let r = match kind {
            RightKind::Send | RightKind::SendOnce | RightKind::DeadName => {
                mp::mach_port_deallocate(&t, &task, name)
            }
            RightKind::Receive => {
                mp::mach_port_mod_refs(&t, &task, name, MACH_PORT_RIGHT_RECEIVE, -1)
            }
            RightKind::PortSet => {
                mp::mach_port_mod_refs(&t, &task, name, MACH_PORT_RIGHT_PORT_SET, -1)
            }
        };
        if r.is_err() {
            RELEASE_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn add_send_ref(&self, _space: SpaceId, name: PortName) -> Result<(), KernReturn> {
        mp::mach_port_mod_refs(&TrapTransport, &task_self(), name, MACH_PORT_RIGHT_SEND, 1)
            .map_err(|e| e.code())
    }

    fn make_send(&self, _space: SpaceId, name: PortName) -> Result<(), KernReturn> {
        mp::mach_port_insert_right(
            &TrapTransport,
            &task_self(),
            name,
            Poly::Raw(name, type_name::MAKE_SEND),
        )
        .map_err(|e| e.code())
    }

    fn make_send_once(&self, _space: SpaceId, name: PortName) -> Result<PortName, KernReturn> {
        mp::mach_port_extract_right(
            &TrapTransport,
            &task_self(),
            name,
            type_name::MAKE_SEND_ONCE,
        )
        .map(|r| r.into_raw().0)
        .map_err(|e| e.code())
    }
}

static SPACES: TrapSpaces = TrapSpaces;

/// Installs [`TrapSpaces`] as the process's [`PortSpaces`]; `false` if one was already
/// installed.
pub fn install() -> bool {
    mig_runtime::rights::install_port_spaces(&SPACES)
}
