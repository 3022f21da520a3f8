//! Generates, for the `demux` target, the conformance suite's Rust servers (mig-rs modules
//! plus server implementations answering with test values, see
//! `conformance/build/gen.rs`) for this project's own `defs/` — every subsystem file, and
//! `-DSEQNOS` for the memory-object ones. No GNU MIG is needed.

#[path = "../conformance/build/gen.rs"]
#[allow(dead_code)]
mod gen;
#[path = "../conformance/build/values.rs"]
mod values;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let defs = manifest.join("../defs");
    let defs = fs::canonicalize(&defs).unwrap_or(defs);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../conformance/build");
    println!("cargo:rerun-if-changed={}", defs.display());
    let mut configs = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(&defs)
        .expect("read defs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "defs"))
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("cargo:rerun-if-changed={}", f.display());
        // Types-only files have no subsystem.
        if name.ends_with("_types.defs") {
            continue;
        }
        configs.push((f.clone(), name.clone(), vec![]));
        if name == "memory_object.defs" || name == "memory_object_default.defs" {
            configs.push((f, name, vec!["SEQNOS"]));
        }
    }
    let text = gen::generate_from(&configs, &[defs.clone()], &defs, &out);
    write_if_changed(&out.join("conformance_gen.rs"), &text);
}

/// Writes `text` to `path` unless it already holds exactly that.
pub fn write_if_changed(path: &Path, text: &str) {
    if fs::read(path).ok().as_deref() == Some(text.as_bytes()) {
        return;
    }
    if let Err(e) = fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}
