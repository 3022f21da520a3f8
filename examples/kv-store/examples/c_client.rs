//! `cargo run -p kv-store --example c_client`: GNU MIG's C client for `kv.defs` (generated
//! and compiled under `target/` at run time) against the Rust server, over the userspace
//! IPC. Needs the oracle (Debian 13's GNU MIG under `target/debian13/root`).

#[path = "../tests/support/c_bridge.rs"]
mod c_bridge;

fn main() {
    let oracle = match mig_conformance::Oracle::locate() {
        Ok(o) => o,
        Err(skip) => {
            eprintln!("SKIP: {skip}");
            return;
        }
    };
    let out = mig_conformance::workspace_root()
        .join("target")
        .join("kv-store-c-client");
    match c_bridge::run_c_client(&oracle, &out) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => {
            eprintln!("c_client: {e}");
            std::process::exit(1);
        }
    }
}
