//! `#if` / `#elif` integer constant expressions, evaluated as C does on `intmax_t` /
//! `uintmax_t` (64 bits).
//!
//! The engine hands over the directive's tokens after macro expansion, with every
//! `defined X` already replaced by `1` or `0`. Errors in branches that are not evaluated
//! (the right side of `0 && …`, the untaken side of `?:`) are syntax errors only: division
//! by zero there is fine, as in GCC.

use super::token::Kind;
use crate::diagnostics::Diagnostic;
use crate::source::Loc;

/// Parentheses, unary operators and `?:` nested deeper than this are an error.
pub(super) const MAX_DEPTH: u32 = 256;

/// One token of an expression.
#[derive(Clone, Copy, Debug)]
pub(super) struct ETok<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Val {
    v: u64,
    uns: bool,
}

impl Val {
    fn signed(v: i64) -> Val {
        Val {
            v: v as u64,
            uns: false,
        }
    }
    fn bool(b: bool) -> Val {
        Val::signed(b as i64)
    }
    fn truth(self) -> bool {
        self.v != 0
    }
}

struct Parser<'a, 'b> {
    toks: &'b [ETok<'a>],
    pos: usize,
    depth: u32,
    end: Loc,
    warnings: Vec<Diagnostic>,
}

type R<T> = Result<T, Box<Diagnostic>>;

fn err(d: Diagnostic) -> Box<Diagnostic> {
    Box::new(d)
}

/// Evaluates an expression. `end` locates "end of expression" errors. Returns the value (or
/// the first error) and any warnings.
pub(super) fn evaluate(toks: &[ETok<'_>], end: Loc) -> (Result<bool, Diagnostic>, Vec<Diagnostic>) {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        end,
        warnings: Vec::new(),
    };
    let r = p.top().map_err(|e| *e);
    (r, p.warnings)
}

fn quoted(t: &ETok<'_>) -> String {
    format!("\"{}\"", t.text)
}

impl<'a, 'b> Parser<'a, 'b> {
    fn peek(&self) -> Option<&'b ETok<'a>> {
        self.toks.get(self.pos)
    }

