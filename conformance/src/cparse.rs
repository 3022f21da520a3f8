//! Textual extraction from GNU MIG's generated C (`Server.c` / `User.c`).
//!
//! GNU MIG's output is regular: every routine starts with a `/* Routine NAME */` or
//! `/* SimpleRoutine NAME */` comment; message structs are `typedef struct { … } Request;`
//! / `Reply;` with one member per line (variable arrays as an anonymous
//! `union { T x[N]; T *xP; };`); descriptor templates are `const mach_msg_type_t NAME = {…};`
//! or `const mach_msg_type_long_t NAME = {…};`; every check sits in its own
//! `#if TypeCheck … #endif` block. This module only slices that text; numbers are obtained
//! by compiling a probe (see `layout.rs`).

use crate::error::{OracleError, Result};
use crate::layout::{ComplexBit, DescAttr, SizeCheck};

/// One member of a message struct, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawField {
    pub name: String,
    pub c_type: String,
    pub array_len: Option<u64>,
    /// For `union { T x[N]; T *xP; }`: the pointer member's name and type.
    pub ool_pointer: Option<(String, String)>,
}

/// The members of a `typedef struct { … } Request;` (or `Reply;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawStruct {
    pub body: String,
    pub fields: Vec<RawField>,
}

/// `const mach_msg_type_t NAME = {…};` or the `_long_t` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawTemplate {
    pub var: String,
    pub long: bool,
    /// The initializer, braces included.
    pub init: String,
}

/// One clause of a field-by-field descriptor check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawItem {
    /// `P->FIELD.MEMBER != EXPR [&& P->X.msgtl_header.msgt_inline == WHEN]`
    Compare {
        member: String,
        attr: DescAttr,
        expr: String,
        when_inline: Option<String>,
    },
    /// `MACH_MSG_TYPE_PORT_ANY(P->FIELD.msgt_name) && msgh_simple`
    NotPortWhenSimple { member: String },
}

/// A descriptor check, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawCheck {
    /// `BAD_TYPECHECK(&P->FIELD, &VAR)`
    Quick { field: String, var: String },
    /// `if (mig_unlikely ((P->FIELD.… != …) || …))`
    Fields {
        field: String,
        long: bool,
        items: Vec<RawItem>,
    },
}

/// Everything extracted from one routine's section of a generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRoutine {
    pub name: String,
    /// From the `/* SimpleRoutine … */` comment.
    pub simple: bool,
    pub request: Option<RawStruct>,
    pub reply: Option<RawStruct>,
    pub templates: Vec<RawTemplate>,
    /// Descriptor checks of the message this side receives, in order.
    pub checks: Vec<RawCheck>,
    /// The first size check of the received message.
    pub size_check: Option<SizeCheck>,
    /// The complex-bit expectation of the first check.
    pub complex_check: ComplexBit,
    /// Later size checks (variable parts), whitespace-normalised C conditions.
    pub variable_checks: Vec<String>,
    /// The statically known size of the message this side sends.
    pub sender_fixed_size: Option<u64>,
    /// How this side sets the complex bit of the message it sends.
    pub sender_complex: ComplexBit,
}

/// A parsed `Server.c` or `User.c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFile {
    /// `#include` lines of the prologue, in order.
    pub includes: Vec<String>,
    pub routines: Vec<RawRoutine>,
    /// Templates after the last routine (the server demux's `RetCodeType`).
    pub trailer_templates: Vec<RawTemplate>,
}

/// Which generated file is being parsed; decides which message each part describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    User,
}

pub(crate) fn parse_file(text: &str, side: Side) -> Result<RawFile> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((simple, name)) = routine_marker(line) {
            starts.push((i, simple, name));
        }
    }
    let first = starts.first().map(|s| s.0).unwrap_or(lines.len());
    let includes = lines[..first]
        .iter()
        .filter(|l| l.trim_start().starts_with("#include"))
        .map(|l| l.trim().to_string())
        .collect();
    // The trailer (demux, routine table) starts at the routine table.
    let trailer_start = lines
        .iter()
        .enumerate()
        .skip(first)
        .find(|(_, l)| l.starts_with("mig_routine_t "))
        .map(|(i, _)| i)
        .unwrap_or(lines.len());
    let mut routines = Vec::new();
    for (k, &(start, simple, ref name)) in starts.iter().enumerate() {
        let next = starts.get(k + 1).map_or(lines.len(), |s| s.0);
        let end = if trailer_start > start {
            next.min(trailer_start)
        } else {
            next
        };
        let chunk = &lines[start..end];
        let routine = parse_routine(name, simple, chunk, side)
            .map_err(|e| e.context(format!("routine {name}")))?;
        routines.push(routine);
    }
    let trailer_templates = parse_templates(&lines[trailer_start.min(lines.len())..])?;
    Ok(RawFile {
        includes,
        routines,
        trailer_templates,
    })
}

