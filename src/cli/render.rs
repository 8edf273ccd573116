//! Terminal rendering of diagnostics (miette) and of plain errors.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use crate::cli::Context;
use crate::diagnostic::{Diagnostic, Severity};
use crate::render::terminal_safe;
use crate::source::SourceSet;

/// One diagnostic in miette's terms, with its file's text attached for the snippet.
#[derive(Debug)]
struct Report {
    header: String,
    severity: miette::Severity,
    help: Option<String>,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    /// Labels in other files than the primary one, shown as notes with their own snippet.
    related: Vec<Report>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

fn named_source(sources: &SourceSet, file: crate::source::FileId) -> NamedSource<String> {
    let f = sources.file(file);
    NamedSource::new(terminal_safe(&f.path), terminal_safe(&f.text))
}

fn to_report(sources: &SourceSet, d: &Diagnostic) -> Report {
    let primary = d.primary();
    let severity_word = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut labels = Vec::new();
    let mut related = Vec::new();
    for (i, label) in d.labels.iter().enumerate() {
        let text = (!label.message.is_empty()).then(|| terminal_safe(&label.message));
        let span = LabeledSpan::new_with_span(
            text.clone(),
            (label.loc.offset as usize, label.loc.len as usize),
        );
        // Labels near the primary share its snippet; distant ones get their own block after
        // it, so the first location shown is always the primary one.
        let file = sources.file(label.loc.file);
        let near = label.loc.file == primary.file
            && file
                .line_col(label.loc.offset)
                .0
                .abs_diff(file.line_col(primary.offset).0)
                <= 2;
        if i == 0 || near {
            labels.push(if i == 0 {
                LabeledSpan::new_primary_with_span(
                    text,
                    (label.loc.offset as usize, label.loc.len as usize),
                )
            } else {
                span
            });
        } else {
            related.push(Report {
                header: terminal_safe(&label.message),
                severity: miette::Severity::Advice,
                help: None,
                source: named_source(sources, label.loc.file),
                labels: vec![span],
                related: Vec::new(),
            });
        }
    }
    Report {
        header: format!(
            "{severity_word}[{}]: {}",
            d.code.as_str(),
            terminal_safe(&d.message)
        ),
        severity: match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
        help: d.help.as_deref().map(terminal_safe),
        source: named_source(sources, primary.file),
        labels,
        related,
    }
}

/// Renders diagnostics as text blocks with source snippets and file:line:column headers.
pub fn render_diagnostics(sources: &SourceSet, diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1)
        .with_show_related_as_nested(true);
    let mut out = String::new();
    for d in diagnostics {
        let report = to_report(sources, d);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!(
                "{}: {}\n",
                sources.describe(d.primary()),
                d.message
            ));
        }
        out.push('\n');
    }
    out
}

/// Prints an error that is not about a manifest position (missing path, I/O, bad flags).
pub fn print_error(cx: &Context, err: &dyn std::error::Error) {
    let prefix = if cx.color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    eprintln!("{prefix}: {}", terminal_safe(&message));
}
