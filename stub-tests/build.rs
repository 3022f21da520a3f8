//! Generates the stubs of `defs/testing/features.defs` into OUT_DIR, for both targets:
//! `features_x86_64.rs` and `features_i386.rs`.
fn main() -> Result<(), mig_rs::Error> {
    for target in [mig_rs::Target::X86_64, mig_rs::Target::I386] {
        mig_rs::Builder::new()
            .file_as(
                "../defs/testing/features.defs",
                format!("features_{}", target.name()),
            )
            .target(target)
            .quiet(true)
            .generate()?;
    }
    Ok(())
}
