//! Generates the emulated kernel's stubs from the project's own `defs/` into `OUT_DIR`:
//!
//! * `k_mach`: `mach.defs`, server (host-privileged port: `vm_set_default_memory_manager`;
//!   control ports: the memory manager's calls) and client (tests forge calls with it);
//! * `k_mach_port`: `mach_port.defs`, server (task ports) and client;
//! * `k_memory_object`, `k_memory_object_default`: what the kernel sends to pagers (clients),
//!   and servers with default methods for the scripted pagers of the tests;
//! * `k_default_pager`: the `default_pager` admin client (demo and tests).
//!
//! Servers get default methods (`MIG_BAD_ID`) so the kernel implements only what GNU Mach's
//! kernel would answer for these ports.
fn main() -> Result<(), mig_rs::Error> {
    const DEFS: &str = "../defs";
    let defs = |f: &str| format!("{DEFS}/{f}.defs");
    mig_rs::Builder::new()
        .file_as(defs("mach"), "k_mach")
        .file_as(defs("mach_port"), "k_mach_port")
        // The kernel's side: replies carry the rights the kernel holds (GNU Mach's own stubs
        // send `vm_set_default_memory_manager`'s port as PORT_SEND, i.e. moved).
        .define("KERNEL_SERVER")
        .client(true)
        .server(true)
        .default_server_methods(true)
        .quiet(true)
        .generate()?;
    mig_rs::Builder::new()
        .file_as(defs("memory_object"), "k_memory_object")
        .file_as(defs("memory_object_default"), "k_memory_object_default")
        .client(true)
        .server(true)
        .default_server_methods(true)
        .quiet(true)
        .generate()?;
    mig_rs::Builder::new()
        .file_as(defs("default_pager"), "k_default_pager")
        .client(true)
        .server(false)
        .quiet(true)
        .generate()?;
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
