#[mig_rs::interface(path = "../defs/no_such_file.defs")]
mod missing {}

#[mig_rs::interface(path = "../defs/calc.defs", include = "../defs/no_such_dir")]
mod missing_include_dir {}

fn main() {}
