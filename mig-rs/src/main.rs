//! The `mig-rs` program; everything happens in [`mig_rs::cli::run`].

fn main() {
    let code = mig_rs::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
