//! Usage (a): generate the stubs of `kv.defs` into `$OUT_DIR/kv.rs` at build time;
//! `src/lib.rs` pulls them in with `mig_rs::include_defs!("kv")`.
//!
//! The Builder prints `cargo:rerun-if-changed` for `kv.defs` and for `kv_types.defs`, which
//! it includes, so the script reruns exactly when one of them changes.
fn main() -> Result<(), mig_rs::Error> {
    mig_rs::Builder::new().file("kv.defs").generate()?;
    Ok(())
}
