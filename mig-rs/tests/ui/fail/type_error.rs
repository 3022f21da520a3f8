#[mig_rs::interface(path = "../defs/type_error.defs")]
mod typo {}

fn main() {}
