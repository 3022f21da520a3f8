//! GNU MIG's C client for `kv.defs` talks to the Rust server (`kv_store::store::Store`)
//! through the runtime's userspace IPC: the C stubs' `mach_msg` is forwarded to Rust. Needs
//! the oracle (Debian 13's GNU MIG under `target/debian13/root`, see `conformance/`); prints
//! `SKIP:` and passes without it (fails instead when `CI` is set).

mod support {
    pub mod c_bridge;
}

#[test]
fn gnu_mig_c_client_talks_to_the_rust_server() {
    let oracle = mig_conformance::require_oracle!();
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kv-c-client");
    let lines = support::c_bridge::run_c_client(&oracle, &out).unwrap_or_else(|e| panic!("{e}"));
    let text = lines.join("\n");
    for want in [
        "kv_put(\"carrot\", \"orange\", 0) -> version 1",
        "kv_put(\"carrot\", \"orange\", 7) -> KERN_ABORTED",
        "kv_get(\"carrot\") -> \"orange\" version 1",
        "-> 2 entries",
        "beet=purple",
        "carrot=orange",
        "kv_get(\"carrot\") -> KERN_INVALID_ARGUMENT",
        "server buckets: [\"veggies\"]",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
