//! Where each setting of a config file is written: dotted keys (`lifecycle.backoff.jitter`,
//! `remote[0].url`) mapped to their line and column, read from the TOML parser's spans, so an
//! error found after parsing still points at the line to fix.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of a byte offset in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }
}

/// Every key of a parsed file with the position where it is written.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    keys: BTreeMap<String, Position>,
}

impl SourceMap {
    /// Maps the keys of a parsed document.
    pub fn of(text: &str, root: &Spanned<DeTable<'_>>) -> Self {
        let mut map = Self::default();
        map.visit_table(text, "", root.get_ref());
        map
    }

    /// Where `key` is written; for a key the file does not set, where its nearest written
    /// parent is (a section header), or `None`.
    pub fn position(&self, key: &str) -> Option<Position> {
        let mut key = key;
        loop {
            if let Some(p) = self.keys.get(key) {
                return Some(*p);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }

    fn visit_table(&mut self, text: &str, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let dotted = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.keys
                .insert(dotted.clone(), Position::of_offset(text, key.span().start));
            self.visit_value(text, &dotted, value);
        }
    }

    fn visit_value(&mut self, text: &str, dotted: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(t) => self.visit_table(text, dotted, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let indexed = format!("{dotted}[{i}]");
                    self.keys.insert(
                        indexed.clone(),
                        Position::of_offset(text, item.span().start),
                    );
                    self.visit_value(text, &indexed, item);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_arrays_of_tables_have_their_lines() {
        let text = "[a]\nx = 1\n\n[a.b]\ny = 2\n\n[[r]]\nurl = \"u\"\n[[r]]\nurl = \"v\"\n";
        let root = DeTable::parse(text).unwrap();
        let map = SourceMap::of(text, &root);
        assert_eq!(map.position("a.x").unwrap().line, 2);
        assert_eq!(map.position("a.b.y").unwrap().line, 5);
        assert_eq!(map.position("r[1].url").unwrap().line, 10);
        assert_eq!(
            map.position("a.b.z").unwrap().line,
            4,
            "falls back to the section"
        );
        assert_eq!(map.position("nowhere"), None);
    }

    #[test]
    fn columns_count_characters() {
        let p = Position::of_offset("é = 1\nkey = \"x\"", 14);
        assert_eq!((p.line, p.column), (2, 8));
    }
}
