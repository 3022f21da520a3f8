//! Code generation: the IR to Rust source (quote, formatted with prettyplease).
//!
//! One subsystem gives three parts:
//! * **types** — constants (subsystem base, message ids, size limits) and type aliases for
//!   the `.defs` scalar types;
//! * **client** — one function per routine over a [`mig_runtime::Transport`];
//! * **server** — a trait with one method per routine, the stubs and the demux function.
//!
//! Each part is a self-contained list of items (client and server repeat the aliases they
//! use), so the CLI can write them to separate files; [`Generated::combined`] holds all of
//! them with `client` and `server` as submodules, which is what the build-script Builder and
//! the attribute macro use. Generated files start with `// @generated` and contain no
//! `unsafe`.

mod client;
mod common;
mod fields;
mod server;
pub mod shape;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::Subsystem;
use crate::source::SourceMap;
use common::{alias_ok, ident, lit_i32, lit_usize, Ctx};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use shape::{shape, Shape};

/// What to generate and how.
#[derive(Clone, Debug)]
pub struct CodegenOptions {
    /// Path of the runtime crate in generated code.
    pub runtime_crate: String,
    /// Give server trait methods a default body that answers `MIG_BAD_ID`.
    pub default_server_methods: bool,
    /// Generate the client part.
    pub client: bool,
    /// Generate the server part.
    pub server: bool,
    /// The name of the `.defs` file, for the header comment.
    pub source_name: Option<String>,
}

impl Default for CodegenOptions {
    fn default() -> Self {
        CodegenOptions {
            runtime_crate: "::mig_runtime".into(),
            default_server_methods: false,
            client: true,
            server: true,
            source_name: None,
        }
    }
}

/// Generated Rust source, formatted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    /// Constants and type aliases.
    pub types: String,
    /// Client stubs (self-contained: repeats the type aliases).
    pub client: String,
    /// Server trait, stubs and demux (self-contained).
    pub server: String,
    /// Everything in one module body: types, then `pub mod client`, `pub mod server`.
    pub combined: String,
}

