//! Generates the stubs of `defs/testing/*.defs` into OUT_DIR, for both targets.
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("..");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for target in [mig_rs::Target::X86_64, mig_rs::Target::I386] {
        let path = root.join("defs/testing/features.defs");
        println!("cargo:rerun-if-changed={}", path.display());
        let opts = mig_rs::driver::Options {
            target,
            quiet: true,
            ..Default::default()
        };
        let c = mig_rs::driver::compile(&path, &opts);
        if c.has_errors() {
            panic!("{}", c.render_diagnostics());
        }
        let sub = c.subsystem.as_ref().expect("subsystem");
        let g = mig_rs::codegen::generate(sub, &c.map, &Default::default())
            .unwrap_or_else(|d| panic!("{}", d.render(&c.map)));
        std::fs::write(
            out.join(format!("features_{}.rs", target.name())),
            g.combined,
        )
        .expect("write");
    }
}
