//! `cargo run --release -p default-pager-example -- --help`
use default_pager_example::demo;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match demo::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                println!("{}", demo::USAGE);
                return;
            }
            eprintln!("error: {e}\n\n{}", demo::USAGE);
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout();
    match demo::run(&opts, &mut out) {
        Ok(r) => {
            if let Err(e) = demo::check(&r) {
                eprintln!("the run did not show what it should: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
