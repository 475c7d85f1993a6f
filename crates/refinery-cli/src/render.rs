//! Pure renderers: structs in, text out. Tables and `--json` render the same structs.

use refinery_core::{Issue, Outcome};

/// ANSI styling, off unless color was chosen.
#[derive(Debug, Clone, Copy)]
pub struct Styles {
    pub color: bool,
}

impl Styles {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    #[must_use]
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }

    #[must_use]
    pub fn outcome(self, o: Outcome) -> String {
        let code = match o {
            Outcome::Created
            | Outcome::Recreated
            | Outcome::Restarted
            | Outcome::RolledBack
            | Outcome::Removed => "32",
            Outcome::Unchanged | Outcome::Skipped => "2",
            Outcome::Deferred => "33",
            Outcome::Failed => "31",
        };
        self.paint(code, o.as_str())
    }

    #[must_use]
    pub fn warn(self, s: &str) -> String {
        self.paint("33", s)
    }
}

/// A borderless table with a header, like `docker ps`: columns padded to their widest cell.
#[must_use]
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `file:line:col: field: message` lines with their hints, for stderr.
#[must_use]
pub fn issues(list: &[Issue], label: &str) -> String {
    let mut out = String::new();
    for i in list {
        out.push_str(&format!("{label}: {i}\n"));
        if let Some(h) = &i.hint {
            out.push_str(&format!("  hint: {h}\n"));
        }
    }
    out
}

/// Prints an error with its cause chain and hints, the way every command reports failure.
#[must_use]
pub fn error(e: &(dyn std::error::Error + 'static), hints: &[String]) -> String {
    let mut out = format!("error: {e}\n");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("  caused by: {s}\n"));
        source = s.source();
    }
    if !hints.is_empty() {
        out.push('\n');
        for h in hints {
            out.push_str(&format!("hint: {h}\n"));
        }
    }
    out
}
