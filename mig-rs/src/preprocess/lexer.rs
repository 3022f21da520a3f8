//! Translation phases 1–3: line splicing, comments, and splitting into preprocessing tokens.
//!
//! A file's text is first "cleaned" (backslash-newline splices removed, with a map back to
//! the original offsets); the [`Lexer`] then works on the cleaned text. It never fails: input
//! problems are recorded in [`Lexer::problems`] and reported by the engine with locations.

use std::rc::Rc;

/// Kind of a raw token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RawKind {
    Ident,
    Number,
    Str,
    Char,
    Punct,
    Other,
    /// `<…>` or `"…"` after `#include` (only from [`Lexer::header_name`]).
    HeaderName,
    Newline,
    Eof,
}

/// A raw token: byte range in the cleaned text.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawTok {
    pub kind: RawKind,
    pub start: u32,
    pub end: u32,
    /// Preceded by white space, a comment, or the start of a line.
    pub ws: bool,
    /// First token of its line.
    pub bol: bool,
}

/// An input problem found while lexing, at a cleaned-text offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Problem {
    UnterminatedComment,
    /// Missing closing quote (`'` or `"`).
    UnterminatedLiteral(u8),
    Nul,
    NulInLiteral,
}

/// A file prepared for lexing.
#[derive(Debug)]
pub(super) struct FileData {
    /// The text as in the [`crate::source::SourceFile`].
    pub orig: Rc<String>,
    /// The text with backslash-newline splices removed.
    pub clean: Rc<String>,
    /// `(clean offset, original offset)` at each place text resumes after a splice.
    splices: Vec<(u32, u32)>,
    /// Offsets (in `orig`) where lines start.
    line_starts: Vec<u32>,
    /// Offsets (in `orig`) of splices with white space between the backslash and the newline.
    pub splice_ws: Vec<u32>,
    /// Offset (in `orig`) of the first invalid UTF-8 sequence (now a U+FFFD).
    pub bad_utf8: Option<u32>,
}

impl FileData {
    /// Prepares `orig`, whose lines start at `line_starts` ([`crate::source::line_starts`]).
    pub fn new(orig: Rc<String>, line_starts: Vec<u32>, bad_utf8: Option<u32>) -> FileData {
        let text: &str = &orig;
        let bytes = text.as_bytes();
        let mut clean = String::new();
        let mut splices = Vec::new();
        let mut splice_ws = Vec::new();
        let mut last = 0usize;
        let mut i = 0usize;
        // (`i` is always just after an ASCII byte, so `text.get(i..)` cannot fail; `find`
        // searches a word at a time.)
        while let Some(off) = text.get(i..).and_then(|r| r.find('\\')) {
            let bs = i + off;
            let mut j = bs + 1;
            while matches!(bytes.get(j), Some(b' ' | b'\t' | 0x0b | 0x0c)) {
                j += 1;
            }
            let had_ws = j > bs + 1;
            let nl = match (bytes.get(j), bytes.get(j + 1)) {
                (Some(b'\n'), _) => 1,
                (Some(b'\r'), Some(b'\n')) => 2,
                _ => 0,
            };
            if nl == 0 {
                i = bs + 1;
                continue;
            }
            j += nl;
            clean.push_str(text.get(last..bs).unwrap_or(""));
            splices.push((clean.len() as u32, j as u32));
            if had_ws {
                splice_ws.push(bs as u32);
            }
            last = j;
            i = j;
        }
        let clean = if splices.is_empty() {
            orig.clone()
        } else {
            clean.push_str(text.get(last..).unwrap_or(""));
            Rc::new(clean)
        };
        FileData {
            orig,
            clean,
            splices,
            line_starts,
            splice_ws,
            bad_utf8,
        }
    }

    /// Original offset of the character at cleaned offset `c`.
    pub fn orig(&self, c: u32) -> u32 {
        let i = self.splices.partition_point(|p| p.0 <= c);
        match i.checked_sub(1).and_then(|i| self.splices.get(i)) {
            Some(&(cl, or)) => c - cl + or,
            None => c,
        }
    }

    /// Original offset of the end of a range ending at cleaned offset `c` (before a splice
    /// that follows it).
    pub fn orig_end(&self, c: u32) -> u32 {
        let i = self.splices.partition_point(|p| p.0 < c);
        match i.checked_sub(1).and_then(|i| self.splices.get(i)) {
            Some(&(cl, or)) => c - cl + or,
            None => c,
        }
    }

    /// Zero-based line of an original offset.
    pub fn line_of(&self, off: u32) -> usize {
        self.line_starts
            .partition_point(|&s| s <= off)
            .saturating_sub(1)
    }

