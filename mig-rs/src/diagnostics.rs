//! The one diagnostics type of mig-rs.
//!
//! Every stage (preprocessor, lexer, parser, checker, entry points) reports problems as
//! [`Diagnostic`]s into a [`Diagnostics`] list. They are rendered rustc-style with
//! `codespan-reporting` — `file:line:col`, the source line and a caret, the include chain and
//! macro expansions as notes — for terminals (CLI, build scripts) and as plain text inside
//! `compile_error!` (the attribute macro).

use crate::source::{FileId, Loc, SourceMap};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term;
use std::fmt;
use std::ops::Range;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

/// A secondary location with its own message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub loc: Loc,
    pub message: String,
}

/// One error, warning or note, with an optional primary location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` for problems with no source location (bad options,
    /// missing input file).
    pub primary: Option<Loc>,
    /// Text shown under the primary caret.
    pub primary_label: String,
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            primary_label: String::new(),
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }
    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }
    /// Sets the primary location.
    pub fn at(mut self, loc: Loc) -> Diagnostic {
        self.primary = Some(loc);
        self
    }
    /// Sets the primary location if there is one.
    pub fn at_opt(mut self, loc: Option<Loc>) -> Diagnostic {
        self.primary = loc;
        self
    }
    /// Sets the text under the primary caret.
    pub fn label(mut self, text: impl Into<String>) -> Diagnostic {
        self.primary_label = text.into();
        self
    }
    /// Adds a secondary location.
    pub fn with_secondary(mut self, loc: Loc, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            loc,
            message: message.into(),
        });
        self
    }
    /// Adds a note.
    pub fn note(mut self, text: impl Into<String>) -> Diagnostic {
        self.notes.push(text.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    /// `-q`: drop warnings.
    pub quiet: bool,
    /// Stop collecting after this many errors (a last line says how many were dropped).
    pub max_errors: usize,
    dropped: usize,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics {
            max_errors: 100,
            ..Default::default()
        }
    }

    /// Records a diagnostic (warnings are dropped when `quiet`).
    pub fn push(&mut self, d: Diagnostic) {
        if d.severity == Severity::Warning && self.quiet {
            return;
        }
        if d.is_error() && self.max_errors > 0 && self.error_count() >= self.max_errors {
            self.dropped += 1;
            return;
        }
        self.list.push(d);
    }

    pub fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count() + self.dropped
    }
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Errors that were not recorded because of `max_errors`.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.dropped += other.dropped;
        for d in other.list {
            self.push(d);
        }
    }

    /// Renders every diagnostic as plain text (no colors).
    pub fn render(&self, map: &SourceMap) -> String {
        let mut out = String::new();
        for d in &self.list {
            out.push_str(&render(d, map));
        }
        if self.dropped > 0 {
            out.push_str(&format!(
                "error: {} more errors were not shown\n",
                self.dropped
            ));
        }
        out
    }
}

/// `Files` view of a [`SourceMap`] for codespan-reporting.
struct MapFiles<'a>(&'a SourceMap);

impl<'a> Files<'a> for MapFiles<'a> {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.0.file(id).name)
    }
    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.0.file(id).text)
    }
    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        Ok(self.0.file(id).line_index(byte_index as u32))
    }
    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let f = self.0.file(id);
        let start = f.line_start(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: f.line_count().saturating_sub(1),
        })? as usize;
        let end = f
            .line_start(line_index + 1)
            .map(|e| e as usize)
            .unwrap_or(f.text.len());
        Ok(start..end)
    }
}

fn span(loc: Loc, map: &SourceMap) -> Range<usize> {
    let len = map.file(loc.file).text.len();
    let start = (loc.start as usize).min(len);
    let end = (loc.end as usize).clamp(start, len);
    start..end
}

fn to_codespan(d: &Diagnostic, map: &SourceMap) -> cs::Diagnostic<FileId> {
    let sev = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let mut labels = Vec::new();
    let mut notes = Vec::new();
    if let Some(loc) = d.primary {
        labels.push(cs::Label::primary(loc.file, span(loc, map)).with_message(&d.primary_label));
        // Macro expansions, innermost first: point at each call site.
        for e in map.expansion_chain(loc) {
            labels.push(
                cs::Label::secondary(e.call_site.file, span(e.call_site, map))
                    .with_message(format!("in this expansion of macro `{}`", e.name)),
            );
        }
        // Include chain, innermost first, as gcc does.
        let ctx = map
            .expansion_chain(loc)
            .last()
            .map(|e| e.call_site.ctx)
            .unwrap_or(loc.ctx);
        for (i, at) in map.include_chain(ctx).into_iter().enumerate() {
            let word = if i == 0 {
                "in file included from"
            } else {
                "                 from"
            };
            notes.push(format!("{word} {}", map.describe(at)));
        }
    }
    for l in &d.secondary {
        labels.push(cs::Label::secondary(l.loc.file, span(l.loc, map)).with_message(&l.message));
    }
    notes.extend(d.notes.iter().cloned());
    cs::Diagnostic::new(sev)
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders one diagnostic rustc-style, without colors.
pub fn render(d: &Diagnostic, map: &SourceMap) -> String {
    let config = term::Config::default();
    match term::emit_into_string(&config, &MapFiles(map), &to_codespan(d, map)) {
        Ok(s) => s,
        // Rendering only fails for out-of-range lines, which `span` clamps; fall back to a
        // one-line form rather than losing the message.
        Err(_) => match d.primary {
            Some(loc) => format!("{}: {}: {}\n", map.describe(loc), d.severity, d.message),
            None => format!("{}: {}\n", d.severity, d.message),
        },
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn renders_location_caret_and_include_chain() {
        let mut map = SourceMap::new();
        let main = map.add_file(SourceFile::new(
            "main.defs",
            None,
            "subsystem x 1;\n#include \"t.defs\"\n",
        ));
        let inc = map.add_file(SourceFile::new("t.defs", None, "type foo = bar;\n"));
        let c0 = map.add_ctx(main, None);
        let at = Loc {
            file: main,
            start: 15,
            end: 32,
            ctx: c0,
            expansion: None,
        };
        let c1 = map.add_ctx(inc, Some(at));
        let loc = Loc {
            file: inc,
            start: 11,
            end: 14,
            ctx: c1,
            expansion: None,
        };
        let d = Diagnostic::error("unknown type `bar`")
            .at(loc)
            .label("not declared");
        let s = render(&d, &map);
        assert!(s.contains("error: unknown type `bar`"), "{s}");
        assert!(s.contains("t.defs:1:12"), "{s}");
        assert!(s.contains("^^^ not declared"), "{s}");
        assert!(s.contains("in file included from main.defs:2:1"), "{s}");
    }

    #[test]
    fn quiet_drops_warnings() {
        let mut d = Diagnostics::new();
        d.quiet = true;
        d.push(Diagnostic::warning("w"));
        d.push(Diagnostic::error("e"));
        assert_eq!(d.len(), 1);
        assert!(d.has_errors());
    }
}