fn routine_marker(line: &str) -> Option<(bool, String)> {
    let rest = line.strip_prefix("/* ")?;
    let (simple, rest) = if let Some(r) = rest.strip_prefix("SimpleRoutine ") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("Routine ") {
        (false, r)
    } else {
        return None;
    };
    let name = rest.strip_suffix(" */")?.trim();
    if name.is_empty() || !name.chars().all(is_ident_char) {
        return None;
    }
    Some((simple, name.to_string()))
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn parse_routine(name: &str, simple: bool, chunk: &[&str], side: Side) -> Result<RawRoutine> {
    let mut request = None;
    let mut reply = None;
    let mut i = 0;
    while i < chunk.len() {
        if chunk[i].trim() == "typedef struct {" {
            let (end, which, st) = parse_struct(chunk, i)?;
            match which.as_str() {
                "Request" => request = Some(st),
                "Reply" => reply = Some(st),
                _ => {}
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    let templates = parse_templates(chunk)?;
    let mut checks = Vec::new();
    let mut size_check = None;
    let mut complex_check = ComplexBit::Dynamic;
    let mut variable_checks = Vec::new();
    for block in typecheck_blocks(chunk) {
        let Some(cond) = if_condition(&block) else {
            continue;
        };
        if block.contains("BAD_TYPECHECK") {
            checks.extend(parse_quick_checks(&block)?);
        } else if cond.contains("msgh_size") || block.contains("->Head.msgh_size") {
            if block.contains("->Head.msgh_size") && size_check.is_none() {
                size_check = Some(parse_size_check(&cond)?);
                complex_check = receiver_complex(&cond);
            } else {
                variable_checks.push(cond.clone());
            }
        } else if cond.contains("Type.msgt") {
            checks.push(parse_field_check(&cond)?);
        }
    }
    let joined = chunk.join("\n");
    let (sender_fixed_size, sender_complex) = match side {
        Side::User => (
            number_after(&joined, "_Static_assert(sizeof(Request) == "),
            if joined.contains("InP->Head.msgh_bits = MACH_MSGH_BITS_COMPLEX|") {
                ComplexBit::Set
            } else if joined.contains("InP->Head.msgh_bits = msgh_simple ?") {
                ComplexBit::Dynamic
            } else {
                ComplexBit::Clear
            },
        ),
        Side::Server => (server_fixed_reply_size(chunk), server_sender_complex(chunk)),
    };
    Ok(RawRoutine {
        name: name.to_string(),
        simple,
        request,
        reply,
        templates,
        checks,
        size_check,
        complex_check,
        variable_checks,
        sender_fixed_size,
        sender_complex,
    })
}

/// `OutP->Head.msgh_size = N;` with a literal N (not `N + (…)`, not `sizeof *OutP`), if
/// the stub writes exactly one such size and never a computed one.
fn server_fixed_reply_size(chunk: &[&str]) -> Option<u64> {
    let mut sizes = Vec::new();
    for line in chunk {
        if let Some(rhs) = line.trim().strip_prefix("OutP->Head.msgh_size = ") {
            let rhs = rhs.trim_end_matches(';').trim();
            match rhs.parse::<u64>() {
                Ok(n) => sizes.push(n),
                Err(_) => return None,
            }
        }
    }
    sizes.dedup();
    match sizes.as_slice() {
        [n] => Some(*n),
        _ => None,
    }
}

fn server_sender_complex(chunk: &[&str]) -> ComplexBit {
    let mut result = ComplexBit::Clear;
    for (i, line) in chunk.iter().enumerate() {
        if line.trim() == "OutP->Head.msgh_bits |= MACH_MSGH_BITS_COMPLEX;" {
            let guarded = i > 0 && chunk[i - 1].trim() == "if (!msgh_simple)";
            result = if guarded {
                ComplexBit::Dynamic
            } else {
                ComplexBit::Set
            };
        }
    }
    result
}

/// Parses the struct starting at `chunk[start]` (`typedef struct {`); returns the index of
/// the closing line, the typedef name and the members.
fn parse_struct(chunk: &[&str], start: usize) -> Result<(usize, String, RawStruct)> {
    let mut fields = Vec::new();
    let mut body = String::new();
    let mut i = start + 1;
    while i < chunk.len() {
        let line = chunk[i].trim();
        if let Some(rest) = line.strip_prefix('}') {
            let name = rest.trim().trim_end_matches(';').trim().to_string();
            return Ok((i, name, RawStruct { body, fields }));
        }
        body.push_str(chunk[i]);
        body.push('\n');
        if line == "union {" {
            let mut members = Vec::new();
            i += 1;
            while i < chunk.len() && chunk[i].trim() != "};" {
                body.push_str(chunk[i]);
                body.push('\n');
                members.push(parse_decl(chunk[i].trim())?);
                i += 1;
            }
            body.push_str("\t\t};\n");
            let mut array = None;
            let mut pointer = None;
            for m in members {
                if m.c_type.ends_with('*') {
                    pointer = Some((m.name, m.c_type));
                } else {
                    array = Some(m);
                }
            }
            let Some(mut array) = array else {
                return Err(OracleError::new(format!(
                    "union without an array member near line {:?}",
                    chunk.get(i)
                )));
            };
            array.ool_pointer = pointer;
            fields.push(array);
        } else if !line.is_empty() {
            fields.push(parse_decl(line)?);
        }
        i += 1;
    }
    Err(OracleError::new("unterminated typedef struct"))
}

/// `TYPE NAME;`, `TYPE NAME[N];` or `TYPE *NAME;`.
fn parse_decl(line: &str) -> Result<RawField> {
    let bad = || OracleError::new(format!("cannot parse struct member {line:?}"));
    let decl = line.strip_suffix(';').ok_or_else(bad)?.trim();
    let (decl, array_len) = match decl.strip_suffix(']') {
        Some(d) => {
            let open = d.rfind('[').ok_or_else(bad)?;
            let n = d[open + 1..].trim().parse::<u64>().map_err(|_| bad())?;
            (d[..open].trim_end(), Some(n))
        }
        None => (decl, None),
    };
    let name_start = decl
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident_char(c))
        .last()
        .map(|(i, _)| i)
        .ok_or_else(bad)?;
    let name = decl[name_start..].to_string();
    let c_type = decl[..name_start].trim().to_string();
    if c_type.is_empty() || name.is_empty() {
        return Err(bad());
    }
    Ok(RawField {
        name,
        c_type,
        array_len,
        ool_pointer: None,
    })
}

fn parse_templates(chunk: &[&str]) -> Result<Vec<RawTemplate>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chunk.len() {
        let line = chunk[i].trim();
        let (long, rest) = if let Some(r) = line.strip_prefix("const mach_msg_type_t ") {
            (false, r)
        } else if let Some(r) = line.strip_prefix("const mach_msg_type_long_t ") {
            (true, r)
        } else {
            i += 1;
            continue;
        };
        let Some(var) = rest.strip_suffix("= {").map(str::trim) else {
            i += 1;
            continue;
        };
        let mut init = String::from("{\n");
        let mut depth = 1;
        i += 1;
        while i < chunk.len() && depth > 0 {
            for c in chunk[i].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let text = if depth == 0 {
                chunk[i].trim().trim_end_matches(';')
            } else {
                chunk[i]
            };
            init.push_str(text);
            init.push('\n');
            i += 1;
        }
        if depth != 0 {
            return Err(OracleError::new(format!("unterminated template {var}")));
        }
        out.push(RawTemplate {
            var: var.to_string(),
            long,
            init,
        });
    }
    Ok(out)
}

/// The contents of every `#if TypeCheck … #endif` block, whitespace-normalised.
fn typecheck_blocks(chunk: &[&str]) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in chunk {
        let t = line.trim();
        if t.starts_with("#if") && t.contains("TypeCheck") {
            current = Some(Vec::new());
        } else if t.starts_with("#endif") {
            if let Some(lines) = current.take() {
                blocks.push(normalize_ws(&lines.join(" ")));
            }
        } else if let Some(lines) = current.as_mut() {
            lines.push(t);
        }
    }
    blocks
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The condition of the first `if (…)` in `block`, without `mig_unlikely`.
fn if_condition(block: &str) -> Option<String> {
    let start = block.find("if (")? + "if ".len();
    let inner = matching_paren(block, start)?;
    let inner = inner.trim();
    let inner = match inner.strip_prefix("mig_unlikely") {
        Some(rest) => {
            let rest = rest.trim_start();
            matching_paren(rest, 0)?.trim()
        }
        None => inner,
    };
    Some(inner.to_string())
}

/// The text inside the parenthesis opening at byte `open` of `s`.
fn matching_paren(s: &str, open: usize) -> Option<&str> {
    if s.as_bytes().get(open) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at `sep` outside parentheses.
fn split_top<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0 && s[i..].starts_with(sep) => {
                parts.push(s[last..i].trim());
                i += sep.len();
                last = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(s[last..].trim());
    parts
}

/// Removes one pair of parentheses enclosing all of `s`.
fn strip_parens(s: &str) -> &str {
    let s = s.trim();
    if s.starts_with('(') && matching_paren(s, 0).map(str::len) == Some(s.len() - 2) {
        s[1..s.len() - 1].trim()
    } else {
        s
    }
}

fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let at = text.find(prefix)? + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn parse_size_check(cond: &str) -> Result<SizeCheck> {
    let exact = cond.find("msgh_size != ");
    let min = cond.find("msgh_size < ");
    let check = match (exact, min) {
        (Some(e), Some(m)) if m < e => number_after(cond, "msgh_size < ").map(SizeCheck::Min),
        (Some(_), _) => number_after(cond, "msgh_size != ").map(SizeCheck::Exact),
        (None, Some(_)) => number_after(cond, "msgh_size < ").map(SizeCheck::Min),
        (None, None) => None,
    };
    check.ok_or_else(|| OracleError::new(format!("cannot parse size check {cond:?}")))
}

/// The complex-bit expectation of a receiver's first check (see the module docs of
/// `layout.rs` for the three shapes GNU MIG emits).
fn receiver_complex(cond: &str) -> ComplexBit {
    if cond.contains("!(In0P->Head.msgh_bits & MACH_MSGH_BITS_COMPLEX)") {
        ComplexBit::Set
    } else if cond.contains("Head.msgh_bits & MACH_MSGH_BITS_COMPLEX") {
        ComplexBit::Clear
    } else if cond.contains("|| msgh_simple)") {
        ComplexBit::Set
    } else {
        ComplexBit::Dynamic
    }
}

fn parse_quick_checks(block: &str) -> Result<Vec<RawCheck>> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(at) = rest.find("BAD_TYPECHECK") {
        rest = &rest[at + "BAD_TYPECHECK".len()..];
        let open = rest.find('(').unwrap_or(0);
        let args = matching_paren(rest, open)
            .ok_or_else(|| OracleError::new(format!("bad BAD_TYPECHECK in {block:?}")))?;
        let parts = split_top(args, ",");
        let field = parts
            .first()
            .and_then(|p| p.split("->").nth(1))
            .map(str::trim);
        let var = parts
            .get(1)
            .map(|p| p.trim().trim_start_matches('&').trim());
        match (field, var) {
            (Some(field), Some(var)) if parts.len() == 2 => out.push(RawCheck::Quick {
                field: field.to_string(),
                var: var.to_string(),
            }),
            _ => {
                return Err(OracleError::new(format!(
                    "bad BAD_TYPECHECK arguments {args:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// `P->FIELD.MEMBER` → (FIELD, MEMBER).
fn split_access(s: &str) -> Option<(&str, &str)> {
    let after = s.trim().split_once("->")?.1;
    let (field, member) = after.split_once('.')?;
    Some((field.trim(), member.trim()))
}

fn attr_of(member: &str) -> Option<DescAttr> {
    let last = member.rsplit('.').next()?;
    Some(match last {
        "msgt_name" | "msgtl_name" => DescAttr::Name,
        "msgt_size" | "msgtl_size" => DescAttr::Size,
        "msgt_number" | "msgtl_number" => DescAttr::Number,
        "msgt_inline" => DescAttr::Inline,
        "msgt_longform" => DescAttr::Longform,
        "msgt_deallocate" => DescAttr::Deallocate,
        "msgt_unused" => DescAttr::Unused,
        _ => return None,
    })
}

fn parse_field_check(cond: &str) -> Result<RawCheck> {
    let bad = |what: &str| OracleError::new(format!("cannot parse {what} in check {cond:?}"));
    let mut field_name: Option<String> = None;
    let mut long = false;
    let mut items = Vec::new();
    for clause in split_top(cond, "||") {
        let clause = strip_parens(clause);
        if let Some(rest) = clause.strip_prefix("MACH_MSG_TYPE_PORT_ANY") {
            let inner = matching_paren(rest.trim_start(), 0).ok_or_else(|| bad("PORT_ANY"))?;
            let (field, member) = split_access(inner).ok_or_else(|| bad("PORT_ANY field"))?;
            field_name.get_or_insert_with(|| field.to_string());
            items.push(RawItem::NotPortWhenSimple {
                member: member.to_string(),
            });
            continue;
        }
        let conj = split_top(clause, "&&");
        let (lhs, rhs) = conj[0].split_once("!=").ok_or_else(|| bad("comparison"))?;
        let (field, member) = split_access(lhs).ok_or_else(|| bad("field access"))?;
        let attr = attr_of(member).ok_or_else(|| bad("descriptor member"))?;
        long |= member.contains("msgtl_");
        field_name.get_or_insert_with(|| field.to_string());
        let when_inline = match conj.get(1) {
            Some(c) => {
                let (l, r) = c.split_once("==").ok_or_else(|| bad("inline condition"))?;
                if !l.contains("msgt_inline") {
                    return Err(bad("inline condition"));
                }
                Some(r.trim().to_string())
            }
            None => None,
        };
        items.push(RawItem::Compare {
            member: member.to_string(),
            attr,
            expr: rhs.trim().to_string(),
            when_inline,
        });
    }
    Ok(RawCheck::Fields {
        field: field_name.ok_or_else(|| bad("field"))?,
        long,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members() {
        let f = parse_decl("mach_msg_type_t dataType;").expect("decl");
        assert_eq!(
            (f.c_type.as_str(), f.name.as_str()),
            ("mach_msg_type_t", "dataType")
        );
        let f = parse_decl("char RetCodePad[4];").expect("decl");
        assert_eq!(f.array_len, Some(4));
        let f = parse_decl("const char *dataP;").expect("decl");
        assert_eq!(
            (f.c_type.as_str(), f.name.as_str()),
            ("const char *", "dataP")
        );
        let f = parse_decl("unsigned int x;").expect("decl");
        assert_eq!(f.c_type, "unsigned int");
        assert!(parse_decl("garbage").is_err());
    }

    #[test]
    fn parses_checks() {
        let cond = "(In0P->dataType.msgt_inline != TRUE) || (In0P->dataType.msgt_longform != FALSE) || \
                    (MACH_MSG_TYPE_PORT_ANY(In0P->dataType.msgt_name) && msgh_simple) || \
                    (In0P->dataType.msgtl_size != 64 && In0P->dataType.msgtl_header.msgt_inline == TRUE)";
        let RawCheck::Fields { field, long, items } = parse_field_check(cond).expect("check")
        else {
            panic!("not a field check")
        };
        assert_eq!(field, "dataType");
        assert!(long);
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[2], RawItem::NotPortWhenSimple { .. }));
        assert!(matches!(
            &items[3],
            RawItem::Compare { attr: DescAttr::Size, when_inline: Some(w), .. } if w == "TRUE"
        ));
    }

    #[test]
    fn parses_size_checks() {
        let block = "msgh_size = In0P->Head.msgh_size; if (mig_unlikely ((msgh_size < 72) || \
                     (In0P->Head.msgh_bits & MACH_MSGH_BITS_COMPLEX))) { OutP->RetCode = MIG_BAD_ARGUMENTS; return; }";
        let cond = if_condition(block).expect("condition");
        assert_eq!(parse_size_check(&cond), Ok(SizeCheck::Min(72)));
        assert_eq!(receiver_complex(&cond), ComplexBit::Clear);
        let user = "if (mig_unlikely (((msgh_size != 64) || msgh_simple) && \
                    ((msgh_size != sizeof(mig_reply_header_t)) || !msgh_simple || \
                    (OutP->RetCode == KERN_SUCCESS)))) return MIG_TYPE_ERROR;";
        let cond = if_condition(user).expect("condition");
        assert_eq!(parse_size_check(&cond), Ok(SizeCheck::Exact(64)));
        assert_eq!(receiver_complex(&cond), ComplexBit::Set);
    }

    #[test]
    fn splits_routines() {
        let text = "#include <a.h>\n/* Routine foo */\nx\n/* SimpleRoutine bar */\ny\n\
                    mig_routine_t t[] = {};\n";
        let f = parse_file(text, Side::Server).expect("file");
        assert_eq!(f.includes, vec!["#include <a.h>".to_string()]);
        assert_eq!(f.routines.len(), 2);
        assert!(f.routines[1].simple);
    }
}
