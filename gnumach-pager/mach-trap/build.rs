//! Generates the client stubs of the kernel interfaces this crate and its users call, from
//! the project's own `defs/` (wire-compatible with GNU Mach, see `defs/README.md`), for
//! x86_64: `mach.rs`, `mach_port.rs`, `mach_host.rs`, `gnumach.rs`, `device.rs` in OUT_DIR,
//! and `routines.rs`, a table of their request ids and names (read back from the generated
//! constants) for diagnostics.
use std::fmt::Write as _;
use std::path::Path;

const SUBSYSTEMS: [&str; 5] = ["mach", "mach_port", "mach_host", "gnumach", "device"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let defs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../defs");
    let files = mig_rs::Builder::new()
        .files(SUBSYSTEMS.iter().map(|n| defs.join(format!("{n}.defs"))))
        .target(mig_rs::Target::X86_64)
        .server(false)
        .quiet(true)
        .generate()?;

    // Each routine appears as "/// Request id of `name`." followed by its `pub const …_ID`.
    let mut table = String::from("&[\n");
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        let mut name: Option<&str> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("/// Request id of `") {
                name = rest.strip_suffix("`.");
            } else if let (Some(n), Some(v)) = (name.take(), line.strip_prefix("pub const ")) {
                if let Some((_, id)) = v.split_once(": i32 = ") {
                    let id = id.trim_end_matches(';');
                    writeln!(table, "    ({id}, \"{n}\"),")?;
                }
            }
        }
    }
    table.push(']');
    let out = std::env::var("OUT_DIR")?;
    std::fs::write(
        Path::new(&out).join("routines.rs"),
        format!("/// Request ids and names of every generated kernel routine.\npub const ROUTINES: &[(i32, &str)] = {table};\n"),
    )?;
    Ok(())
}
