//! The MIG lexer: preprocessed text to tokens, with GNU MIG's lexical rules.
//!
//! * Keywords are case-insensitive and reserved; `MACH_MSG_TYPE_*` names are exact.
//! * Numbers are decimal only (`0x20` lexes as `0` then `x20`, a syntax error later).
//! * Whitespace is blank, tab and newline (carriage return, form feed and vertical tab are
//!   accepted too; GNU MIG would reject them).
//! * A `#` at the start of a line is a preprocessor line marker (`# 12 "file"`), a
//!   `#define` GCC may emit (skipped), or the error "illegal # directive".
//! * One-token modes, entered when a statement starts with `msgoption`/`waittime` (a
//!   "string" of `[-/._$A-Za-z0-9]`), `import`/`uimport`/`simport` (a file name `"…"` or
//!   `<…>`), or `rcsid` (a quoted string). GNU MIG's parser switches its lexer when it sees
//!   those keywords at the start of a statement; we decide the same thing from the token
//!   history: the previous token was `;` (or none) outside parentheses and braces.
//!
//! Every token carries its [`Loc`] in the original source (through the preprocessor's
//! source map).

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::preprocess::token::FxMap;
use crate::source::{Loc, Preprocessed, SourceFile, SourceMap};
use nom::bytes::complete::{take_while, take_while1};
use nom::IResult;
use nom::Parser as _;
use std::fmt;
use std::rc::Rc;

/// Reserved words (case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kw {
    Routine,
    SimpleRoutine,
    Subsystem,
    MsgOption,
    MsgSeqno,
    WaitTime,
    NoWaitTime,
    In,
    Out,
    InOut,
    RequestPort,
    ReplyPort,
    UReplyPort,
    SReplyPort,
    Array,
    Of,
    ServerPrefix,
    UserPrefix,
    ServerDemux,
    RcsId,
    Import,
    UImport,
    SImport,
    Type,
    KernelServer,
    KernelUser,
    Skip,
    Struct,
    InTran,
    InTranPayload,
    OutTran,
    Destructor,
    CType,
    CUserType,
    CServerType,
    CString,
}

/// The keywords' spellings (for messages); the lexer recognizes them with `reserved`, which
/// must list the same words (a test checks).
const KEYWORDS: &[(&str, Kw)] = &[
    ("routine", Kw::Routine),
    ("simpleroutine", Kw::SimpleRoutine),
    ("subsystem", Kw::Subsystem),
    ("msgoption", Kw::MsgOption),
    ("msgseqno", Kw::MsgSeqno),
    ("waittime", Kw::WaitTime),
    ("nowaittime", Kw::NoWaitTime),
    ("in", Kw::In),
    ("out", Kw::Out),
    ("inout", Kw::InOut),
    ("requestport", Kw::RequestPort),
    ("replyport", Kw::ReplyPort),
    ("ureplyport", Kw::UReplyPort),
    ("sreplyport", Kw::SReplyPort),
    ("array", Kw::Array),
    ("of", Kw::Of),
    ("serverprefix", Kw::ServerPrefix),
    ("userprefix", Kw::UserPrefix),
    ("serverdemux", Kw::ServerDemux),
    ("rcsid", Kw::RcsId),
    ("import", Kw::Import),
    ("uimport", Kw::UImport),
    ("simport", Kw::SImport),
    ("type", Kw::Type),
    ("kernelserver", Kw::KernelServer),
    ("kerneluser", Kw::KernelUser),
    ("skip", Kw::Skip),
    ("struct", Kw::Struct),
    ("intran", Kw::InTran),
    ("intranpayload", Kw::InTranPayload),
    ("outtran", Kw::OutTran),
    ("destructor", Kw::Destructor),
    ("ctype", Kw::CType),
    ("cusertype", Kw::CUserType),
    ("cservertype", Kw::CServerType),
    ("c_string", Kw::CString),
];

impl Kw {
    /// The keyword's canonical spelling.
    pub fn as_str(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(s, _)| *s)
            .unwrap_or("?")
    }
}

/// IPC flags (`, dealloc` etc.), also reserved words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlagKw {
    IsLong,
    IsNotLong,
    Dealloc,
    NotDealloc,
    ServerCopy,
    CountInOut,
    /// `retcode`: accepted, means nothing.
    RetCode,
}

