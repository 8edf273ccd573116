//! Rendering plans for people and machines: text (terminal), Markdown (pull-request comments),
//! JSON. Pure functions from data to strings; untrusted text is escaped for its medium.

pub mod contacts;
pub mod markdown;
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
