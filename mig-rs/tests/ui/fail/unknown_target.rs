#[mig_rs::interface(path = "../defs/calc.defs", include = "../defs/inc", target = "arm64")]
mod calc {}

fn main() {}