/// The flags' spellings (for messages); recognized by `reserved`, like [`KEYWORDS`].
const FLAGS: &[(&str, FlagKw)] = &[
    ("islong", FlagKw::IsLong),
    ("isnotlong", FlagKw::IsNotLong),
    ("dealloc", FlagKw::Dealloc),
    ("notdealloc", FlagKw::NotDealloc),
    ("servercopy", FlagKw::ServerCopy),
    ("countinout", FlagKw::CountInOut),
    ("retcode", FlagKw::RetCode),
];

/// Which default size a symbolic type has (resolved per target in `check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefaultSize {
    Bits(u32),
    /// `port_size_in_bits`: 32 on i386, 64 on x86_64.
    PortSize,
    /// `port_name_size_in_bits`: 32.
    PortNameSize,
}

/// A symbolic IPC type name (`MACH_MSG_TYPE_*` or the `polymorphic` keyword).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymType {
    pub spelling: &'static str,
    pub in_name: u32,
    pub out_name: u32,
    pub default_size: DefaultSize,
}

const POLY: u32 = u32::MAX;

macro_rules! sym {
    ($s:literal, $i:expr, $o:expr, $d:expr) => {
        SymType {
            spelling: $s,
            in_name: $i,
            out_name: $o,
            default_size: $d,
        }
    };
}

/// The `polymorphic` keyword.
pub const POLYMORPHIC_KW: SymType = sym!("polymorphic", POLY, POLY, DefaultSize::PortSize);

const SYMBOLIC: &[SymType] = &[
    sym!("MACH_MSG_TYPE_UNSTRUCTURED", 0, 0, DefaultSize::Bits(0)),
    sym!("MACH_MSG_TYPE_BIT", 0, 0, DefaultSize::Bits(1)),
    sym!("MACH_MSG_TYPE_BOOLEAN", 0, 0, DefaultSize::Bits(32)),
    sym!("MACH_MSG_TYPE_INTEGER_16", 1, 1, DefaultSize::Bits(16)),
    sym!("MACH_MSG_TYPE_INTEGER_32", 2, 2, DefaultSize::Bits(32)),
    sym!("MACH_MSG_TYPE_INTEGER_64", 11, 11, DefaultSize::Bits(64)),
    sym!("MACH_MSG_TYPE_CHAR", 8, 8, DefaultSize::Bits(8)),
    sym!("MACH_MSG_TYPE_BYTE", 9, 9, DefaultSize::Bits(8)),
    sym!("MACH_MSG_TYPE_INTEGER_8", 9, 9, DefaultSize::Bits(8)),
    sym!("MACH_MSG_TYPE_REAL", 10, 10, DefaultSize::Bits(0)),
    sym!("MACH_MSG_TYPE_STRING", 12, 12, DefaultSize::Bits(0)),
    sym!("MACH_MSG_TYPE_STRING_C", 12, 12, DefaultSize::Bits(0)),
    sym!("MACH_MSG_TYPE_MOVE_RECEIVE", 16, 16, DefaultSize::PortSize),
    sym!("MACH_MSG_TYPE_COPY_SEND", 19, 17, DefaultSize::PortSize),
    sym!("MACH_MSG_TYPE_MAKE_SEND", 20, 17, DefaultSize::PortSize),
    sym!("MACH_MSG_TYPE_MOVE_SEND", 17, 17, DefaultSize::PortSize),
    sym!(
        "MACH_MSG_TYPE_MAKE_SEND_ONCE",
        21,
        18,
        DefaultSize::PortSize
    ),
    sym!(
        "MACH_MSG_TYPE_MOVE_SEND_ONCE",
        18,
        18,
        DefaultSize::PortSize
    ),
    sym!("MACH_MSG_TYPE_PORT_NAME", 15, 15, DefaultSize::PortNameSize),
    sym!(
        "MACH_MSG_TYPE_PORT_RECEIVE",
        POLY,
        16,
        DefaultSize::PortSize
    ),
    sym!("MACH_MSG_TYPE_PORT_SEND", POLY, 17, DefaultSize::PortSize),
    sym!(
        "MACH_MSG_TYPE_PORT_SEND_ONCE",
        POLY,
        18,
        DefaultSize::PortSize
    ),
    sym!(
        "MACH_MSG_TYPE_POLYMORPHIC",
        POLY,
        POLY,
        DefaultSize::Bits(0)
    ),
];

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokKind {
    /// An identifier (shared by every token with that spelling, and by the syntax tree).
    Ident(Rc<str>),
    Kw(Kw),
    Flag(FlagKw),
    Sym(SymType),
    Number(u32),
    /// The one token after a statement-initial `msgoption`/`waittime`.
    Str(String),
    /// The one token after `import`/`uimport`/`simport`: `"…"` or `<…>`, verbatim.
    FileName(String),
    /// The one token after `rcsid`: `"…"`, verbatim.
    QString(String),
    /// One of `: ; , + - * / ( ) = ^ ~ < > [ ] { } |`.
    Punct(char),
    /// Anything else (GNU MIG's error token).
    Error(char),
}

