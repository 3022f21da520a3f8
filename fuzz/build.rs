//! Generates, for the `demux` target, the conformance suite's Rust servers (mig-rs modules
//! plus server implementations answering with test values, see
//! `conformance/build/gen.rs`) for this project's own `defs/` — every subsystem file, and
//! `-DSEQNOS` for the memory-object ones (`conformance_gen.rs`). No GNU MIG is needed.
//!
//! For the `demux_diff` target, the same for the GNU MIG oracle's gnumach-dev files
//! (`oracle_gen.rs`), when the oracle is unpacked (as for `mig-conformance`).

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
    let text = gen::generate_from(&configs, std::slice::from_ref(&defs), &defs, &out, "s");
    write_if_changed(&out.join("conformance_gen.rs"), &text);

    // `demux_diff`: the conformance suite of the oracle's gnumach-dev, as the conformance
    // crate's build script generates it (files `o<k>_*`), when the oracle is there.
    println!("cargo:rerun-if-env-changed=MIG_ORACLE_DIR");
    let root = match env::var_os("MIG_ORACLE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest.join("../target/debian13/root"),
    };
    let inc = root.join("usr/include/x86_64-linux-gnu");
    let marker = inc.join("mach/message.h");
    println!("cargo:rerun-if-changed={}", marker.display());
    let text = if marker.is_file() {
        let inc = fs::canonicalize(&inc).unwrap_or(inc);
        gen::generate_oracle(&inc, &out, "o")
    } else {
        gen::skipped(&format!(
            "the GNU MIG oracle was not found at {} when the fuzz crate was built",
            root.display()
        ))
    };
    write_if_changed(&out.join("oracle_gen.rs"), &text);
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
