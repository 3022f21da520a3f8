#[mig_rs::interface(path = "../defs/bad_syntax.defs")]
mod broken {}

fn main() {}