impl fmt::Display for TokKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokKind::Ident(s) => write!(f, "identifier `{s}`"),
            TokKind::Kw(k) => write!(f, "keyword `{}`", k.as_str()),
            TokKind::Flag(k) => write!(f, "IPC flag `{}`", flag_str(*k)),
            TokKind::Sym(s) => write!(f, "`{}`", s.spelling),
            TokKind::Number(n) => write!(f, "number `{n}`"),
            TokKind::Str(s) => write!(f, "`{s}`"),
            TokKind::FileName(s) => write!(f, "file name {s}"),
            TokKind::QString(s) => write!(f, "string {s}"),
            TokKind::Punct(c) => write!(f, "`{c}`"),
            TokKind::Error(c) => write!(f, "character {c:?}"),
        }
    }
}

fn flag_str(k: FlagKw) -> &'static str {
    FLAGS
        .iter()
        .find(|(_, f)| *f == k)
        .map(|(s, _)| *s)
        .unwrap_or("?")
}

/// A token with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokKind,
    pub loc: Loc,
    /// Byte range in the preprocessed text.
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Str,
    FileName,
    QString,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.' | '_' | '$')
}
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

fn quoted(i: &str, open: char, close: char) -> IResult<&str, &str> {
    let start = i;
    let (i, _) = nom::character::complete::char(open).parse(i)?;
    let (i, _) = take_while(|c: char| c != close && c != '\n').parse(i)?;
    let (i, _) = nom::character::complete::char(close).parse(i)?;
    Ok((i, &start[..start.len() - i.len()]))
}

/// Classifies an identifier-shaped word.
#[cfg(test)]
fn classify(word: &str) -> TokKind {
    classify_or(word, || Rc::from(word))
}

/// Classifies an identifier-shaped word, taking an identifier's shared string from `ident`
/// (called for identifiers only).
fn classify_or(word: &str, ident: impl FnOnce() -> Rc<str>) -> TokKind {
    if word.starts_with("MACH_MSG_TYPE_") {
        if let Some(s) = SYMBOLIC.iter().find(|s| s.spelling == word) {
            return TokKind::Sym(*s);
        }
    }
    // Reserved words are short ASCII: lower-case the word into a buffer, if it fits.
    const LONGEST: usize = 16;
    if word.len() <= LONGEST {
        let mut buf = [0u8; LONGEST];
        let lower = &mut buf[..word.len()];
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        if let Some(k) = reserved(lower) {
            return k;
        }
    }
    TokKind::Ident(ident())
}

