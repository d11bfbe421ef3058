//! Patterns and the compiled pattern sets that find the earliest of them.
//!
//! A list of patterns is compiled once into one regex, `(p0)|(p1)|…`. The
//! regex engine's leftmost-first search then gives exactly the semantics we
//! promise: the earliest start in the text wins, and at the same start the
//! alternative listed first wins. One pass over the text finds the answer,
//! however many patterns there are.

use regex::Regex;

use crate::error::{Error, Result};

/// One thing to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// A regular expression (Rust `regex` syntax).
    Regex(String),
    /// Literal text.
    Exact(String),
}

impl Pattern {
    /// A regular-expression pattern.
    pub fn regex(source: impl Into<String>) -> Self {
        Pattern::Regex(source.into())
    }

    /// A literal pattern.
    pub fn exact(text: impl Into<String>) -> Self {
        Pattern::Exact(text.into())
    }

    /// How the pattern reads in messages.
    pub fn describe(&self) -> String {
        match self {
            Pattern::Regex(s) => format!("/{s}/"),
            Pattern::Exact(s) => format!("{s:?}"),
        }
    }

    fn to_regex_source(&self) -> String {
        match self {
            Pattern::Regex(s) => s.clone(),
            Pattern::Exact(s) => regex::escape(s),
        }
    }
}

/// What an expect found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index of the pattern that matched, in the order given.
    pub index: usize,
    /// The matched text.
    pub text: String,
    /// The text between the previous match and this one.
    pub before: String,
    /// Capture groups: `groups[0]` is the whole match, then the pattern's own groups.
    pub groups: Vec<Option<String>>,
}

/// A compiled list of patterns.
#[derive(Debug)]
pub(crate) struct PatternSet {
    regex: Regex,
    /// For pattern `i`: the index of its wrapping group and how many groups it has.
    groups: Vec<(usize, usize)>,
}

/// A match's position in the buffer, before the text is copied out.
pub(crate) struct Found {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl PatternSet {
    /// Compiles `patterns`; a bad regex is a usage error naming it.
    pub fn compile(patterns: &[Pattern]) -> Result<PatternSet> {
        if patterns.is_empty() {
            return Err(Error::usage("expect needs at least one pattern"));
        }
        let mut source = String::new();
        let mut groups = Vec::with_capacity(patterns.len());
        let mut next_group = 1;
        for (i, p) in patterns.iter().enumerate() {
            let one = p.to_regex_source();
            let own = Regex::new(&one).map_err(|e| {
                Error::usage(format!(
                    "pattern #{i} {} is not a valid regular expression: {e}",
                    p.describe()
                ))
            })?;
            let count = own.captures_len() - 1;
            if i > 0 {
                source.push('|');
            }
            source.push('(');
            source.push_str(&one);
            source.push(')');
            groups.push((next_group, count));
            next_group += 1 + count;
        }
        let regex = regex::RegexBuilder::new(&source)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| Error::usage(format!("the patterns together are too complex: {e}")))?;
        Ok(PatternSet { regex, groups })
    }

    /// Finds the earliest match in `text` starting the search at `from`.
    pub fn find(&self, text: &str, from: usize) -> Option<Found> {
        let mut locs = self.regex.capture_locations();
        let whole = self.regex.captures_read_at(&mut locs, text, from)?;
        let (index, &(group, count)) = self
            .groups
            .iter()
            .enumerate()
            .find(|(_, (g, _))| locs.get(*g).is_some())?;
        let mut groups = vec![Some((whole.start(), whole.end()))];
        groups.extend((group + 1..=group + count).map(|g| locs.get(g)));
        Some(Found {
            index,
            start: whole.start(),
            end: whole.end(),
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(patterns: &[Pattern], text: &str) -> Option<(usize, String)> {
        let set = PatternSet::compile(patterns).unwrap();
        set.find(text, 0)
            .map(|f| (f.index, text[f.start..f.end].to_string()))
    }

    #[test]
    fn earliest_in_stream_wins_then_list_order() {
        let p = [Pattern::regex("bar"), Pattern::regex("foo")];
        assert_eq!(first(&p, "foobar"), Some((1, "foo".into())));
        let p = [Pattern::regex("login:"), Pattern::regex("Login incorrect")];
        assert_eq!(
            first(&p, "Login incorrect\r\n\r\nhost login: "),
            Some((1, "Login incorrect".into()))
        );
        let p = [Pattern::exact("ab"), Pattern::exact("abc")];
        assert_eq!(first(&p, "xabc"), Some((0, "ab".into())));
    }

    #[test]
    fn captures_are_numbered_per_pattern() {
        let set = PatternSet::compile(&[Pattern::regex(r"(a)(b)"), Pattern::regex(r"(\d+)-(\d+)")])
            .unwrap();
        let f = set.find("x 12-34", 0).unwrap();
        assert_eq!(f.index, 1);
        assert_eq!(f.groups, vec![Some((2, 7)), Some((2, 4)), Some((5, 7))]);
    }

    #[test]
    fn exact_patterns_are_literal_and_bad_regexes_are_named() {
        assert_eq!(
            first(&[Pattern::exact("a.c$")], "abc a.c$ x"),
            Some((0, "a.c$".into()))
        );
        let err = PatternSet::compile(&[Pattern::regex("(unclosed")]).unwrap_err();
        assert!(err.to_string().contains("pattern #0 /(unclosed/"), "{err}");
    }

    #[test]
    fn dollar_anchors_at_the_end_of_what_arrived() {
        let p = [Pattern::regex(r"login: $")];
        assert_eq!(first(&p, "host login: "), Some((0, "login: ".into())));
        assert_eq!(first(&p, "host login: [ 1.2] cloud-init"), None);
    }
}
