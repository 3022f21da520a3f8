//! Generated stubs of `defs/testing/features.defs` (every argument shape GNU MIG supports),
//! for the tests in `tests/`.

/// x86_64 layout (the default).
pub mod features {
    include!(concat!(env!("OUT_DIR"), "/features_x86_64.rs"));
}

/// i386 layout.
pub mod features_i386 {
    include!(concat!(env!("OUT_DIR"), "/features_i386.rs"));
}
