//! `cargo run -p kv-store`: a client and a server of `kv.defs` over the userspace Mach IPC.

fn main() {
    match kv_store::demo::run() {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
        }
        Err(e) => {
            eprintln!("kv-store: {e}");
            std::process::exit(1);
        }
    }
}
