//! The stubs mig-rs generated from the project's `defs/` (see `build.rs`).

/// `mach.defs`: the kernel's server (host and control ports) and the client.
pub mod mach {
    include!(concat!(env!("OUT_DIR"), "/k_mach.rs"));
}

/// `mach_port.defs`: the kernel's server (task ports) and the client.
pub mod mach_port {
    include!(concat!(env!("OUT_DIR"), "/k_mach_port.rs"));
}

/// `memory_object.defs` clients (what the kernel sends on object ports) and a server with
/// default methods (scripted pagers in tests).
pub mod memory_object {
    include!(concat!(env!("OUT_DIR"), "/k_memory_object.rs"));
}

/// `memory_object_default.defs` clients (`memory_object_create`, `data_initialize`) and a
/// server with default methods.
pub mod memory_object_default {
    include!(concat!(env!("OUT_DIR"), "/k_memory_object_default.rs"));
}

/// `default_pager.defs` clients: the pager's admin interface.
pub mod default_pager {
    include!(concat!(env!("OUT_DIR"), "/k_default_pager.rs"));
}
