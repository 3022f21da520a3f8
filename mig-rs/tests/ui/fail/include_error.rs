// The error is in a file included by the one named here: the message shows the include chain.
#[mig_rs::interface(path = "../defs/include_error.defs")]
mod widgets {}

// An #include that is not found.
#[mig_rs::interface(path = "../defs/calc.defs")]
mod no_include_dir {}

fn main() {}
