//! The attribute's arguments:
//!
//! ```text
//! path = "defs/x.defs"            required, once
//! include = "defs"                any number of times
//! define(NAME)                    any number of times, in order with undefine
//! define(NAME = "value")          value: a string (its contents), an integer or an identifier
//! undefine(NAME)
//! target = "x86_64" | "i386"
//! client = true | false           default true
//! server = true | false           default true
//! default_server_methods = bool   default false
//! runtime_crate = "::mig_runtime"
//! routine_prefix = "prefix_"
//! ```

use crate::preprocess::Define;
use mig_runtime::wire::Target;
use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::{Ident, LitBool, LitStr, Token};

const EXPECTED: &str = "`path = \"…\"`, `include = \"…\"`, `define(NAME)`, \
`define(NAME = \"value\")`, `undefine(NAME)`, `target = \"x86_64\"`, `client = bool`, \
`server = bool`, `default_server_methods = bool`, `runtime_crate = \"…\"` or \
`routine_prefix = \"…\"`";

/// The parsed arguments, with the tokens they came from (for error spans).
pub struct Args {
    pub path: LitStr,
    pub includes: Vec<LitStr>,
    pub defines: Vec<Define>,
    pub target: Target,
    pub client: bool,
    pub server: bool,
    pub default_server_methods: bool,
    pub runtime_crate: String,
    pub routine_prefix: String,
}

#[derive(Default)]
struct Raw {
    path: Option<LitStr>,
    includes: Vec<LitStr>,
    defines: Vec<Define>,
    target: Option<(LitStr, Target)>,
    client: Option<LitBool>,
    server: Option<LitBool>,
    default_server_methods: Option<LitBool>,
    runtime_crate: Option<LitStr>,
    routine_prefix: Option<LitStr>,
}

pub fn parse(attr: TokenStream) -> syn::Result<Args> {
    let raw = (|input: ParseStream| parse_raw(input)).parse2(attr)?;
    let Some(path) = raw.path else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[mig_rs::interface] needs the .defs file: `#[mig_rs::interface(path = \"defs/x.defs\")]`",
        ));
    };
    let client = raw.client.as_ref().is_none_or(LitBool::value);
    let server = raw.server.as_ref().is_none_or(LitBool::value);
    let default_server_methods = raw
        .default_server_methods
        .as_ref()
        .is_some_and(LitBool::value);
    if default_server_methods && !server {
        let at = raw
            .default_server_methods
            .as_ref()
            .map_or(Span::call_site(), |l| l.span);
        return Err(syn::Error::new(
            at,
            "conflicting arguments: `default_server_methods = true` needs the server, but it is \
             disabled with `server = false`",
        ));
    }
    if !client && !server {
        let at = raw.server.as_ref().map_or(Span::call_site(), |l| l.span);
        return Err(syn::Error::new(
            at,
            "conflicting arguments: `client = false` and `server = false` leave nothing to generate",
        ));
    }
    let runtime_crate = match &raw.runtime_crate {
        Some(l) => {
            let v = l.value();
            if syn::parse_str::<syn::Path>(&v).is_err() {
                return Err(syn::Error::new(
                    l.span(),
                    format!("`runtime_crate = {v:?}` is not a Rust path (e.g. \"::mig_runtime\")"),
                ));
            }
            v
        }
        None => "::mig_runtime".to_string(),
    };
    let routine_prefix = match &raw.routine_prefix {
        Some(l) => {
            let v = l.value();
            if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(syn::Error::new(
                    l.span(),
                    "a routine prefix may only contain letters, digits and `_`",
                ));
            }
            v
        }
        None => String::new(),
    };
    Ok(Args {
        path,
        includes: raw.includes,
        defines: raw.defines,
        target: raw.target.map_or(Target::X86_64, |(_, t)| t),
        client,
        server,
        default_server_methods,
        runtime_crate,
        routine_prefix,
    })
}

