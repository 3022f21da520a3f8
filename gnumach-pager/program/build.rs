//! Generates the worker-report interface (`defs/worker.defs`, this program's own) and
//! links the program as a static, no-libc, non-PIE executable with its own `_start`.
fn main() -> Result<(), mig_rs::Error> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    mig_rs::Builder::new()
        .file(dir.join("defs/worker.defs"))
        .include(dir.join("../../defs"))
        .target(mig_rs::Target::X86_64)
        .quiet(true)
        .generate()?;
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    Ok(())
}
