//! Build script of `mig-conformance`: generates the code of the conformance suite
//! (`tests/conformance.rs`).
//!
//! When the GNU MIG oracle (Debian 13's `gnumach-dev` headers, see `src/oracle.rs`) exists at
//! build time, every subsystem `.defs` of gnumach-dev is read through mig-rs and this script
//! writes into `OUT_DIR`:
//!
//! * `s<k>_mig.rs`: the Rust module mig-rs generates for subsystem `k`;
//! * `s<k>_client.c` / `s<k>_server.c`: a C driver calling GNU MIG's client stubs with the
//!   test values, and C server functions (named as GNU MIG's server side expects) that
//!   record what they receive and return the test results;
//! * `conformance_gen.rs`: per subsystem, the same client calls and server functions in
//!   Rust over the mig-rs module, the expected values, and a table of everything.
//!
//! Without the oracle, `conformance_gen.rs` only says so and the test skips. GNU MIG's own
//! output is never produced here: the test runs GNU MIG and compiles its C under `target/`.

mod cli;
mod gen;
mod values;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-env-changed=MIG_ORACLE_DIR");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = match env::var_os("MIG_ORACLE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => manifest
            .parent()
            .unwrap_or(&manifest)
            .join("target")
            .join("debian13")
            .join("root"),
    };
    let inc = root.join("usr/include/x86_64-linux-gnu");
    let marker = inc.join("mach/message.h");
    println!("cargo::rustc-check-cfg=cfg(conformance_oracle)");
    let text = if marker.is_file() {
        println!("cargo:rerun-if-changed={}", inc.display());
        let inc = fs::canonicalize(&inc).unwrap_or(inc);
        bench_module(&inc, &out_dir);
        let cli = cli::generate(&gen::configs(&inc), &inc, &out_dir);
        write_if_changed(&out_dir.join("cli_outputs.rs"), &cli);
        gen::generate(&inc, &out_dir)
    } else {
        // A path that does not exist makes cargo rerun this script on every build, so
        // fetching the oracle later is noticed.
        println!("cargo:rerun-if-changed={}", marker.display());
        write_if_changed(
            &out_dir.join("cli_outputs.rs"),
            &cli::generate(&[], Path::new(""), &out_dir),
        );
        gen::skipped(&format!(
            "the GNU MIG oracle was not found at {} when the conformance test was built",
            root.display()
        ))
    };
    write_if_changed(&out_dir.join("conformance_gen.rs"), &text);
}

/// Writes `text` to `path` unless it already holds exactly that (keeps mtimes stable).
pub fn write_if_changed(path: &Path, text: &str) {
    if fs::read(path).ok().as_deref() == Some(text.as_bytes()) {
        return;
    }
    if let Err(e) = fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// The mig-rs module of gnumach-dev's `mach/mach.defs` for the loopback benchmark
/// (`benches/loopback.rs`), with default server methods (answering `MIG_BAD_ID`) so the
/// benchmark implements only its routines. Sets `cfg(conformance_oracle)` when written.
fn bench_module(inc: &Path, out: &Path) {
    let opts = mig_rs::driver::Options {
        include_dirs: vec![inc.to_path_buf()],
        quiet: true,
        ..Default::default()
    };
    let comp = mig_rs::driver::compile(&inc.join("mach/mach.defs"), &opts);
    let Some(sub) = comp.ok() else {
        println!("cargo:warning=mig-rs cannot compile mach/mach.defs for the benchmark");
        return;
    };
    let cg = mig_rs::codegen::CodegenOptions {
        default_server_methods: true,
        ..Default::default()
    };
    match mig_rs::codegen::generate(sub, &comp.map, &cg) {
        Ok(g) => {
            write_if_changed(&out.join("bench_mach.rs"), &g.combined);
            println!("cargo:rustc-cfg=conformance_oracle");
        }
        Err(_) => println!("cargo:warning=mig-rs cannot generate mach/mach.defs for the benchmark"),
    }
}
