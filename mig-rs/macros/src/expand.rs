//! The expansion: resolve paths, run the library's pipeline, and build the module.

use crate::args::{self, Args};
use crate::codegen::{self, CodegenOptions};
use crate::diagnostics::{self, Severity};
use crate::driver::{self, Options};
use crate::preprocess::FileLoader;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::path::{Path, PathBuf};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let module: syn::ItemMod = match syn::parse2(item.clone()) {
        Ok(m) => m,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or(Span::call_site(), |t| t.span());
            return Err(syn::Error::new(
                span,
                "#[mig_rs::interface] goes on an inline module: `mod name {}`",
            ));
        }
    };
    let Some((_, content)) = &module.content else {
        return Err(syn::Error::new(
            module.semi.map_or(module.ident.span(), |s| s.span),
            "#[mig_rs::interface] needs an inline module: write `mod name {}`, not `mod name;`",
        ));
    };
    let args = args::parse(attr)?;
    let generated = generate(&args)?;

    let attrs = &module.attrs;
    let vis = &module.vis;
    let unsafety = &module.unsafety;
    let ident = &module.ident;
    let (inner, outer): (Vec<_>, Vec<_>) = attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let code = generated.code;
    let tracking = generated.tracking;
    Ok(quote! {
        #(#outer)*
        #vis #unsafety mod #ident {
            #(#inner)*
            #code
            #tracking
            #(#content)*
        }
    })
}

struct Expansion {
    code: TokenStream,
    tracking: TokenStream,
}

const LOOKUP: &str = "note: relative paths are looked up in the package directory \
(CARGO_MANIFEST_DIR), then next to the source file holding the attribute";

/// Where relative paths are resolved: the package (`CARGO_MANIFEST_DIR`) first, then the
/// directory of the source file holding the attribute.
struct Bases {
    manifest: Option<PathBuf>,
    source: Option<PathBuf>,
}

impl Bases {
    fn new(lit: &syn::LitStr) -> Bases {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let source = local_dir(lit.span());
        Bases { manifest, source }
    }

    fn candidates(&self) -> Vec<&Path> {
        let mut v = Vec::new();
        if let Some(m) = &self.manifest {
            v.push(m.as_path());
        }
        if let Some(s) = &self.source {
            if Some(s) != self.manifest.as_ref() {
                v.push(s.as_path());
            }
        }
        v
    }

    /// The base under which `rel` exists (as a file if `file`, else as a directory).
    fn find(&self, rel: &Path, file: bool) -> Option<&Path> {
        self.candidates().into_iter().find(|b| {
            let p = b.join(rel);
            if file {
                p.is_file()
            } else {
                p.is_dir()
            }
        })
    }
}

/// The directory of the source file a span is in, when the compiler tells (Rust 1.88+;
/// rust-analyzer does not).
fn local_dir(span: Span) -> Option<PathBuf> {
    if !proc_macro_available() {
        return None;
    }
    let file = span.unwrap().local_file()?;
    let file = if file.is_absolute() {
        file
    } else {
        std::env::current_dir().ok()?.join(file)
    };
    file.parent().map(Path::to_path_buf)
}

fn proc_macro_available() -> bool {
    proc_macro::is_available()
}

/// Reads files relative to a base directory, so diagnostics show short paths
/// (`defs/x.defs:3:5`) while reads go to the right place.
struct RootedLoader<'a> {
    root: &'a Path,
}

impl FileLoader for RootedLoader<'_> {
    fn load(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.root.join(path))
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.root.join(path).is_file()
    }
}