    /// Zero-based line of an original offset, starting the search at line `hint` (fast when
    /// offsets grow slowly, as token offsets do: a few lines forward are walked, anything
    /// else is a binary search).
    pub fn line_of_hint(&self, off: u32, hint: usize) -> usize {
        let ls = &self.line_starts;
        if ls.get(hint).is_some_and(|&a| a <= off) {
            let mut line = hint;
            for _ in 0..16 {
                match ls.get(line + 1) {
                    Some(&next) if next <= off => line += 1,
                    _ => return line,
                }
            }
        }
        self.line_of(off)
    }

    /// Original offset where the line containing `off` starts.
    pub fn line_start_of(&self, off: u32) -> u32 {
        self.line_starts
            .get(self.line_of(off))
            .copied()
            .unwrap_or(0)
    }
}

/// Byte length of the UTF-8 sequence starting with `b`.
pub(super) fn utf8_len(b: u8) -> usize {
    match b {
        0..=0x7f => 1,
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        _ => 2,
    }
}

fn is_ident_start_ascii(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_ident_cont_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

const PUNCT1: &[u8] = b"[](){}.&*+-~!/%<>^|?:;=,#";

/// Splits cleaned text into preprocessing tokens.
pub(super) struct Lexer {
    src: Rc<String>,
    pos: usize,
    bol: bool,
    /// Problems found so far (drained by the engine).
    pub problems: Vec<(Problem, u32)>,
    nul_reported: bool,
}

impl Lexer {
    pub fn new(src: Rc<String>) -> Lexer {
        Lexer {
            src,
            pos: 0,
            bol: true,
            problems: Vec::new(),
            nul_reported: false,
        }
    }

    /// Current offset in the cleaned text.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.src.as_bytes().get(i).copied()
    }

    fn problem(&mut self, p: Problem, at: usize) {
        if matches!(p, Problem::Nul | Problem::NulInLiteral) {
            if self.nul_reported {
                return;
            }
            self.nul_reported = true;
        }
        self.problems.push((p, at as u32));
    }

    /// The offset just after the `*/` that ends a comment whose text starts at `from`.
    fn comment_end(&self, from: usize) -> Option<usize> {
        // Comments are long (licence headers): look for each `*` with `find`, which
        // searches a word at a time, rather than at every byte pair.
        let mut at = from;
        loop {
            let star = at + self.src.get(at..)?.find('*')?;
            if self.byte(star + 1) == Some(b'/') {
                return Some(star + 2);
            }
            at = star + 1;
        }
    }

    /// Skips blanks and comments, not newlines. Returns whether anything was skipped.
    fn skip_blanks(&mut self) -> bool {
        let mut ws = false;
        loop {
            match self.byte(self.pos) {
                Some(b' ' | b'\t' | 0x0b | 0x0c | b'\r') => {
                    self.pos += 1;
                    ws = true;
                }
                Some(0) => {
                    self.problem(Problem::Nul, self.pos);
                    self.pos += 1;
                    ws = true;
                }
                Some(b'/') if self.byte(self.pos + 1) == Some(b'*') => {
                    match self.comment_end(self.pos + 2) {
                        Some(end) => self.pos = end,
                        None => {
                            self.problem(Problem::UnterminatedComment, self.pos);
                            self.pos = self.src.len();
                        }
                    }
                    ws = true;
                }
                Some(b'/') if self.byte(self.pos + 1) == Some(b'/') => {
                    // (`find` of a character searches a word at a time.)
                    let rest = self.src.get(self.pos..).unwrap_or("");
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                    ws = true;
                }
                _ => return ws,
            }
        }
    }

    /// The next token, a `Newline`, or `Eof` (repeatedly at the end).
    pub fn next(&mut self) -> RawTok {
        let ws = self.skip_blanks();
        let start = self.pos;
        let bol = self.bol;
        let kind = match self.byte(start) {
            None => {
                return RawTok {
                    kind: RawKind::Eof,
                    start: start as u32,
                    end: start as u32,
                    ws,
                    bol,
                }
            }
            Some(b'\n') => {
                self.pos += 1;
                self.bol = true;
                return RawTok {
                    kind: RawKind::Newline,
                    start: start as u32,
                    end: start as u32 + 1,
                    ws,
                    bol,
                };
            }
            Some(b) => self.scan(b),
        };
        self.bol = false;
        RawTok {
            kind,
            start: start as u32,
            end: self.pos as u32,
            ws: ws || bol,
            bol,
        }
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.src.get(i..).and_then(|s| s.chars().next())
    }

    fn scan(&mut self, b: u8) -> RawKind {
        let start = self.pos;
        if is_ident_start_ascii(b)
            || (b >= 0x80 && self.char_at(start).is_some_and(char::is_alphanumeric))
        {
            self.scan_ident();
            let word = self.src.get(start..self.pos).unwrap_or("");
            if matches!(word, "L" | "u" | "U" | "u8") {
                if let Some(q @ (b'"' | b'\'')) = self.byte(self.pos) {
                    return self.scan_literal(q);
                }
            }
            return RawKind::Ident;
        }
        if b.is_ascii_digit()
            || (b == b'.' && self.byte(start + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            self.pos += 1;
            loop {
                match self.byte(self.pos) {
                    Some(b'e' | b'E' | b'p' | b'P')
                        if matches!(self.byte(self.pos + 1), Some(b'+' | b'-')) =>
                    {
                        self.pos += 2
                    }
                    Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => self.pos += 1,
                    _ => break,
                }
            }
            return RawKind::Number;
        }
        if b == b'"' || b == b'\'' {
            return self.scan_literal(b);
        }
        let n = self.punct_len(b);
        if n > 0 {
            self.pos += n;
            return RawKind::Punct;
        }
        self.pos += utf8_len(b);
        if self.pos > self.src.len() {
            self.pos = self.src.len();
        }
        RawKind::Other
    }

    /// Length of the punctuator starting with `b` at `self.pos` (longest match), or 0.
    fn punct_len(&self, b: u8) -> usize {
        let c1 = self.byte(self.pos + 1);
        let c2 = self.byte(self.pos + 2);
        match (b, c1) {
            (b'<', Some(b'<')) | (b'>', Some(b'>')) => 2 + usize::from(c2 == Some(b'=')),
            (b'.', Some(b'.')) => {
                if c2 == Some(b'.') {
                    3
                } else {
                    1
                }
            }
            (b'%', Some(b':')) => {
                if c2 == Some(b'%') && self.byte(self.pos + 3) == Some(b':') {
                    4
                } else {
                    2
                }
            }
            (b'-', Some(b'>' | b'-' | b'='))
            | (b'+', Some(b'+' | b'='))
            | (b'<', Some(b'=' | b':' | b'%'))
            | (b'>', Some(b'='))
            | (b'=' | b'!' | b'*' | b'/' | b'^', Some(b'='))
            | (b'&', Some(b'&' | b'='))
            | (b'|', Some(b'|' | b'='))
            | (b'%', Some(b'=' | b'>'))
            | (b'#', Some(b'#'))
            | (b':', Some(b'>')) => 2,
            _ => usize::from(PUNCT1.contains(&b)),
        }
    }

    fn scan_ident(&mut self) {
        loop {
            match self.byte(self.pos) {
                Some(c) if is_ident_cont_ascii(c) => self.pos += 1,
                Some(c) if c >= 0x80 => match self.char_at(self.pos) {
                    Some(ch) if ch.is_alphanumeric() => self.pos += ch.len_utf8(),
                    _ => return,
                },
                _ => return,
            }
        }
    }

    /// Scans a string or character literal whose opening quote is at `self.pos` (after any
    /// prefix). An unterminated literal becomes an `Other` token up to the end of the line.
    fn scan_literal(&mut self, q: u8) -> RawKind {
        let quote_at = self.pos;
        self.pos += 1;
        loop {
            match self.byte(self.pos) {
                None | Some(b'\n') => {
                    self.problem(Problem::UnterminatedLiteral(q), quote_at);
                    return RawKind::Other;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.byte(self.pos) {
                        None | Some(b'\n') => {}
                        Some(c) => self.pos += utf8_len(c),
                    }
                }
                Some(c) if c == q => {
                    self.pos += 1;
                    return if q == b'"' {
                        RawKind::Str
                    } else {
                        RawKind::Char
                    };
                }
                Some(0) => {
                    self.problem(Problem::NulInLiteral, self.pos);
                    self.pos += 1;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// After `#include`: lexes a `<…>` or `"…"` header name on the current line, if there is
    /// one; otherwise leaves the position unchanged and returns `None`.
    pub fn header_name(&mut self) -> Option<RawTok> {
        let save = self.pos;
        let ws = self.skip_blanks();
        let start = self.pos;
        let close = match self.byte(start) {
            Some(b'<') => b'>',
            Some(b'"') => b'"',
            _ => {
                self.pos = save;
                return None;
            }
        };
        let rest = self.src.as_bytes().get(start + 1..).unwrap_or(&[]);
        let found = rest
            .iter()
            .position(|&c| c == close || c == b'\n')
            .filter(|&i| rest.get(i) == Some(&close));
        match found {
            Some(i) => {
                self.pos = start + 1 + i + 1;
                self.bol = false;
                Some(RawTok {
                    kind: RawKind::HeaderName,
                    start: start as u32,
                    end: self.pos as u32,
                    ws,
                    bol: false,
                })
            }
            None => {
                self.pos = save;
                None
            }
        }
    }
}

/// Lexes `s` as exactly one preprocessing token (used to check `##` results). Returns its
/// kind, or `None` if `s` is not a single valid token.
pub(super) fn single_token(s: &str) -> Option<RawKind> {
    let mut lx = Lexer::new(Rc::new(s.to_string()));
    let t = lx.next();
    if t.start != 0 || t.end as usize != s.len() || !lx.problems.is_empty() {
        return None;
    }
    match t.kind {
        RawKind::Newline | RawKind::Eof | RawKind::HeaderName => None,
        k => Some(k),
    }
}
