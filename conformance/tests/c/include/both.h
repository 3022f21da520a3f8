/* Empty header imported by mig-rs/tests/defs/good/imports.defs. */
