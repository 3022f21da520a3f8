fn main() {
    let a: Vec<String> = std::env::args().collect();
    let c = mig_rs::driver::compile(std::path::Path::new(&a[1]), &Default::default());
    if c.has_errors() {
        eprint!("{}", c.render_diagnostics());
        std::process::exit(1);
    }
    eprint!("{}", c.render_diagnostics());
    let g = mig_rs::codegen::generate(
        c.subsystem.as_ref().unwrap(),
        &c.map,
        &mig_rs::codegen::CodegenOptions {
            default_server_methods: a.get(3).is_some(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|d| {
        eprint!("{}", d.render(&c.map));
        std::process::exit(1)
    });
    std::fs::write(&a[2], g.combined).unwrap();
}
