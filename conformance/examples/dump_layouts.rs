//! Prints the layouts GNU MIG generates for one `.defs` file (debugging aid).
//!
//! Usage: `cargo run -p mig-conformance --example dump_layouts -- FILE.defs [DEFINE...] [--debug]`
//! (a relative FILE is also looked up in the oracle's include directory).
use std::path::PathBuf;

use mig_conformance::{CheckItem, DescriptorCheck, MessageLayout};

fn print_message(what: &str, m: &MessageLayout) {
    println!(
        "  {what}: sizeof {} check {:?} complex {:?} (sender: size {:?}, complex {:?})",
        m.layout.size, m.size_check, m.complex_check, m.sender_fixed_size, m.sender_complex
    );
    for f in &m.layout.fields {
        let ool = f
            .ool_pointer
            .as_deref()
            .map(|p| format!(" | {p}"))
            .unwrap_or_default();
        println!(
            "    {:>5} {:>5}  {:?} {} {}{}{ool}",
            f.offset,
            f.size,
            f.kind,
            f.c_type,
            f.name,
            f.array_len.map(|n| format!("[{n}]")).unwrap_or_default()
        );
    }
    for t in &m.templates {
        println!("    send {} {:#018x} {:?}", t.var, t.value, t.desc);
    }
    for c in &m.checks {
        match c {
            DescriptorCheck::Quick { field, template } => {
                println!("    check {field} == {:#018x}", template.value)
            }
            DescriptorCheck::Fields { field, long, items } => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        CheckItem::Equals {
                            member,
                            value,
                            when_inline,
                            ..
                        } => match when_inline {
                            Some(w) => format!("{member}=={value} if inline=={w}"),
                            None => format!("{member}=={value}"),
                        },
                        CheckItem::NotPortWhenSimple => "!(port && simple)".to_string(),
                    })
                    .collect();
                println!("    check {field} (long {long}): {}", items.join(", "));
            }
        }
    }
    for v in &m.variable_checks {
        println!("    variable: {v}");
    }
    if !m.layout.same_shape(&m.user_layout) {
        println!("    USER STRUCT DIFFERS: {:?}", m.user_layout);
    }
}

fn main() {
    let oracle = match mig_conformance::Oracle::locate() {
        Ok(o) => o,
        Err(skip) => {
            eprintln!("SKIP: {skip}");
            return;
        }
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let debug = args.iter().any(|a| a == "--debug");
    args.retain(|a| a != "--debug");
    if args.is_empty() {
        eprintln!("usage: dump_layouts FILE.defs [DEFINE...] [--debug]");
        std::process::exit(2);
    }
    let defs = args.remove(0);
    let mut path = PathBuf::from(&defs);
    if !path.exists() {
        path = oracle.include_dir().join(&defs);
    }
    let defines: Vec<&str> = args.iter().map(String::as_str).collect();
    let layouts = match oracle.layouts(&path, &defines) {
        Ok(layouts) => layouts,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if debug {
        println!("{layouts:#?}");
        return;
    }
    for r in &layouts {
        println!(
            "{} #{} id {} reply {:?}{}",
            r.name,
            r.number,
            r.msgh_id,
            r.reply_id,
            if r.simple { " (simpleroutine)" } else { "" }
        );
        print_message("request", &r.request);
        if let Some(reply) = &r.reply {
            print_message("reply", reply);
        }
    }
}
