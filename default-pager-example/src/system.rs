//! A whole system: the emulated kernel, the default pager task running the `default-pager`
//! crate, and an admin task holding a send right to the pager's `default_pager` port.

use crate::kernel::{self, EmuTask, Kernel};
use crate::mig::default_pager as dp;
use default_pager::{BackingStore, Config as PagerConfig, Pager, PagerHandle};
use mig_runtime::wire::type_name;
use mig_runtime::{RpcError, SendRight};
use std::sync::Arc;

/// Where the pager pages to.
#[derive(Clone, Debug)]
pub enum Paging {
    /// A paging file of this many bytes (created, or truncated).
    File {
        path: std::path::PathBuf,
        bytes: u64,
    },
    /// Memory (tests).
    Memory { bytes: u64 },
}

impl Paging {
    pub fn store(&self) -> Result<Arc<dyn BackingStore>, String> {
        Ok(match self {
            Paging::File { path, bytes } => Arc::new(
                default_pager::FileStore::create(path, *bytes)
                    .map_err(|e| format!("paging file {}: {e}", path.display()))?,
            ),
            Paging::Memory { bytes } => Arc::new(default_pager::MemStore::with_bytes(*bytes)),
        })
    }
}

/// A running system.
pub struct System {
    pub kernel: Kernel,
    pub pager_task: EmuTask,
    pub pager: PagerHandle,
    /// A task for administration (the demo's `default_pager_info` etc.).
    pub admin: EmuTask,
    /// The admin task's send right to the pager's `default_pager` port.
    pub admin_port: SendRight,
}

/// Starts a default pager in a new task of `kernel`: the pager task gets its task port and
/// a send right to the host-privileged port, exactly as the pager's start-up contract says.
pub fn start_pager(
    kernel: &Kernel,
    store: Arc<dyn BackingStore>,
    config: PagerConfig,
) -> Result<(EmuTask, PagerHandle), String> {
    let task = kernel.new_task()?;
    let task_self = task.task_self().map_err(|e| format!("task_self: {e:?}"))?;
    let host = kernel
        .host_priv_for(&task)
        .map_err(|e| format!("host_priv: {e:?}"))?;
    let h = Pager::start_with_store(kernel.trap(&task), task_self, host, store, config)
        .map_err(|e| format!("default pager: {e}"))?;
    Ok((task, h))
}

impl System {
    pub fn start(
        kcfg: kernel::Config,
        paging: &Paging,
        pager: PagerConfig,
    ) -> Result<System, String> {
        let kernel = Kernel::new(kcfg)?;
        let (pager_task, handle) = start_pager(&kernel, paging.store()?, pager)?;
        let admin = kernel.new_task()?;
        let n = pager_task
            .ipc()
            .transfer_right(handle.admin_port(), type_name::MAKE_SEND, admin.ipc())
            .map_err(|e| format!("admin right: {e:?}"))?;
        let admin_port = SendRight::from_raw(admin.ipc().space_id(), n);
        Ok(System {
            kernel,
            pager_task,
            pager: handle,
            admin,
            admin_port,
        })
    }

    /// `default_pager_info`: (total, free, page size) in bytes.
    pub fn info(&self) -> Result<(u64, u64, u64), RpcError> {
        let i = dp::client::default_pager_info(self.admin.ipc(), &self.admin_port)?;
        Ok((i[0] as u64, i[1] as u64, i[2] as u64))
    }

    /// `default_pager_objects` then `default_pager_object_pages` for each: (object, bytes
    /// stored, offsets of the stored pages).
    pub fn objects(&self) -> Result<Vec<(u64, u64, Vec<u64>)>, RpcError> {
        let t = self.admin.ipc();
        let r = dp::client::default_pager_objects(t, &self.admin_port, 256, 256)?;
        let mut out = Vec::new();
        for (o, name) in r.objects.iter().zip(r.ports.iter()) {
            let pages = if name.is_valid() {
                dp::client::default_pager_object_pages(t, &self.admin_port, name, 256)?
            } else {
                Vec::new()
            };
            out.push((
                o[0] as u64,
                o[1] as u64,
                pages.iter().map(|&p| p as u64).collect(),
            ));
        }
        Ok(out)
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.pager.shutdown();
        self.kernel.shutdown();
    }
}