/// The reserved word spelled `lower` (lower case): [`KEYWORDS`], [`FLAGS`] and
/// `polymorphic`, as a `match` (a jump on the length, then a comparison or two) rather than
/// a search of the tables, since every identifier of a file comes through here.
fn reserved(lower: &[u8]) -> Option<TokKind> {
    use TokKind::{Flag, Kw as K};
    Some(match lower {
        b"routine" => K(Kw::Routine),
        b"simpleroutine" => K(Kw::SimpleRoutine),
        b"subsystem" => K(Kw::Subsystem),
        b"msgoption" => K(Kw::MsgOption),
        b"msgseqno" => K(Kw::MsgSeqno),
        b"waittime" => K(Kw::WaitTime),
        b"nowaittime" => K(Kw::NoWaitTime),
        b"in" => K(Kw::In),
        b"out" => K(Kw::Out),
        b"inout" => K(Kw::InOut),
        b"requestport" => K(Kw::RequestPort),
        b"replyport" => K(Kw::ReplyPort),
        b"ureplyport" => K(Kw::UReplyPort),
        b"sreplyport" => K(Kw::SReplyPort),
        b"array" => K(Kw::Array),
        b"of" => K(Kw::Of),
        b"serverprefix" => K(Kw::ServerPrefix),
        b"userprefix" => K(Kw::UserPrefix),
        b"serverdemux" => K(Kw::ServerDemux),
        b"rcsid" => K(Kw::RcsId),
        b"import" => K(Kw::Import),
        b"uimport" => K(Kw::UImport),
        b"simport" => K(Kw::SImport),
        b"type" => K(Kw::Type),
        b"kernelserver" => K(Kw::KernelServer),
        b"kerneluser" => K(Kw::KernelUser),
        b"skip" => K(Kw::Skip),
        b"struct" => K(Kw::Struct),
        b"intran" => K(Kw::InTran),
        b"intranpayload" => K(Kw::InTranPayload),
        b"outtran" => K(Kw::OutTran),
        b"destructor" => K(Kw::Destructor),
        b"ctype" => K(Kw::CType),
        b"cusertype" => K(Kw::CUserType),
        b"cservertype" => K(Kw::CServerType),
        b"c_string" => K(Kw::CString),
        b"islong" => Flag(FlagKw::IsLong),
        b"isnotlong" => Flag(FlagKw::IsNotLong),
        b"dealloc" => Flag(FlagKw::Dealloc),
        b"notdealloc" => Flag(FlagKw::NotDealloc),
        b"servercopy" => Flag(FlagKw::ServerCopy),
        b"countinout" => Flag(FlagKw::CountInOut),
        b"retcode" => Flag(FlagKw::RetCode),
        b"polymorphic" => TokKind::Sym(POLYMORPHIC_KW),
        _ => return None,
    })
}