fn parse_raw(input: ParseStream) -> syn::Result<Raw> {
    let mut raw = Raw::default();
    while !input.is_empty() {
        let key = match input.call(Ident::parse_any) {
            Ok(k) => k,
            Err(_) => {
                return Err(syn::Error::new(
                    input.span(),
                    format!("expected an argument: {EXPECTED}"),
                ))
            }
        };
        let name = key.to_string();
        match name.as_str() {
            "path" => {
                let v = string_value(input, &key, "path = \"defs/x.defs\"")?;
                if v.value().is_empty() {
                    return Err(syn::Error::new(v.span(), "the path is empty"));
                }
                set_once(&mut raw.path, v, &key)?;
            }
            "include" => {
                let v = string_value(input, &key, "include = \"defs\"")?;
                if v.value().is_empty() {
                    return Err(syn::Error::new(v.span(), "the include directory is empty"));
                }
                raw.includes.push(v);
            }
            "target" => {
                let v = string_value(input, &key, "target = \"x86_64\"")?;
                let Some(t) = Target::from_name(&v.value()) else {
                    return Err(syn::Error::new(
                        v.span(),
                        format!(
                            "unknown target `{}`: expected \"x86_64\" or \"i386\"",
                            v.value()
                        ),
                    ));
                };
                if raw.target.is_some() {
                    return Err(duplicate(&key));
                }
                raw.target = Some((v, t));
            }
            "runtime_crate" => {
                let v = string_value(input, &key, "runtime_crate = \"::mig_runtime\"")?;
                set_once(&mut raw.runtime_crate, v, &key)?;
            }
            "routine_prefix" => {
                let v = string_value(input, &key, "routine_prefix = \"my_\"")?;
                set_once(&mut raw.routine_prefix, v, &key)?;
            }
            "client" => {
                let v = bool_value(input, &key)?;
                set_once(&mut raw.client, v, &key)?;
            }
            "server" => {
                let v = bool_value(input, &key)?;
                set_once(&mut raw.server, v, &key)?;
            }
            "default_server_methods" => {
                let v = bool_value(input, &key)?;
                set_once(&mut raw.default_server_methods, v, &key)?;
            }
            "define" | "undefine" => {
                let content;
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("expected `{name}(NAME)` (a macro name in parentheses)"),
                    ));
                }
                syn::parenthesized!(content in input);
                raw.defines
                    .push(define_args(&content, &key, name == "define")?);
            }
            _ => {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{name}`; expected {EXPECTED}"),
                ))
            }
        }
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(syn::Error::new(
                input.span(),
                "expected `,` between arguments",
            ));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(raw)
}

fn duplicate(key: &Ident) -> syn::Error {
    syn::Error::new(key.span(), format!("`{key}` is given more than once"))
}

fn set_once<T>(slot: &mut Option<T>, v: T, key: &Ident) -> syn::Result<()> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    *slot = Some(v);
    Ok(())
}

fn eq(input: ParseStream, key: &Ident, example: &str) -> syn::Result<()> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key.span(),
            format!("expected `=` after `{key}`, as in `{example}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    Ok(())
}

fn string_value(input: ParseStream, key: &Ident, example: &str) -> syn::Result<LitStr> {
    eq(input, key, example)?;
    if input.peek(LitStr) {
        return input.parse();
    }
    Err(syn::Error::new(
        input.span(),
        format!("expected a string literal for `{key}`, as in `{example}`"),
    ))
}

fn bool_value(input: ParseStream, key: &Ident) -> syn::Result<LitBool> {
    eq(input, key, &format!("{key} = true"))?;
    if input.peek(LitBool) {
        return input.parse();
    }
    Err(syn::Error::new(
        input.span(),
        format!("expected `true` or `false` for `{key}`"),
    ))
}

/// The inside of `define(...)` / `undefine(...)`.
fn define_args(content: ParseStream, key: &Ident, define: bool) -> syn::Result<Define> {
    let what = if define { "define" } else { "undefine" };
    let name = match content.call(Ident::parse_any) {
        Ok(n) => n,
        Err(_) => {
            let at = if content.is_empty() {
                key.span()
            } else {
                content.span()
            };
            return Err(syn::Error::new(
                at,
                format!("expected a macro name, as in `{what}(SEQNOS)`"),
            ));
        }
    };
    let name_s = name.to_string();
    let name_s = name_s.strip_prefix("r#").unwrap_or(&name_s).to_string();
    if !define {
        if !content.is_empty() {
            return Err(syn::Error::new(
                content.span(),
                "expected `)`: `undefine` takes only a macro name",
            ));
        }
        return Ok(Define::Unset(name_s));
    }
    if content.is_empty() {
        return Ok(Define::Set(name_s, None));
    }
    if !content.peek(Token![=]) {
        return Err(syn::Error::new(
            content.span(),
            format!("expected `=` or `)` after `{name_s}`, as in `define({name_s} = \"1\")`"),
        ));
    }
    content.parse::<Token![=]>()?;
    let value = if content.peek(LitStr) {
        content.parse::<LitStr>()?.value()
    } else if content.peek(syn::LitInt) {
        content.parse::<syn::LitInt>()?.to_string()
    } else if content.peek(Ident::peek_any) {
        content.call(Ident::parse_any)?.to_string()
    } else {
        return Err(syn::Error::new(
            content.span(),
            format!(
                "expected the value of `{name_s}`: a string, an integer or an identifier, as in \
                 `define({name_s} = \"1\")`"
            ),
        ));
    };
    if !content.is_empty() {
        return Err(syn::Error::new(
            content.span(),
            "expected `)` after the value",
        ));
    }
    Ok(Define::Set(name_s, Some(value)))
}
