//! The process-wide registry that lets typed rights find their task: [`SpaceId`] → (kernel,
//! space slot), and the [`PortSpaces`] implementation installed for the userspace IPC.

use super::hash::Map;
use super::Shared;
use crate::rights::{install_port_spaces, PortSpaces, RightKind, SpaceId};
use crate::wire::{type_name as tn, KernReturn, PortName};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Once, RwLock, Weak};

static NEXT_SPACE: AtomicU32 = AtomicU32::new(1);

type Registry = RwLock<Map<u32, (Weak<Shared>, u32)>>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| RwLock::new(Map::default()));

/// A process-unique space id (never 0, which is [`SpaceId::SELF`]).
pub(crate) fn new_space_id() -> SpaceId {
    SpaceId(NEXT_SPACE.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn register(id: SpaceId, shared: &Arc<Shared>, slot: u32) {
    REGISTRY
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.0, (Arc::downgrade(shared), slot));
}

pub(crate) fn unregister(id: SpaceId) {
    REGISTRY
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id.0);
}

fn find(id: SpaceId) -> Option<(Arc<Shared>, u32)> {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let (w, slot) = reg.get(&id.0)?;
    Some((w.upgrade()?, *slot))
}

/// Routes releases of typed rights to the emulated task that owns them.
struct Spaces;

static SPACES: Spaces = Spaces;

impl PortSpaces for Spaces {
    fn release(&self, space: SpaceId, name: PortName, kind: RightKind) {
        if let Some((shared, slot)) = find(space) {
            shared.with(|st| {
                let _ = match kind {
                    RightKind::Receive | RightKind::PortSet => st.op_mod_refs(slot, name, kind, -1),
                    _ => st.op_deallocate(slot, name),
                };
            });
        }
    }

    fn add_send_ref(&self, space: SpaceId, name: PortName) -> Result<(), KernReturn> {
        let (shared, slot) = find(space).ok_or(KernReturn::KERN_INVALID_TASK)?;
        shared.with(|st| st.op_mod_refs(slot, name, RightKind::Send, 1))
    }

    fn make_send(&self, space: SpaceId, name: PortName) -> Result<(), KernReturn> {
        let (shared, slot) = find(space).ok_or(KernReturn::KERN_INVALID_TASK)?;
        shared.with(|st| st.op_insert_right(slot, name, slot, name, tn::MAKE_SEND))
    }

    fn make_send_once(&self, space: SpaceId, name: PortName) -> Result<PortName, KernReturn> {
        let (shared, slot) = find(space).ok_or(KernReturn::KERN_INVALID_TASK)?;
        shared.with(|st| {
            st.op_extract_right(slot, name, tn::MAKE_SEND_ONCE)
                .map(|(n, _)| n)
        })
    }
}

/// Installs [`Spaces`] as the process's [`PortSpaces`] (once).
pub(crate) fn ensure_installed() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install_port_spaces(&SPACES);
    });
}