/// Lexes the preprocessor's output. Locations come from `pp`'s segments; text with no
/// segment (e.g. from an external preprocessor without line markers) is mapped to a
/// synthetic file holding the preprocessed text.
pub fn lex(pp: &Preprocessed, map: &mut SourceMap, diags: &mut Diagnostics) -> Vec<Token> {
    let text = pp.text.as_str();
    let mut fallback: Option<(crate::source::FileId, crate::source::CtxId)> = None;
    let mut origins = pp.cursor();
    let mut locate = |map: &mut SourceMap, start: usize, end: usize| -> Loc {
        if let Some(l) = origins.origin_range(start as u32, end as u32) {
            return l;
        }
        let (file, ctx) = *fallback.get_or_insert_with(|| {
            let f = map.add_file(SourceFile::new("<preprocessed>", None, pp.text.as_str()));
            let c = map.add_ctx(f, None);
            (f, c)
        });
        Loc {
            file,
            start: start as u32,
            end: end as u32,
            ctx,
            expansion: None,
        }
    };

    // About one token per 8 to 11 bytes of preprocessed .defs text (indentation, line
    // markers): reserved at once rather than grown by copying.
    let mut toks: Vec<Token> = Vec::with_capacity(text.len() / 8);
    let mut idents: FxMap<&str, Rc<str>> = FxMap::default();
    let mut mode = Mode::Normal;
    let mut depth: i32 = 0;
    let mut i = text;
    let pos = |rest: &str| text.len() - rest.len();

    while let Some(c) = i.chars().next() {
        // White space, a run at a time (all of it is ASCII).
        let blanks = i
            .bytes()
            .take_while(|&b| b == b'\n' || is_blank(b as char))
            .count();
        if blanks > 0 {
            i = &i[blanks..];
            continue;
        }
        if c == '#' && pos(i) == line_start(text, pos(i)) {
            // A preprocessor line: a marker, a `#define`, or an error.
            let line_end = i.find('\n').unwrap_or(i.len());
            let line = &i[..line_end];
            if !is_line_marker(line) && !is_define(line) {
                let start = pos(i);
                let loc = locate(map, start, start + 1);
                diags.push(
                    Diagnostic::error("illegal # directive")
                        .at(loc)
                        .label("GNU MIG only accepts preprocessor line markers here")
                        .note("`#` lines must be handled by the preprocessor"),
                );
            }
            i = &i[line_end..];
            continue;
        }
        let start = pos(i);
        let (rest, kind) = match mode {
            Mode::Str => {
                match take_while1::<_, _, nom::error::Error<&str>>(is_string_char).parse(i) {
                    Ok((r, s)) => (r, TokKind::Str(s.to_string())),
                    Err(_) => (&i[c.len_utf8()..], TokKind::Error(c)),
                }
            }
            Mode::FileName => match quoted(i, '"', '"').or_else(|_| quoted(i, '<', '>')) {
                Ok((r, s)) => (r, TokKind::FileName(s.to_string())),
                Err(_) => (&i[c.len_utf8()..], TokKind::Error(c)),
            },
            Mode::QString => match quoted(i, '"', '"') {
                Ok((r, s)) => (r, TokKind::QString(s.to_string())),
                Err(_) => (&i[c.len_utf8()..], TokKind::Error(c)),
            },
            Mode::Normal => {
                // Identifiers and numbers are ASCII: the length of the run of bytes from
                // the first one that satisfy `ok`.
                let run = |ok: fn(&u8) -> bool| {
                    1 + i.as_bytes()[1..].iter().take_while(|b| ok(b)).count()
                };
                if is_ident_start(c) {
                    let n = run(|b| b.is_ascii_alphanumeric() || *b == b'_');
                    let word = &i[..n];
                    // One string per distinct identifier: type names recur in every routine.
                    let kind = classify_or(word, || {
                        idents.entry(word).or_insert_with(|| Rc::from(word)).clone()
                    });
                    (&i[n..], kind)
                } else if c.is_ascii_digit() {
                    let (d, r) = i.split_at(run(u8::is_ascii_digit));
                    match d.parse::<u32>() {
                        Ok(n) => (r, TokKind::Number(n)),
                        Err(_) => {
                            let loc = locate(map, start, start + d.len());
                            diags.push(
                                Diagnostic::error(format!("number `{d}` is too large"))
                                    .at(loc)
                                    .label("numbers must fit in 32 bits"),
                            );
                            (r, TokKind::Number(u32::MAX))
                        }
                    }
                } else if ":;,+-*/()=^~<>[]{}|".contains(c) {
                    (&i[1..], TokKind::Punct(c))
                } else {
                    (&i[c.len_utf8()..], TokKind::Error(c))
                }
            }
        };
        let end = pos(rest);
        i = rest;
        // Decide the mode for the next token, as GNU MIG's parser would.
        let statement_start = depth == 0
            && matches!(
                toks.last().map(|t: &Token| &t.kind),
                None | Some(TokKind::Punct(';'))
            );
        mode = match (&kind, mode) {
            (_, Mode::Str | Mode::FileName | Mode::QString) => Mode::Normal,
            (TokKind::Kw(Kw::MsgOption | Kw::WaitTime), _) if statement_start => Mode::Str,
            (TokKind::Kw(Kw::Import | Kw::UImport | Kw::SImport), _) if statement_start => {
                Mode::FileName
            }
            (TokKind::Kw(Kw::RcsId), _) if statement_start => Mode::QString,
            _ => Mode::Normal,
        };
        match kind {
            TokKind::Punct('(' | '{') => depth += 1,
            TokKind::Punct(')' | '}') => depth = (depth - 1).max(0),
            TokKind::Punct(';') if depth > 0 => {
                // `;` separates arguments and struct members; a statement cannot start here.
            }
            _ => {}
        }
        let loc = locate(map, start, end);
        toks.push(Token {
            kind,
            loc,
            start: start as u32,
            end: end as u32,
        });
    }
    toks
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map(|p| p + 1).unwrap_or(0)
}

/// `# 12 "file" 1 3` or `# 12` (GNU MIG also accepts `#12`).
fn is_line_marker(line: &str) -> bool {
    let rest = line[1..].trim_start_matches([' ', '\t']);
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let rest = rest[digits..].trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with('"') || line[1..].starts_with(' ')
}

