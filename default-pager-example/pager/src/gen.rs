//! The stubs mig-rs generated from the project's `defs/` (see `build.rs`). Each module holds
//! the subsystem's constants and type aliases, and `client` and/or `server`.

/// `memory_object.defs` with `-DSEQNOS`: the server the object threads run
/// (`seqnos_memory_object_server`).
pub mod memory_object {
    include!(concat!(env!("OUT_DIR"), "/pager_memory_object.rs"));
}

/// `memory_object_default.defs` with `-DSEQNOS`: `memory_object_create` (on the default
/// memory manager's port) and `memory_object_data_initialize` (on object ports)
/// (`seqnos_memory_object_default_server`).
pub mod memory_object_default {
    include!(concat!(env!("OUT_DIR"), "/pager_memory_object_default.rs"));
}

/// `notify.defs` with `-DSEQNOS`: the no-senders notification on object ports
/// (`seqnos_notify_server`).
pub mod notify {
    include!(concat!(env!("OUT_DIR"), "/pager_notify.rs"));
}

/// `default_pager.defs`: the admin interface (`default_pager_server`).
pub mod default_pager {
    include!(concat!(env!("OUT_DIR"), "/pager_default_pager.rs"));
}

/// `mach.defs` clients: the memory manager's calls on control ports and
/// `vm_set_default_memory_manager` on the host-privileged port.
pub mod mach {
    include!(concat!(env!("OUT_DIR"), "/pager_mach.rs"));
}

/// `mach_port.defs` clients: the calls on the pager's own task port.
pub mod mach_port {
    include!(concat!(env!("OUT_DIR"), "/pager_mach_port.rs"));
}

/// The kernel's side of the protocol (feature `test-kernel`), for scripted kernels and
/// emulators: what a kernel sends to a pager, what it serves, and the admin client.
#[cfg(feature = "test-kernel")]
pub mod kernel_side {
    /// `memory_object.defs` clients (`memory_object_data_request`, `_data_return`,
    /// `_terminate`, …) as the kernel sends them.
    pub mod memory_object {
        include!(concat!(env!("OUT_DIR"), "/kernel_memory_object.rs"));
    }
    /// `memory_object_default.defs` clients (`memory_object_create`,
    /// `memory_object_data_initialize`).
    pub mod memory_object_default {
        include!(concat!(env!("OUT_DIR"), "/kernel_memory_object_default.rs"));
    }
    /// `default_pager.defs` clients (the admin interface).
    pub mod default_pager {
        include!(concat!(env!("OUT_DIR"), "/kernel_default_pager.rs"));
    }
    /// `mach.defs` server (every method defaults to `MIG_BAD_ID`).
    pub mod mach {
        include!(concat!(env!("OUT_DIR"), "/kernel_mach.rs"));
    }
    /// `mach_port.defs` server (every method defaults to `MIG_BAD_ID`).
    pub mod mach_port {
        include!(concat!(env!("OUT_DIR"), "/kernel_mach_port.rs"));
    }
}
