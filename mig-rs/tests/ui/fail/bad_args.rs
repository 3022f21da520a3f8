#[mig_rs::interface]
mod no_args {}

#[mig_rs::interface(include = "../defs/inc")]
mod no_path {}

#[mig_rs::interface(paht = "../defs/calc.defs")]
mod misspelled {}

#[mig_rs::interface(path)]
mod no_value {}

#[mig_rs::interface(path = 42)]
mod not_a_string {}

#[mig_rs::interface(path = "../defs/calc.defs", path = "../defs/calc.defs")]
mod twice {}

#[mig_rs::interface(path = "../defs/calc.defs" include = "../defs/inc")]
mod no_comma {}

#[mig_rs::interface(path = "../defs/calc.defs", client = "yes")]
mod not_a_bool {}

#[mig_rs::interface(path = "../defs/calc.defs", define = "SEQNOS")]
mod define_without_parens {}

#[mig_rs::interface(path = "../defs/calc.defs", define(SCALE_T = ))]
mod define_without_value {}

#[mig_rs::interface(path = "../defs/calc.defs", server = false, default_server_methods = true)]
mod conflicting {}

#[mig_rs::interface(path = "../defs/calc.defs", client = false, server = false)]
mod nothing {}

#[mig_rs::interface(path = "../defs/calc.defs", runtime_crate = "not a path")]
mod bad_runtime {}

fn main() {}