fn generate(args: &Args) -> syn::Result<Expansion> {
    let bases = Bases::new(&args.path);
    let rel = PathBuf::from(args.path.value());
    let root: PathBuf = if rel.is_absolute() {
        PathBuf::from("/")
    } else {
        match bases.find(&rel, true) {
            Some(b) => b.to_path_buf(),
            None => {
                let why = bases
                    .candidates()
                    .first()
                    .map(|b| match std::fs::metadata(b.join(&rel)) {
                        Ok(m) if m.is_dir() => "it is a directory".to_string(),
                        Ok(_) => "it is not a regular file".to_string(),
                        Err(e) => e.to_string(),
                    })
                    .unwrap_or_else(|| "not found".into());
                return Err(syn::Error::new(
                    args.path.span(),
                    format!("cannot read `{}`: {why}\n{LOOKUP}", rel.display()),
                ));
            }
        }
    };
    if rel.is_absolute() && !rel.is_file() {
        let why = match std::fs::metadata(&rel) {
            Ok(_) => "not a regular file".to_string(),
            Err(e) => e.to_string(),
        };
        return Err(syn::Error::new(
            args.path.span(),
            format!("cannot read `{}`: {why}", rel.display()),
        ));
    }

    // Include directories: relative to the same base as the file when they exist there,
    // else wherever they exist; a missing one is an error at its literal.
    let mut include_dirs = Vec::new();
    for lit in &args.includes {
        let d = PathBuf::from(lit.value());
        if d.is_absolute() {
            if !d.is_dir() {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("include directory `{}` does not exist", d.display()),
                ));
            }
            include_dirs.push(d);
        } else if root.join(&d).is_dir() {
            include_dirs.push(d);
        } else if let Some(b) = bases.find(&d, false) {
            include_dirs.push(b.join(&d));
        } else {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "include directory `{}` does not exist\n{LOOKUP}",
                    d.display()
                ),
            ));
        }
    }

    let opts = Options {
        target: args.target,
        include_dirs,
        defines: args.defines.clone(),
        routine_prefix: args.routine_prefix.clone(),
        quiet: true,
        ..Options::default()
    };
    let comp = driver::compile_with(&rel, &opts, &mut RootedLoader { root: &root });

    // One `include_bytes!` per file read, so rustc rebuilds when any of them changes.
    let tracking: Vec<TokenStream> = comp
        .files_read
        .iter()
        .map(|f| root.join(f))
        .filter(|f| f.is_file())
        .filter_map(|f| f.to_str().map(str::to_owned))
        .map(|f| {
            quote!(
                const _: &[u8] = ::core::include_bytes!(#f);
            )
        })
        .collect();
    let tracking = quote!(#(#tracking)*);

    let span = args.path.span();
    let defs_error = |report: String| -> syn::Error { syn::Error::new(span, report) };
    if comp.has_errors() || comp.subsystem.is_none() {
        let mut err: Option<syn::Error> = None;
        for d in comp.diags.iter().filter(|d| d.severity == Severity::Error) {
            let e = defs_error(message(&diagnostics::render(d, &comp.map)));
            match &mut err {
                Some(all) => all.combine(e),
                None => err = Some(e),
            }
        }
        if comp.diags.dropped() > 0 {
            let e = defs_error(format!(
                "{} more errors were not shown",
                comp.diags.dropped()
            ));
            match &mut err {
                Some(all) => all.combine(e),
                None => err = Some(e),
            }
        }
        let err = err.unwrap_or_else(|| defs_error(format!("`{}` has errors", rel.display())));
        // Keep the tracking so fixing an included file is noticed.
        let mut tokens = err.to_compile_error();
        tokens.extend(tracking);
        return Ok(Expansion {
            code: tokens,
            tracking: TokenStream::new(),
        });
    }
    let Some(sub) = comp.ok() else {
        return Err(defs_error(format!("`{}` has errors", rel.display())));
    };
    let copts = CodegenOptions {
        runtime_crate: args.runtime_crate.clone(),
        default_server_methods: args.default_server_methods,
        client: args.client,
        server: args.server,
        source_name: rel.file_name().map(|n| n.to_string_lossy().into_owned()),
    };
    let generated = match codegen::generate(sub, &comp.map, &copts) {
        Ok(g) => g,
        Err(d) => {
            let mut report = d.render(&comp.map);
            if report.is_empty() {
                report = "code generation failed (no details)".into();
            }
            return Err(defs_error(message(&report)));
        }
    };
    let code: TokenStream = match generated.combined.parse() {
        Ok(t) => t,
        Err(e) => {
            return Err(defs_error(format!(
                "internal error: the generated code does not parse: {e}"
            )))
        }
    };
    Ok(Expansion { code, tracking })
}

/// A rendered diagnostic as a `compile_error!` message: rustc adds `error: ` itself, and
/// the location line reads `--> file:line:col` as in rustc's own output.
fn message(rendered: &str) -> String {
    let text = rendered.trim_end();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line
            .replacen("┌─", "-->", 1)
            .replace('│', "|")
            .replace('·', ".")
            .replace('╭', "/")
            .replace('╰', "|")
            .replace('─', "^");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}
