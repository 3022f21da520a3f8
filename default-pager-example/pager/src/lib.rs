//! The reference default pager: GNU Mach's default memory manager, on stubs mig-rs
//! generates from the project's own `defs/`.
//!
//! The core ([`Core`]) is `no_std` + `alloc`: it talks to the kernel only through the
//! generated client stubs over a [`mig_runtime::Transport`], serves messages through the
//! generated servers, and synchronises through a [`Platform`]. With the `std` feature
//! (default), [`Pager::start`] runs it on server threads. The same core runs over the
//! runtime's userspace IPC (the emulated kernel of `default-pager-example`) and — issue 8 —
//! over a transport issuing the real `mach_msg` trap on GNU Mach.
//!
//! # Contract with the kernel
//!
//! **Start-up** (`std`): [`Pager::start`]`(transport, task_self, host_priv, store, config)
//! -> Result<`[`PagerHandle`]`, `[`Error`]`>`. `transport` is the pager task's IPC;
//! `task_self` a send right to the pager's own task port; `host_priv` a send right to the
//! host-privileged port (given back once registered). The pager
//!
//! 1. allocates its default-memory-manager port and two port sets (`mach_port_allocate`,
//!    `mach_port_move_member` on `task_self`);
//! 2. asks `vm_set_default_memory_manager(host_priv, MACH_PORT_NULL)` (2041) which manager
//!    is registered and **refuses to start** ([`Error::AlreadyRegistered`]) if there is one,
//!    like the Hurd's `main.c`;
//! 3. registers its port with `vm_set_default_memory_manager(host_priv, port)`
//!    (`MAKE_SEND`);
//! 4. serves: 1 default thread on the DMM/admin port, `config.object_threads` object threads
//!    on the set of object ports.
//!
//! [`PagerHandle`] gives [`Stats`] (message counts by kind including `no_senders`, pages
//! in/out/unavailable, paging space total/free), the admin port
//! ([`PagerHandle::admin_port`]: the DMM port, which also serves `default_pager.defs`),
//! [`PagerHandle::add_store`] and [`PagerHandle::shutdown`].
//!
//! **What the kernel must serve** (exactly per the `.defs`):
//!
//! * on the pager's task port (`task_self`), `mach_port.defs`: `mach_port_allocate`,
//!   `mach_port_destroy`, `mach_port_deallocate`, `mach_port_mod_refs`,
//!   `mach_port_move_member`, `mach_port_request_notification` (no-senders, with a
//!   `MAKE_SEND_ONCE` of the object port itself, sync 0 for kernel objects and 1 for objects
//!   of `default_pager_object_create`), `mach_port_get_receive_status` (the object port's
//!   next seqno; if it fails the pager assumes 0, as GNU Mach resets the seqno when a receive
//!   right moves);
//! * on `host_priv`: `vm_set_default_memory_manager` (2041), where a null port only queries
//!   and the reply moves a send right to the current manager (GNU Mach's kernel-side stub
//!   sends `MACH_MSG_TYPE_PORT_SEND`);
//! * on control ports, `mach.defs` one-way calls: `memory_object_data_supply` (2093, data
//!   out of line, not deallocated, `lock_value` `VM_PROT_NONE`, not precious, no reply
//!   port), `memory_object_data_unavailable` (2039), `memory_object_data_error` (2090),
//!   `memory_object_ready` (2094, only after `memory_object_init`).
//!
//! The kernel must serve these calls on threads that never wait for the pager (GNU Mach
//! runs them in the caller's context), and keep serving until the pager is shut down
//! ([`PagerHandle::shutdown`] gives its ports back with `mach_port_*` calls).
//!
//! **What the kernel sends**: `memory_object_create` (2250) on the DMM port
//! (`MOVE_SEND` of the DMM port, `MOVE_RECEIVE` of the new object, `MAKE_SEND` of control
//! and name, page size 4096); then on the object port `memory_object_data_request` (2203,
//! one page), `memory_object_data_return` (2208, out of line, whole pages),
//! `memory_object_data_initialize` (2251), `memory_object_terminate` (2201, `MOVE_SEND` of
//! the object, `MOVE_RECEIVE` of control and name), and finally the no-senders
//! notification, which the pager requested on the object port itself.
//!
//! **What the pager answers** (see the crate's README for the full table):
//!
//! * `memory_object_create`: nothing — no reply, no `memory_object_ready`; the object
//!   accepts data requests at once;
//! * `data_request` for a page never written: `data_unavailable` (never a supplied zero
//!   page); for a stored page: `data_supply` of exactly the bytes last returned (checksum
//!   verified); for a page whose last write was lost (paging space full, write error):
//!   `data_error` (`KERN_RESOURCE_SHORTAGE` / `KERN_FAILURE`); checksum mismatch or read
//!   error: `data_error` (`KERN_MEMORY_ERROR` / `KERN_FAILURE`); an offset not page-aligned
//!   or a length other than one page: `data_error(KERN_INVALID_ARGUMENT)` for the range
//!   asked;
//! * offsets past the creation size are legal (the size is a hint; the block map grows);
//! * `data_initialize` stores only pages the pager does not hold;
//! * `terminate` waits for reads and writes in flight, then destroys control and name;
//!   no-senders frees every block and destroys the object port;
//! * unexpected messages (`copy`, `data_unlock`, `*_completed`, other notifications,
//!   unknown ids, messages failing the stubs' type checks, messages on terminated objects,
//!   forged control ports) are refused with a [`Rejection`] (logged and counted), never a
//!   panic, and still consume their seqno.
//!
//! # Design
//!
//! * per object ([`object`]): receive right of the object port, control and name send
//!   rights (with user-reference counts, trimmed like the Hurd's), size hint, a sparse
//!   block map ([`map`]), the seqno counter and the I/O in flight;
//! * admission strictly in seqno order per object, I/O in parallel after admission: a read
//!   waits for earlier writes of the same page, a write for earlier reads and writes of its
//!   pages, terminate and no-senders for everything in flight;
//! * paging space ([`space`]): stores ([`BackingStore`]: [`MemStore`], [`FileStore`], or a
//!   device on GNU Mach) with free-block bitmaps, first-fit; stores can be added at run
//!   time;
//! * errors per page: a page that could not be stored is marked lost and answered with
//!   `data_error` until it is written again (the Hurd marks the whole object);
//! * the generated servers are chained like the Hurd's demuxer ([`Core::demux`]).
//!
//! # Without `std`
//!
//! `Core::new(transport, task_self, config)` with a [`Platform`] ([`SpinPlatform`], or one
//! over the kernel's primitives), [`Core::add_store`], [`Core::register`], then serve
//! [`Core::default_set`] and [`Core::object_set`] with any `mach_msg` server loop, giving it
//! the core as the demuxer ([`mig_runtime::Demux`]). With [`Config::one_port_set`] a single
//! loop on a single thread serves everything (admission never has to wait then: messages
//! arrive in seqno order and each finishes before the next).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod checksum;
pub mod gen;
pub mod map;
pub mod object;
mod pager;
pub mod platform;
mod serve;
pub mod space;
pub mod stats;
#[cfg(feature = "std")]
mod std_pager;
pub mod store;

pub use pager::{default_object_threads, Config, Core, Error, MEMORY_OBJECT_COPY_DELAY};
pub use platform::{Lock, Platform, SpinLock, SpinPlatform};
#[cfg(feature = "std")]
pub use platform::{StdLock, StdPlatform};
pub use space::{AddStoreError, BlockAddr, SpaceInfo};
pub use stats::{Hooks, MessageCounts, MsgKind, Reason, Rejection, ReplyKind, Stats};
#[cfg(feature = "std")]
pub use std_pager::{DynTransport, Pager, PagerHandle, StdCore};
#[cfg(feature = "std")]
pub use store::FileStore;
pub use store::{BackingStore, MemStore, StoreError};

#[cfg(feature = "test-kernel")]
pub use gen::kernel_side;

/// The page size the pager serves (GNU Mach's `vm_page_size` on x86: 4096).
pub const PAGE_SIZE: usize = 4096;