/// Generates Rust for a checked subsystem.
pub fn generate(
    sub: &Subsystem,
    map: &SourceMap,
    opts: &CodegenOptions,
) -> Result<Generated, Diagnostics> {
    let rt: TokenStream = match opts.runtime_crate.parse() {
        Ok(t) => t,
        Err(_) => {
            let mut d = Diagnostics::new();
            d.push(Diagnostic::error(format!(
                "`{}` is not a Rust path",
                opts.runtime_crate
            )));
            return Err(d);
        }
    };
    let ctx = Ctx {
        sub,
        map,
        rt,
        t: sub.target,
    };
    let mut diags = Diagnostics::new();
    let consts = consts(&ctx);
    let aliases = aliases(&ctx);

    let mut client_items = Vec::new();
    if opts.client {
        for r in &sub.routines {
            let res = client::reply_struct(&ctx, r).and_then(|s| {
                let f = client::routine(&ctx, r)?;
                Ok((s, f, client::routine_into(&ctx, r)?))
            });
            match res {
                Ok((s, f, fi)) => {
                    client_items.extend(s);
                    client_items.push(f);
                    client_items.push(fi);
                }
                Err(e) => diags.push(
                    Diagnostic::error(format!(
                        "cannot generate a client stub for `{}`: {}",
                        r.name, e.0
                    ))
                    .at(r.loc),
                ),
            }
        }
    }
    let server_items = if opts.server {
        match server::server(&ctx, opts.default_server_methods) {
            Ok(t) => t,
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!(
                        "cannot generate the server for `{}`: {}",
                        sub.name, e.0
                    ))
                    .at(sub.loc),
                );
                quote!()
            }
        }
    } else {
        quote!()
    };
    if diags.has_errors() {
        return Err(diags);
    }

    let header = header_comment(sub, opts);
    let fmt = |part: &str, items: TokenStream, diags: &mut Diagnostics| -> String {
        match syn::parse2::<syn::File>(items) {
            Ok(f) => format!("{header}{}", prettyplease::unparse(&f)),
            Err(e) => {
                diags.push(Diagnostic::error(format!(
                    "internal error: generated {part} code does not parse: {e}"
                )));
                String::new()
            }
        }
    };
    let types = fmt("types", quote!(#consts #aliases), &mut diags);
    let client = fmt("client", quote!(#aliases #(#client_items)*), &mut diags);
    let server = fmt("server", quote!(#aliases #server_items), &mut diags);
    let client_mod = if opts.client {
        quote! {
            /// Client stubs: one function per routine.
            pub mod client {
                #[allow(unused_imports)]
                use super::*;
                #(#client_items)*
            }
        }
    } else {
        quote!()
    };
    let server_mod = if opts.server {
        quote! {
            /// Server side: the trait to implement, the demux, and the stubs.
            pub mod server {
                #[allow(unused_imports)]
                use super::*;
                #server_items
            }
        }
    } else {
        quote!()
    };
    let combined = fmt(
        "combined",
        quote!(#consts #aliases #client_mod #server_mod),
        &mut diags,
    );
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Generated {
        types,
        client,
        server,
        combined,
    })
}

fn header_comment(sub: &Subsystem, opts: &CodegenOptions) -> String {
    let from = opts
        .source_name
        .as_deref()
        .map(|s| format!(" from `{s}`"))
        .unwrap_or_default();
    format!(
        "// @generated by mig-rs {}{from}: subsystem `{}` (base {}), target {}. Do not edit.\n\n",
        env!("CARGO_PKG_VERSION"),
        sub.name,
        sub.base,
        sub.target.name()
    )
}

fn consts(ctx: &Ctx<'_>) -> TokenStream {
    let sub = ctx.sub;
    let rt = &ctx.rt;
    let name = &sub.name;
    let base = lit_i32(sub.base as i32);
    let tt = ctx.target_tokens();
    let max_req = lit_usize(
        sub.routines
            .iter()
            .map(|r| r.request.max_size)
            .max()
            .unwrap_or(0),
    );
    let max_rep = lit_usize(
        sub.routines
            .iter()
            .map(|r| r.reply.max_size)
            .max()
            .unwrap_or(0)
            .max(ctx.t.reply_header_size()),
    );
    let ids = sub.routines.iter().map(|r| {
        let c = format_ident!("{}_ID", r.name.to_uppercase());
        let v = lit_i32(r.msg_id);
        let doc = format!(" Request id of `{}`.", r.name);
        quote!(#[doc = #doc] pub const #c: i32 = #v;)
    });
    let sizes = sub
        .routines
        .iter()
        .filter(|r| r.request.is_fixed())
        .map(|r| {
            let c = format_ident!("{}_REQUEST_SIZE", r.name.to_uppercase());
            let v = lit_usize(r.request.min_size);
            let doc = format!(" Size of `{}`'s request.", r.name);
            quote!(#[doc = #doc] pub const #c: usize = #v;)
        });
    let demux = &sub.demux_name;
    quote! {
        /// The subsystem's name.
        pub const SUBSYSTEM: &str = #name;
        /// The subsystem's base message id.
        pub const SUBSYSTEM_BASE: i32 = #base;
        /// The demux function's name.
        pub const DEMUX: &str = #demux;
        /// The machine the message layouts are for.
        pub const TARGET: #rt::wire::Target = #tt;
        /// The largest request, in bytes.
        pub const MAX_REQUEST_SIZE: usize = #max_req;
        /// The largest reply, in bytes (what a server's reply buffer needs).
        pub const MAX_REPLY_SIZE: usize = #max_rep;
        #(#ids)*
        #(#sizes)*
    }
}

/// Type aliases for the named scalar types of the `.defs`.
fn aliases(ctx: &Ctx<'_>) -> TokenStream {
    let sub = ctx.sub;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (name, id) in sub.types.named().iter().rev() {
        if !seen.insert(name.clone()) || !alias_ok(name) {
            continue;
        }
        let t = sub.ty(*id);
        if t.poisoned {
            continue;
        }
        if let Ok(Shape::Scalar(s)) = shape(sub, *id) {
            if t.number != 1 || t.is_port() {
                continue;
            }
            let n = ident(name);
            let p = format_ident!("{}", s.prim());
            let doc = format!(" `{name}` ({} bits).", s.bits);
            out.push((
                name.clone(),
                quote!(#[doc = #doc] #[allow(non_camel_case_types)] pub type #n = #p;),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let items = out.into_iter().map(|(_, t)| t);
    quote!(#(#items)*)
}