    fn peek_punct(&self) -> Option<&'a str> {
        self.peek()
            .filter(|t| t.kind == Kind::Punct)
            .map(|t| t.text)
    }

    fn err_at(&self, msg: impl Into<String>) -> Box<Diagnostic> {
        let loc = self.peek().map(|t| t.loc).unwrap_or(self.end);
        err(Diagnostic::error(msg).at(loc))
    }

    fn top(&mut self) -> R<bool> {
        if self.toks.is_empty() {
            return Err(err(Diagnostic::error("#if with no expression").at(self.end)));
        }
        let v = self.comma(true)?;
        if let Some(t) = self.peek() {
            let msg = match (t.kind, t.text) {
                (Kind::Punct, ")") => "missing '(' in expression".to_string(),
                (Kind::Punct, ":") => "':' without preceding '?'".to_string(),
                (Kind::Number | Kind::Ident | Kind::Char, _) | (Kind::Punct, "(") => {
                    format!("missing binary operator before token {}", quoted(t))
                }
                _ => format!(
                    "token {} is not valid in preprocessor expressions",
                    quoted(t)
                ),
            };
            return Err(self.err_at(msg));
        }
        Ok(v.truth())
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(format!(
                "#if expression nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        Ok(())
    }

    fn comma(&mut self, ev: bool) -> R<Val> {
        let mut v = self.ternary(ev)?;
        while self.peek_punct() == Some(",") {
            self.pos += 1;
            v = self.ternary(ev)?;
        }
        Ok(v)
    }

    fn ternary(&mut self, ev: bool) -> R<Val> {
        let c = self.binary(0, ev)?;
        if self.peek_punct() != Some("?") {
            return Ok(c);
        }
        self.pos += 1;
        self.enter()?;
        let t = self.comma(ev && c.truth())?;
        if self.peek_punct() != Some(":") {
            return Err(self.err_at("'?' without following ':'"));
        }
        self.pos += 1;
        let f = self.ternary(ev && !c.truth())?;
        self.depth -= 1;
        let uns = t.uns || f.uns;
        let v = if c.truth() { t.v } else { f.v };
        Ok(Val { v, uns })
    }

    fn binop(&self) -> Option<(&'a str, u8)> {
        let op = self.peek_punct()?;
        let prec = match op {
            "||" => 1,
            "&&" => 2,
            "|" => 3,
            "^" => 4,
            "&" => 5,
            "==" | "!=" => 6,
            "<" | ">" | "<=" | ">=" => 7,
            "<<" | ">>" => 8,
            "+" | "-" => 9,
            "*" | "/" | "%" => 10,
            _ => return None,
        };
        Some((op, prec))
    }

    fn binary(&mut self, min: u8, ev: bool) -> R<Val> {
        let mut lhs = self.unary(ev)?;
        while let Some((op, prec)) = self.binop() {
            if prec < min {
                break;
            }
            let op_loc = self.peek().map(|t| t.loc).unwrap_or(self.end);
            self.pos += 1;
            if self.peek().is_none() {
                return Err(err(Diagnostic::error(format!(
                    "operator '{op}' has no right operand"
                ))
                .at(op_loc)));
            }
            let rhs_ev = match op {
                "&&" => ev && lhs.truth(),
                "||" => ev && !lhs.truth(),
                _ => ev,
            };
            let rhs = self.binary(prec + 1, rhs_ev)?;
            lhs = self.apply(op, lhs, rhs, ev, op_loc)?;
        }
        Ok(lhs)
    }

    fn overflow(&mut self, ev: bool, loc: Loc) {
        if ev {
            self.warnings
                .push(Diagnostic::warning("integer overflow in preprocessor expression").at(loc));
        }
    }

    fn apply(&mut self, op: &str, a: Val, b: Val, ev: bool, loc: Loc) -> R<Val> {
        let uns = a.uns || b.uns;
        let (x, y) = (a.v as i64, b.v as i64);
        Ok(match op {
            "&&" => Val::bool(a.truth() && b.truth()),
            "||" => Val::bool(a.truth() || b.truth()),
            "|" => Val { v: a.v | b.v, uns },
            "^" => Val { v: a.v ^ b.v, uns },
            "&" => Val { v: a.v & b.v, uns },
            "==" => Val::bool(a.v == b.v),
            "!=" => Val::bool(a.v != b.v),
            "<" | ">" | "<=" | ">=" => {
                let ord = if uns { a.v.cmp(&b.v) } else { x.cmp(&y) };
                Val::bool(match op {
                    "<" => ord.is_lt(),
                    ">" => ord.is_gt(),
                    "<=" => ord.is_le(),
                    _ => ord.is_ge(),
                })
            }
            "<<" | ">>" => {
                // The result has the left operand's type; a negative count shifts the
                // other way (as GCC does).
                let (left, n) = if !b.uns && y < 0 {
                    (op == ">>", y.unsigned_abs())
                } else {
                    (op == "<<", b.v)
                };
                let v = if left {
                    if n >= 64 {
                        if a.v != 0 && !a.uns {
                            self.overflow(ev, loc);
                        }
                        0
                    } else {
                        let r = a.v << n;
                        if !a.uns && ((r as i64) >> n) != x {
                            self.overflow(ev, loc);
                        }
                        r
                    }
                } else if a.uns {
                    if n >= 64 {
                        0
                    } else {
                        a.v >> n
                    }
                } else if n >= 64 {
                    if x < 0 {
                        u64::MAX
                    } else {
                        0
                    }
                } else {
                    (x >> n) as u64
                };
                Val { v, uns: a.uns }
            }
            "+" => {
                if !uns && x.checked_add(y).is_none() {
                    self.overflow(ev, loc);
                }
                Val {
                    v: a.v.wrapping_add(b.v),
                    uns,
                }
            }
            "-" => {
                if !uns && x.checked_sub(y).is_none() {
                    self.overflow(ev, loc);
                }
                Val {
                    v: a.v.wrapping_sub(b.v),
                    uns,
                }
            }
            "*" => {
                if !uns && x.checked_mul(y).is_none() {
                    self.overflow(ev, loc);
                }
                Val {
                    v: a.v.wrapping_mul(b.v),
                    uns,
                }
            }
            "/" | "%" => {
                if b.v == 0 {
                    if ev {
                        return Err(err(Diagnostic::error("division by zero in #if").at(loc)));
                    }
                    return Ok(Val { v: 0, uns });
                }
                let v = if uns {
                    if op == "/" {
                        a.v / b.v
                    } else {
                        a.v % b.v
                    }
                } else {
                    if x == i64::MIN && y == -1 && op == "/" {
                        self.overflow(ev, loc);
                    }
                    (if op == "/" {
                        x.wrapping_div(y)
                    } else {
                        x.wrapping_rem(y)
                    }) as u64
                };
                Val { v, uns }
            }
            _ => Val::signed(0),
        })
    }

    fn unary(&mut self, ev: bool) -> R<Val> {
        let Some(t) = self.peek() else {
            return Err(err(
                Diagnostic::error("#if expression ends unexpectedly").at(self.end)
            ));
        };
        match (t.kind, t.text) {
            (Kind::Punct, op @ ("+" | "-" | "~" | "!")) => {
                self.pos += 1;
                self.enter()?;
                if self.peek().is_none() {
                    return Err(err(Diagnostic::error(format!(
                        "operator '{op}' has no right operand"
                    ))
                    .at(t.loc)));
                }
                let v = self.unary(ev)?;
                self.depth -= 1;
                Ok(match op {
                    "+" => v,
                    "-" => {
                        if !v.uns && v.v == i64::MIN as u64 {
                            self.overflow(ev, t.loc);
                        }
                        Val {
                            v: v.v.wrapping_neg(),
                            uns: v.uns,
                        }
                    }
                    "~" => Val {
                        v: !v.v,
                        uns: v.uns,
                    },
                    _ => Val::bool(!v.truth()),
                })
            }
            (Kind::Punct, "(") => {
                self.pos += 1;
                self.enter()?;
                if self.peek_punct() == Some(")") {
                    return Err(self.err_at("missing expression between '(' and ')'"));
                }
                let v = self.comma(ev)?;
                if self.peek_punct() != Some(")") {
                    return Err(match self.peek() {
                        Some(_) => self.err_at(format!(
                            "missing ')' in expression before token {}",
                            self.peek().map(quoted).unwrap_or_default()
                        )),
                        None => err(Diagnostic::error("missing ')' in expression").at(t.loc)),
                    });
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(v)
            }
            (Kind::Number, text) => {
                self.pos += 1;
                let loc = t.loc;
                parse_number(text, loc, &mut self.warnings)
            }
            (Kind::Char, text) => {
                self.pos += 1;
                parse_char(text, t.loc, &mut self.warnings)
            }
            // Identifiers that are not macros (C has no `true`/`false` in #if).
            (Kind::Ident, _) => {
                self.pos += 1;
                Ok(Val::signed(0))
            }
            (Kind::Punct, ")") => Err(self.err_at("missing '(' in expression")),
            _ => Err(self.err_at(format!(
                "token {} is not valid in preprocessor expressions",
                quoted(t)
            ))),
        }
    }
}

/// Parses an integer constant of an `#if` expression.
fn parse_number(text: &str, loc: Loc, warnings: &mut Vec<Diagnostic>) -> R<Val> {
    let lower = text.to_ascii_lowercase();
    let (radix, digits_start) = if lower.starts_with("0x") {
        (16, 2)
    } else if lower.starts_with("0b") {
        (2, 2)
    } else if lower.starts_with('0') {
        (8, 0)
    } else {
        (10, 0)
    };
    let body = &lower[digits_start..];
    let is_float = text.contains('.')
        || (radix == 10 && body.contains('e'))
        || (radix == 16 && body.contains('p'));
    if is_float {
        return Err(err(Diagnostic::error(
            "floating constant in preprocessor expression",
        )
        .at(loc)));
    }
    let ndigits = body
        .bytes()
        .take_while(|b| match radix {
            16 => b.is_ascii_hexdigit(),
            2 => b.is_ascii_digit(),
            _ => b.is_ascii_digit(),
        })
        .count();
    let (digits, suffix) = body.split_at(ndigits);
    let suffix_orig = &text[text.len() - suffix.len()..];
    let (uns, ok) = match suffix {
        "" => (false, true),
        "u" => (true, true),
        "l" | "ll" => (false, true),
        "ul" | "lu" | "ull" | "llu" => (true, true),
        _ => (false, false),
    };
    // `lL` and `Ll` are not valid suffixes.
    let mixed_l = suffix_orig.contains("lL") || suffix_orig.contains("Ll");
    if !ok || mixed_l || (radix == 16 && digits.is_empty()) {
        let s = if digits.is_empty() && radix == 16 {
            &text[1..]
        } else {
            suffix_orig
        };
        return Err(err(Diagnostic::error(format!(
            "invalid suffix \"{s}\" on integer constant"
        ))
        .at(loc)));
    }
    if radix == 2 && digits.is_empty() {
        return Err(err(Diagnostic::error(format!(
            "invalid suffix \"{}\" on integer constant",
            &text[1..]
        ))
        .at(loc)));
    }
    let mut v: u64 = 0;
    let mut too_large = false;
    for c in digits.chars() {
        let d = c.to_digit(16).unwrap_or(0) as u64;
        if d >= radix {
            return Err(err(Diagnostic::error(format!(
                "invalid digit \"{c}\" in {} constant",
                if radix == 8 { "octal" } else { "binary" }
            ))
            .at(loc)));
        }
        match v.checked_mul(radix).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => {
                too_large = true;
                v = v.wrapping_mul(radix).wrapping_add(d);
            }
        }
    }
    if too_large {
        warnings.push(Diagnostic::warning("integer constant is too large for its type").at(loc));
    }
    let mut uns = uns;
    if !uns && v > i64::MAX as u64 {
        if radix == 10 && !too_large {
            warnings.push(
                Diagnostic::warning("integer constant is so large that it is unsigned").at(loc),
            );
        }
        uns = true;
    }
    Ok(Val { v, uns })
}

/// Evaluates a character constant (`'a'`, `'\n'`, `L'x'`, `u'x'`, `U'x'`, `u8'x'`).
fn parse_char(text: &str, loc: Loc, warnings: &mut Vec<Diagnostic>) -> R<Val> {
    let q = text.find('\'').unwrap_or(0);
    let prefix = &text[..q];
    let inner = text.get(q + 1..text.len().saturating_sub(1)).unwrap_or("");
    // (width in bits, signed)
    let (width, signed): (u32, bool) = match prefix {
        "L" => (32, true),
        "u" => (16, false),
        "U" => (32, false),
        "u8" => (8, false),
        _ => (8, true),
    };
    let mask: u64 = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut units: Vec<u64> = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if width == 8 {
                let mut buf = [0u8; 4];
                units.extend(c.encode_utf8(&mut buf).bytes().map(u64::from));
            } else {
                units.push(c as u64);
            }
            continue;
        }
        let Some(e) = chars.next() else { break };
        let v = match e {
            'n' => 10,
            't' => 9,
            'r' => 13,
            'a' => 7,
            'b' => 8,
            'f' => 12,
            'v' => 11,
            'e' | 'E' => 27,
            '\\' | '\'' | '"' | '?' => e as u64,
            'x' => {
                let mut v: u64 = 0;
                let mut n = 0;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(16)) {
                    chars.next();
                    v = v.wrapping_shl(4) | d as u64;
                    n += 1;
                }
                if n == 0 {
                    return Err(err(Diagnostic::error(
                        "\\x used with no following hex digits",
                    )
                    .at(loc)));
                }
                if v & !mask != 0 || n > 16 {
                    warnings.push(Diagnostic::warning("hex escape sequence out of range").at(loc));
                }
                v
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0) as u64;
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            chars.next();
                            v = v * 8 + d as u64;
                        }
                        None => break,
                    }
                }
                if v & !mask != 0 {
                    warnings
                        .push(Diagnostic::warning("octal escape sequence out of range").at(loc));
                }
                v
            }
            other => {
                warnings.push(
                    Diagnostic::warning(format!("unknown escape sequence: '\\{other}'")).at(loc),
                );
                other as u64
            }
        };
        units.push(v & mask);
    }
    if units.is_empty() {
        return Err(err(Diagnostic::error("empty character constant").at(loc)));
    }
    let sext = |v: u64, bits: u32| -> u64 {
        if bits >= 64 {
            v
        } else {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift) as u64
        }
    };
    if units.len() == 1 {
        let v = units[0] & mask;
        return Ok(if signed {
            Val::signed(sext(v, width) as i64)
        } else {
            Val { v, uns: false }
        });
    }
    if width == 8 && prefix.is_empty() {
        // Multi-character constant: an int built from the bytes, as GCC does.
        if units.len() > 4 {
            warnings.push(Diagnostic::warning("character constant too long for its type").at(loc));
        } else {
            warnings.push(Diagnostic::warning("multi-character character constant").at(loc));
        }
        let mut v: u64 = 0;
        for u in &units {
            v = (v << 8) | (u & 0xff);
        }
        return Ok(Val::signed(sext(v & 0xffff_ffff, 32) as i64));
    }
    warnings.push(Diagnostic::warning("character constant too long for its type").at(loc));
    let v = units.last().copied().unwrap_or(0) & mask;
    Ok(if signed {
        Val::signed(sext(v, width) as i64)
    } else {
        Val { v, uns: false }
    })
}
