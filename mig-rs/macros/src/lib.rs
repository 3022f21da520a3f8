//! The `#[mig_rs::interface]` attribute: generates the stubs of a `.defs` file into a module.
//!
//! Use it through the `mig-rs` crate (`mig_rs::interface`, default feature `macros`); the
//! documentation is on the re-export.
//!
//! # A thin shim
//!
//! `mig-rs` re-exports this macro, so this crate cannot depend on `mig-rs` (Cargo rejects the
//! cycle). Instead the crate root mounts the library's own front end and code generator —
//! the very same source files — as private modules with `#[path]`, as cxx does with its
//! `syntax/` directory. Everything this file adds is argument parsing, path resolution,
//! rebuild tracking and turning diagnostics into `compile_error!`.

// The library's pipeline, compiled into the proc-macro. Only part of each module's API is
// used here, hence the `dead_code` allowance.
macro_rules! mount {
    ($($name:ident = $path:literal;)*) => {
        $(
            #[path = $path]
            #[allow(dead_code, unused_imports, unused_macros, clippy::all)]
            mod $name;
        )*
    };
}

mount! {
    source = "../../src/source.rs";
    diagnostics = "../../src/diagnostics.rs";
    preprocess = "../../src/preprocess/mod.rs";
    lex = "../../src/lex.rs";
    parse = "../../src/parse/mod.rs";
    check = "../../src/check/mod.rs";
    ir = "../../src/ir.rs";
    codegen = "../../src/codegen/mod.rs";
    driver = "../../src/driver.rs";
}

mod args;
mod expand;

use proc_macro::TokenStream;

/// See `mig_rs::interface`.
#[proc_macro_attribute]
pub fn interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = proc_macro2::TokenStream::from(attr);
    let item = proc_macro2::TokenStream::from(item);
    // The library does not panic on any input; this only turns a bug into an error at the
    // attribute instead of "proc macro panicked".
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| expand::expand(attr, item)));
    match result {
        Ok(Ok(tokens)) => tokens.into(),
        Ok(Err(e)) => e.to_compile_error().into(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("internal error in mig-rs (please report it): {what}"),
            )
            .to_compile_error()
            .into()
        }
    }
}
