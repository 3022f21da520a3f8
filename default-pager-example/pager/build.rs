//! Generates the pager's stubs from the project's own `defs/` into `OUT_DIR`.
//!
//! Pager side (always): the servers for `memory_object` and `memory_object_default` (SEQNOS
//! variants: each handler gets the message's sequence number), `notify` (SEQNOS, so the
//! no-senders notification on an object port consumes its seqno) and the `default_pager`
//! admin interface; the clients of `mach` (the memory manager's calls on control ports,
//! `vm_set_default_memory_manager`) and `mach_port` (calls on the pager's own task port).
//!
//! Kernel side (feature `test-kernel`): the clients the kernel uses to talk to a pager
//! (`memory_object`, `memory_object_default`), the `mach` and `mach_port` servers it answers
//! the pager with, and the `default_pager` admin client.

fn main() -> Result<(), mig_rs::Error> {
    const DEFS: &str = "../../defs";
    let defs = |f: &str| format!("{DEFS}/{f}.defs");

    let seqnos_servers = [
        ("memory_object", "pager_memory_object"),
        ("memory_object_default", "pager_memory_object_default"),
        ("notify", "pager_notify"),
    ];
    let mut b = mig_rs::Builder::new();
    b.define("SEQNOS").client(false).server(true).quiet(true);
    for (f, out) in seqnos_servers {
        b.file_as(defs(f), out);
    }
    b.generate()?;

    mig_rs::Builder::new()
        .file_as(defs("default_pager"), "pager_default_pager")
        .client(false)
        .server(true)
        .quiet(true)
        .generate()?;

    mig_rs::Builder::new()
        .file_as(defs("mach"), "pager_mach")
        .file_as(defs("mach_port"), "pager_mach_port")
        .client(true)
        .server(false)
        .quiet(true)
        .generate()?;

    if std::env::var_os("CARGO_FEATURE_TEST_KERNEL").is_some() {
        mig_rs::Builder::new()
            .file_as(defs("memory_object"), "kernel_memory_object")
            .file_as(
                defs("memory_object_default"),
                "kernel_memory_object_default",
            )
            .file_as(defs("default_pager"), "kernel_default_pager")
            .client(true)
            .server(false)
            .quiet(true)
            .generate()?;
        mig_rs::Builder::new()
            .file_as(defs("mach"), "kernel_mach")
            .file_as(defs("mach_port"), "kernel_mach_port")
            // The kernel's side: replies carry the rights the kernel holds, moved.
            .define("KERNEL_SERVER")
            .client(false)
            .server(true)
            .default_server_methods(true)
            .quiet(true)
            .generate()?;
    }
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
