//! trybuild suite of the `#[mig_rs::interface]` attribute: `tests/ui/pass/*.rs` compile and
//! run; `tests/ui/fail/*.rs` fail with exactly the errors in their `.stderr` snapshots (`.defs`
//! fixtures in `tests/ui/defs/`). Regenerate snapshots with `TRYBUILD=overwrite`.
//!
//! Compiler output drifts between Rust versions, so the snapshots are for the toolchain the
//! project pins (stable 1.95); the test is skipped on others.

#[test]
fn ui() {
    let version = rustc_version();
    if !version.starts_with("rustc 1.95.") {
        eprintln!("SKIP: trybuild snapshots are for rustc 1.95, this is {version}");
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
