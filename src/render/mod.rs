//! Rendering plans for people and machines: text (terminal), Markdown (pull-request comments),
//! JSON. Pure functions from data to strings; untrusted text is escaped for its medium.

pub mod contacts;
pub mod licences;
pub mod markdown;
pub mod secure_score;
pub mod text;

/// Characters that could drive a terminal or reorder what is shown (escape sequences, bidi
/// overrides) are replaced by visible ones of the same UTF-8 length, so byte spans into the
/// text stay valid. Manifest and Entra text is untrusted.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            let dangerous = (c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if !dangerous {
                return c;
            }
            match c.len_utf8() {
                1 => '?',
                2 => '\u{bf}',
                _ => char::REPLACEMENT_CHARACTER,
            }
        })
        .collect()
}

/// A JSON value as shown in plans: strings quoted and escaped, others as JSON.
pub fn show_value(value: &serde_json::Value) -> String {
    terminal_safe(&serde_json::to_string(value).unwrap_or_default())
}

/// "1 organization", "3 organizations".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Rows of cells (already escaped) under a header, each column padded to its widest cell, two
/// spaces apart, no trailing spaces.
pub fn aligned<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.as_ref()[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            let pad = widths[i] - c.chars().count();
            s.push_str(c);
            s.push_str(&" ".repeat(pad + 2));
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.as_ref().iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_and_bidi_characters_are_neutralised_keeping_lengths() {
        let input = "name: evil\u{1b}[2J\u{9b}x\u{202e}gnp.exe\tok\n";
        let safe = terminal_safe(input);
        assert_eq!(safe, "name: evil?[2J\u{bf}x\u{fffd}gnp.exe\tok\n");
        assert_eq!(safe.len(), input.len());
    }
}
