//! The frontend's dynamic-prompt pass on text widgets: comments stripped, `{a|b}` choices
//! resolved (randomly when there are several), `\{ \} \|` unescaped.

use rand::Rng;

/// Maximum nesting of `{…}` groups followed; deeper text is kept literally.
const MAX_DEPTH: usize = 64;

/// Applies the dynamic-prompt pass to `text`, drawing choices from `rng`.
pub(crate) fn process(text: &str, rng: &mut impl Rng) -> String {
    let stripped = strip_comments(text);
    let chars: Vec<char> = stripped.chars().collect();
    let mut pos = 0;
    let mut out = String::with_capacity(stripped.len());
    expand(&chars, &mut pos, rng, false, 0, &mut out);
    // Unmatched closing braces at top level are kept as text.
    while pos < chars.len() {
        out.push(chars[pos]);
        pos += 1;
        expand(&chars, &mut pos, rng, false, 0, &mut out);
    }
    out
}

/// Removes `/* … */` blocks and `// …` up to the end of the line.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            match after.find("*/") {
                Some(end) => rest = &after[end + 2..],
                None => {
                    out.push_str(rest);
                    break;
                }
            }
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    out
}

/// Expands text until the end, or (inside a group) until the closing `}`; returns the chosen
/// alternative of the group.
fn expand(
    chars: &[char],
    pos: &mut usize,
    rng: &mut impl Rng,
    in_group: bool,
    depth: usize,
    out: &mut String,
) {
    let mut options: Vec<String> = vec![String::new()];
    while *pos < chars.len() {
        let c = chars[*pos];
        match c {
            '\\' if *pos + 1 < chars.len() => {
                *pos += 1;
                let next = chars[*pos];
                if !matches!(next, '{' | '}' | '|') {
                    push_last(&mut options, '\\');
                }
                push_last(&mut options, next);
                *pos += 1;
            }
            '{' if depth < MAX_DEPTH => {
                *pos += 1;
                let mut inner = String::new();
                expand(chars, pos, rng, true, depth + 1, &mut inner);
                if let Some(last) = options.last_mut() {
                    last.push_str(&inner);
                }
            }
            '}' if in_group => {
                *pos += 1;
                break;
            }
            '}' => break,
            '|' if in_group => {
                options.push(String::new());
                *pos += 1;
            }
            _ => {
                push_last(&mut options, c);
                *pos += 1;
            }
        }
    }
    let pick = if options.len() > 1 {
        rng.random_range(0..options.len())
    } else {
        0
    };
    out.push_str(&options.swap_remove(pick));
}

fn push_last(options: &mut [String], c: char) {
    if let Some(last) = options.last_mut() {
        last.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_variant_text_matches_frontend() {
        let text = "x /* block comment */, {only one choice}, \\{literal braces\\} and a \\| pipe // line comment\nsecond line {a {nested} choice} end";
        let got = process(text, &mut rand::rng());
        assert_eq!(
            got,
            "x , only one choice, {literal braces} and a | pipe \nsecond line a nested choice end"
        );
    }

    #[test]
    fn several_choices_pick_one_of_them() {
        for _ in 0..20 {
            let got = process("a {red|green|blue} cat", &mut rand::rng());
            assert!(
                ["a red cat", "a green cat", "a blue cat"].contains(&got.as_str()),
                "{got}"
            );
        }
    }

    #[test]
    fn unbalanced_braces_do_not_panic() {
        for t in ["}}{{", "{a|b", "a}b|c", "\\", "{{{{{{", "/*", "//"] {
            let _ = process(t, &mut rand::rng());
        }
    }
}
