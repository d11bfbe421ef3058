//! Patterns and the compiled pattern sets that find the earliest of them.
//!
//! A list of patterns is compiled once, each pattern on its own (literals
//! as `memmem` finders, regexes with their own literal prefilters), and each
//! search takes the earliest start in the text, ties going to the pattern
//! listed first: exactly the leftmost-first semantics of `(p0)|(p1)|…`.
//!
//! In front of them stands one gate: the literals that every match of some
//! pattern must contain, all patterns' at once, searched in one SIMD pass
//! (Teddy, from `aho-corasick`). Console output is mostly text that matches
//! nothing; where the gate finds none of its literals, no pattern can match
//! and the per-pattern searches (one pass over the text each) never run.

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

    /// Whether the pattern compiles the way `expect` compiles it; the error
    /// names it (`lint` checks literals before anything connects).
    pub fn check(&self) -> Result<()> {
        PatternSet::compile(std::slice::from_ref(self)).map(|_| ())
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
///
/// Each pattern is compiled on its own (a literal becomes a `memmem` finder,
/// no regex at all) and searched on its own; the earliest start wins, ties
/// go to the pattern listed first. That is exactly the leftmost-first
/// semantics of the alternation `(p0)|(p1)|…`, but each pattern keeps its own
/// literal prefilter: one alternation with a pattern that starts with a class
/// (`(\S+) login: $`) has none and ran the lazy DFA over every byte, 60×
/// slower (see BENCHMARKS.md, workload 3).
#[derive(Debug)]
pub(crate) struct PatternSet {
    matchers: Vec<Matcher>,
    /// `None` when some pattern has no literal every match of it contains
    /// (`\d+`), when there is one pattern (its own prefilter is the gate),
    /// or when Teddy cannot take the literals (too many, or no SIMD here).
    gate: Option<aho_corasick::packed::Searcher>,
}

#[derive(Debug)]
enum Matcher {
    Literal(Box<memchr::memmem::Finder<'static>>),
    Regex(Regex),
}

/// A match's position in the buffer, before the text is copied out.
pub(crate) struct Found {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Found {
    /// The match in `text` (where it was found), with `before` as given.
    pub(super) fn to_match(&self, text: &str, before: String) -> Match {
        Match {
            index: self.index,
            text: text[self.start..self.end].to_string(),
            before,
            groups: self
                .groups
                .iter()
                .map(|g| g.map(|(s, e)| text[s..e].to_string()))
                .collect(),
        }
    }
}

impl PatternSet {
    /// Compiles `patterns`; a bad regex is a usage error naming it.
    pub(super) fn compile(patterns: &[Pattern]) -> Result<PatternSet> {
        if patterns.is_empty() {
            return Err(Error::usage("expect needs at least one pattern"));
        }
        let matchers = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Pattern::Exact(text) if !text.is_empty() => Ok(Matcher::Literal(Box::new(
                    memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
                ))),
                // Default syntax only: the gate (`required_literals`) parses
                // with `regex_syntax`'s defaults, which are the same; a flag
                // set here (ignore_whitespace: `a b` matches "ab") must be set
                // there too, or the gate looks for literals no match holds.
                _ => regex::RegexBuilder::new(&p.to_regex_source())
                    .size_limit(64 << 20)
                    .build()
                    .map(Matcher::Regex)
                    .map_err(|e| {
                        Error::usage(format!(
                            "pattern #{i} {} is not a valid regular expression: {e}",
                            p.describe()
                        ))
                    }),
            })
            .collect::<Result<Vec<_>>>()?;
        // One pattern: its own prefilter already is the gate.
        let gate = if matchers.len() > 1 {
            required_literal_searcher(patterns)
        } else {
            None
        };
        Ok(PatternSet { matchers, gate })
    }

    /// Finds the earliest match in `text` starting the search at `from`.
    pub(super) fn find(&self, text: &str, from: usize) -> Option<Found> {
        if let Some(gate) = &self.gate {
            // No literal from `from` on: no match can start there, since a
            // match starting at or after `from` holds one of them.
            gate.find_in(text, aho_corasick::Span::from(from..text.len()))?;
        }
        let mut best: Option<Found> = None;
        for (index, matcher) in self.matchers.iter().enumerate() {
            let Some(found) = matcher.find(index, text, from) else {
                continue;
            };
            // Strictly earlier only: at the same start the earlier pattern stays.
            if !matches!(&best, Some(b) if b.start <= found.start) {
                best = Some(found);
            }
        }
        best
    }
}

/// The gate for `patterns`: a searcher for the literals one of which is in
/// every match of every pattern, or `None` if some pattern has none.
fn required_literal_searcher(patterns: &[Pattern]) -> Option<aho_corasick::packed::Searcher> {
    let mut literals = Vec::new();
    for pattern in patterns {
        literals.extend(required_literals(pattern)?);
    }
    aho_corasick::packed::Config::new()
        .builder()
        .extend(literals)
        .build()
}

/// Literals one of which every match of `pattern` contains: its prefixes
/// (every match starts with one) or else its suffixes (every match ends with
/// one), as `regex-syntax` extracts them; `None` if neither set is finite
/// and free of the empty literal (which is in every text).
fn required_literals(pattern: &Pattern) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
    if let Pattern::Exact(text) = pattern {
        return (!text.is_empty()).then(|| vec![text.as_bytes().to_vec()]);
    }
    // The same (default) syntax as the matcher's own compile in `compile`.
    let hir = regex_syntax::Parser::new()
        .parse(&pattern.to_regex_source())
        .ok()?;
    let usable = |seq: &Seq| {
        let literals = seq.literals()?;
        (seq.min_literal_len()? > 0)
            .then(|| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
    };
    let mut prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    prefixes.optimize_for_prefix_by_preference();
    if let Some(found) = usable(&prefixes) {
        return Some(found);
    }
    let mut suffixes = Extractor::new().kind(ExtractKind::Suffix).extract(&hir);
    suffixes.optimize_for_suffix_by_preference();
    usable(&suffixes)
}

impl Matcher {
    fn find(&self, index: usize, text: &str, from: usize) -> Option<Found> {
        match self {
            Matcher::Literal(finder) => {
                let start = from + finder.find(&text.as_bytes()[from..])?;
                let end = start + finder.needle().len();
                Some(Found {
                    index,
                    start,
                    end,
                    groups: vec![Some((start, end))],
                })
            }
            Matcher::Regex(regex) => {
                let mut locs = regex.capture_locations();
                let whole = regex.captures_read_at(&mut locs, text, from)?;
                Some(Found {
                    index,
                    start: whole.start(),
                    end: whole.end(),
                    groups: (0..locs.len()).map(|g| locs.get(g)).collect(),
                })
            }
        }
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
    fn literals_and_regexes_share_one_order() {
        let p = [Pattern::regex(r"\d+"), Pattern::exact("12")];
        assert_eq!(
            first(&p, "x 123"),
            Some((0, "123".into())),
            "same start: listed first"
        );
        let p = [Pattern::exact("123"), Pattern::regex(r"\d")];
        assert_eq!(first(&p, "x 123"), Some((0, "123".into())));
        let p = [Pattern::exact("zz"), Pattern::regex(r"(\S+) login: $")];
        let set = PatternSet::compile(&p).unwrap();
        let f = set.find("zz host login: ", 1).unwrap();
        assert_eq!(
            (f.index, f.groups[1]),
            (1, Some((3, 7))),
            "search starts at `from`"
        );
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

    #[test]
    fn the_gate_takes_literals_from_either_end_and_steps_aside_without_them() {
        let console = [
            Pattern::exact("BENCH-END-OF-STREAM"),
            Pattern::regex(r"Kernel panic - not syncing: (.+)"),
            Pattern::regex(r"(\S+) login: $"),
            Pattern::regex(r"Out of memory: Killed process (\d+) \((\w+)\)"),
        ];
        let set = PatternSet::compile(&console).unwrap();
        assert!(
            set.gate.is_some(),
            "prefixes and the login's suffix make a gate"
        );
        let f = set.find("boot\r\nip-10-0-1-23 login: ", 0).unwrap();
        assert_eq!(
            (f.index, f.start),
            (2, 6),
            "a match starts before its literal"
        );
        assert!(set.find("nothing here", 0).is_none());
        // `\d+` holds no literal: no gate, and a digit still matches.
        let set = PatternSet::compile(&[Pattern::exact("login:"), Pattern::regex(r"\d+")]).unwrap();
        assert!(set.gate.is_none());
        assert_eq!(set.find("up 42", 0).map(|f| f.index), Some(1));
        // One pattern is its own gate.
        assert!(PatternSet::compile(&console[..1]).unwrap().gate.is_none());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const MENU: &[&str] = &[
            r"login: $",
            r"(\S+) login: $",
            r"[Pp]assword: ?",
            r"(?i)password",
            r"\$ $",
            r"x+y",
            r"(ab|cd)e",
            r"a\b",
            r"^#",
            r"(\d+)\)",
            r"(?i)k",
            r"(\w+)ed$",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The gate never changes what is found: the same set without it
            /// finds the same match, from any starting point.
            #[test]
            fn the_gate_never_changes_a_result(
                picks in proptest::collection::vec((0..MENU.len(), any::<bool>()), 2..5),
                text in "(login: |Password: |PASSWORD|ab|cde|xxy|# |\\$ |a b|12\\)|host|\r\n| |é|K|\u{212A}|k|ed){0,24}",
                from in 0usize..64,
            ) {
                let patterns: Vec<Pattern> = picks
                    .iter()
                    .map(|&(i, exact)| if exact { Pattern::exact(MENU[i]) } else { Pattern::regex(MENU[i]) })
                    .collect();
                let gated = PatternSet::compile(&patterns).unwrap();
                let plain = PatternSet { gate: None, ..PatternSet::compile(&patterns).unwrap() };
                let from = crate::text::floor_char_boundary(&text, from.min(text.len()));
                let key = |f: Option<Found>| f.map(|f| (f.index, f.start, f.end, f.groups));
                prop_assert_eq!(key(gated.find(&text, from)), key(plain.find(&text, from)));
            }
        }
    }
}
