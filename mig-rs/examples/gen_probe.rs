use mig_rs::driver::{compile, Options};
use mig_rs::preprocess::Define;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let inc = std::path::PathBuf::from(&args[1]);
    let out = std::path::PathBuf::from(&args[2]);
    for f in &args[3..] {
        let (f, seq) = match f.strip_suffix(":SEQNOS") {
            Some(x) => (x, true),
            None => (f.as_str(), false),
        };
        let mut opts = Options {
            include_dirs: vec![inc.clone()],
            ..Default::default()
        };
        if seq {
            opts.defines.push(Define::from_d("SEQNOS"));
        }
        let c = compile(std::path::Path::new(f), &opts);
        let Some(s) = c.ok() else {
            eprint!("{}", c.render_diagnostics());
            continue;
        };
        match mig_rs::codegen::generate(s, &c.map, &Default::default()) {
            Ok(g) => {
                let name = format!("{}{}.rs", s.name, if seq { "_seqnos" } else { "" });
                std::fs::write(out.join(name), g.combined).unwrap();
            }
            Err(d) => eprint!("{}", d.render(&c.map)),
        }
    }
}