/// `#define ` lines, which GCC may emit with `-dD`.
fn is_define(line: &str) -> bool {
    line.starts_with("#define ") || line.starts_with("#define\t")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Segment;

    fn lex_str(s: &str) -> (Vec<TokKind>, Diagnostics) {
        let mut map = SourceMap::new();
        let f = map.add_file(SourceFile::new("t.defs", None, s));
        let c = map.add_ctx(f, None);
        let pp = Preprocessed {
            text: s.to_string(),
            segments: vec![Segment {
                out_start: 0,
                len: s.len() as u32,
                origin: Loc {
                    file: f,
                    start: 0,
                    end: 0,
                    ctx: c,
                    expansion: None,
                },
            }],
            ..Default::default()
        };
        let mut d = Diagnostics::new();
        let t = lex(&pp, &mut map, &mut d);
        (t.into_iter().map(|t| t.kind).collect(), d)
    }

    #[test]
    fn keywords_are_case_insensitive_symbols_exact() {
        let (t, _) = lex_str("ROUTINE Routine routines MACH_MSG_TYPE_INTEGER_32 mach_msg_type_integer_32 PolyMorphic Dealloc");
        assert_eq!(t[0], TokKind::Kw(Kw::Routine));
        assert_eq!(t[1], TokKind::Kw(Kw::Routine));
        assert_eq!(t[2], TokKind::Ident("routines".into()));
        assert!(matches!(t[3], TokKind::Sym(s) if s.in_name == 2));
        assert_eq!(t[4], TokKind::Ident("mach_msg_type_integer_32".into()));
        assert!(matches!(t[5], TokKind::Sym(s) if s.in_name == POLY));
        assert_eq!(t[6], TokKind::Flag(FlagKw::Dealloc));
    }

    #[test]
    fn reserved_words_match_the_tables() {
        for (s, k) in KEYWORDS {
            assert_eq!(classify(s), TokKind::Kw(*k), "{s}");
            assert_eq!(classify(&s.to_ascii_uppercase()), TokKind::Kw(*k), "{s}");
            assert_eq!(k.as_str(), *s);
        }
        for (s, f) in FLAGS {
            assert_eq!(classify(s), TokKind::Flag(*f), "{s}");
            assert_eq!(flag_str(*f), *s);
        }
        for near in ["routin", "routines", "c_strin", "in_", "polymorphi", "x"] {
            assert_eq!(classify(near), TokKind::Ident(near.into()), "{near}");
        }
    }

    #[test]
    fn numbers_are_decimal() {
        let (t, d) = lex_str("0x20 4294967295 4294967296");
        assert_eq!(t[0], TokKind::Number(0));
        assert_eq!(t[1], TokKind::Ident("x20".into()));
        assert_eq!(t[2], TokKind::Number(u32::MAX));
        assert_eq!(d.error_count(), 1);
    }

    #[test]
    fn special_modes_only_at_statement_start() {
        let (t, _) = lex_str("msgoption MACH_SEND_TIMEOUT; waittime 100;\nroutine r(waittime t: int);\nimport <mach/x.h>; uimport \"a b.h\"; rcsid \"$Id$\";");
        assert_eq!(t[1], TokKind::Str("MACH_SEND_TIMEOUT".into()));
        assert_eq!(t[4], TokKind::Str("100".into()));
        assert_eq!(t[9], TokKind::Kw(Kw::WaitTime));
        assert_eq!(t[10], TokKind::Ident("t".into()));
        assert_eq!(t[16], TokKind::FileName("<mach/x.h>".into()));
        assert_eq!(t[19], TokKind::FileName("\"a b.h\"".into()));
        assert_eq!(t[22], TokKind::QString("\"$Id$\"".into()));
        // `|` is not part of a string token.
        let (t, _) = lex_str("msgoption A|B;");
        assert_eq!(t[1], TokKind::Str("A".into()));
        assert_eq!(t[2], TokKind::Punct('|'));
    }

    #[test]
    fn sharp_lines() {
        let (t, d) = lex_str("# 1 \"x.defs\"\n#define X 1\nsubsystem\n#pragma once\n  # 3\n");
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(t[0], TokKind::Kw(Kw::Subsystem));
        assert_eq!(
            t[1],
            TokKind::Error('#'),
            "a # not at column 0 is an error token"
        );
        assert_eq!(d.error_count(), 1);
    }
}
