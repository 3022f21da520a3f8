#[mig_rs::interface(path = "../defs/calc.defs")]
struct NotAModule;

#[mig_rs::interface(path = "../defs/calc.defs")]
mod outline;

fn main() {}
