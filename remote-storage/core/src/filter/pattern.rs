//! `regex` patterns: RE2 syntax as Jaeger's Go code reads it, minus the constructs the spec
//! refuses, compiled with the `regex` crate (whose syntax is RE2's, with a few additions).
//!
//! The pattern is parsed once into regex-syntax's AST and checked there, so a construct is
//! recognised by what it is, not by its spelling (`[$]` is a literal, `\$` too, `$` is an
//! anchor):
//! - refused by the spec: anchors and word boundaries (every assertion: `^ $ \A \z \b \B`,
//!   and Rust's `\< \> \b{start}`…), lazy quantifiers (`*?`, `(?U)`), case folding (`(?i)`);
//! - refused as not RE2: class set operations (`[a&&b] [a--b] [a~~b]`), `\u`/`\U` escapes, the
//!   `x`, `u` and `R` flags, counted repetition above 1000 (RE2's limit);
//! - given RE2's meaning: the Perl classes `\d \s \w` (and negations) are ASCII in RE2 but
//!   Unicode in Rust, so they are rewritten to RE2's sets before compiling.
//!
//! What `regex` refuses on its own (backreferences, look-around, `\Q…\E`, `\C`, octal escapes,
//! unbalanced groups, patterns past the size limit) is refused as unparsable. The matching is
//! unanchored and case-sensitive (`is_match`: a match anywhere in the value).

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{
    self, AssertionKind, Ast, ClassPerl, ClassPerlKind, ClassSetBinaryOp, ClassSetItem, Flag,
    FlagsItemKind, GroupKind, HexLiteralKind, LiteralKind, RepetitionKind, RepetitionRange,
};

/// RE2's largest repetition count.
const MAX_REPEAT: u32 = 1000;
/// Compiled-program budget: a filter pattern is small; a huge one is a client error.
const SIZE_LIMIT: usize = 1 << 20;
/// Parser nesting budget, well under the stack a parse may use.
const NEST_LIMIT: u32 = 100;

/// A checked and compiled `regex` pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as sent.
    pub text: String,
    /// Whether the scalar was typed `string` (else untyped); kept for the finalized form.
    pub typed_string: bool,
    regex: Regex,
}

impl Pattern {
    /// Checks and compiles `text`; the error says what is refused and why.
    pub(super) fn new(text: &str, typed_string: bool) -> Result<Self, String> {
        let regex = compile(text)?;
        Ok(Self {
            text: text.to_owned(),
            typed_string,
            regex,
        })
    }

    /// Whether `value` contains a match.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

fn compile(text: &str) -> Result<Regex, String> {
    let parsed = ast::parse::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(text)
        .map_err(|error| format!("regex {text:?} is not a valid pattern: {}", error.kind()))?;
    let checker = Re2Checker {
        pattern: text,
        rewrites: Vec::new(),
    };
    let rewrites = ast::visit(&parsed, checker)?;
    let rewritten = apply_rewrites(text, rewrites);
    RegexBuilder::new(&rewritten)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|error| format!("regex {text:?} is not a valid pattern: {error}"))
}

/// Replaces byte ranges of `text` (sorted, disjoint) with RE2-equivalent syntax.
fn apply_rewrites(text: &str, mut rewrites: Vec<(usize, usize, &'static str)>) -> String {
    rewrites.sort_unstable_by_key(|(start, _, _)| *start);
    let mut rewritten = String::with_capacity(text.len() + rewrites.len() * 16);
    let mut copied_to = 0;
    for (start, end, replacement) in rewrites {
        rewritten.push_str(text.get(copied_to..start).unwrap_or(""));
        rewritten.push_str(replacement);
        copied_to = end;
    }
    rewritten.push_str(text.get(copied_to..).unwrap_or(""));
    rewritten
}

/// RE2's Perl classes, as bracketed classes (nested classes are valid inside brackets too).
fn perl_class_rewrite(class: &ClassPerl) -> &'static str {
    match (&class.kind, class.negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Space, false) => r"[\t\n\x0C\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\x0C\r ]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

struct Re2Checker<'a> {
    pattern: &'a str,
    rewrites: Vec<(usize, usize, &'static str)>,
}

impl Re2Checker<'_> {
    fn refuse(&self, what: &str) -> String {
        format!("regex {:?}: {what}", self.pattern)
    }

    fn check_flags(&self, flags: &ast::Flags) -> Result<(), String> {
        let mut negated = false;
        for item in &flags.items {
            match item.kind {
                FlagsItemKind::Negation => negated = true,
                FlagsItemKind::Flag(Flag::CaseInsensitive) if !negated => {
                    return Err(self.refuse(
                        "case-insensitive matching ((?i)) is refused: matching is case-sensitive",
                    ));
                }
                FlagsItemKind::Flag(Flag::SwapGreed) if !negated => {
                    return Err(self.refuse("lazy quantifiers ((?U)) are refused"));
                }
                FlagsItemKind::Flag(Flag::IgnoreWhitespace | Flag::Unicode | Flag::CRLF) => {
                    return Err(self.refuse("the x, u and R flags are not RE2"));
                }
                FlagsItemKind::Flag(_) => {}
            }
        }
        Ok(())
    }
}

impl ast::Visitor for Re2Checker<'_> {
    type Output = Vec<(usize, usize, &'static str)>;
    type Err = String;

    fn finish(self) -> Result<Self::Output, String> {
        Ok(self.rewrites)
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::Assertion(assertion) => Err(self.refuse(match assertion.kind {
                AssertionKind::StartLine
                | AssertionKind::EndLine
                | AssertionKind::StartText
                | AssertionKind::EndText => {
                    "anchors (^ $ \\A \\z) are refused: patterns match anywhere in the value"
                }
                _ => "word boundaries (\\b \\B) are refused",
            })),
            Ast::Repetition(repetition) => {
                if !repetition.greedy {
                    return Err(self.refuse("lazy quantifiers (*? +? ?? {n,m}?) are refused"));
                }
                if let RepetitionKind::Range(
                    RepetitionRange::Exactly(count)
                    | RepetitionRange::AtLeast(count)
                    | RepetitionRange::Bounded(_, count),
                ) = repetition.op.kind
                    && count > MAX_REPEAT
                {
                    return Err(self.refuse("repetition counts above 1000 are not RE2"));
                }
                Ok(())
            }
            Ast::Flags(set_flags) => self.check_flags(&set_flags.flags),
            Ast::Group(group) => match &group.kind {
                GroupKind::NonCapturing(flags) => self.check_flags(flags),
                GroupKind::CaptureIndex(_) | GroupKind::CaptureName { .. } => Ok(()),
            },
            Ast::Literal(literal) => check_literal(self, literal),
            Ast::ClassPerl(class) => {
                self.rewrites.push((
                    class.span.start.offset,
                    class.span.end.offset,
                    perl_class_rewrite(class),
                ));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
        match item {
            ClassSetItem::Perl(class) => {
                self.rewrites.push((
                    class.span.start.offset,
                    class.span.end.offset,
                    perl_class_rewrite(class),
                ));
                Ok(())
            }
            ClassSetItem::Literal(literal) => check_literal(self, literal),
            _ => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, _op: &ClassSetBinaryOp) -> Result<(), String> {
        Err(self.refuse("class set operations (&& -- ~~) are not RE2"))
    }
}

fn check_literal(checker: &Re2Checker<'_>, literal: &ast::Literal) -> Result<(), String> {
    match literal.kind {
        LiteralKind::HexFixed(HexLiteralKind::UnicodeShort | HexLiteralKind::UnicodeLong)
        | LiteralKind::HexBrace(HexLiteralKind::UnicodeShort | HexLiteralKind::UnicodeLong) => {
            Err(checker.refuse("\\u and \\U escapes are not RE2 (use \\x{…})"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, value: &str) -> bool {
        Pattern::new(pattern, false).unwrap().is_match(value)
    }

    #[test]
    fn matching_is_unanchored_and_case_sensitive() {
        assert!(matches("GET|POST", "GET /cart"));
        assert!(matches("cart", "GET /cart"));
        assert!(!matches("get", "GET /cart"));
        assert!(matches("[$]", "costs $5"));
        assert!(matches(r"\$", "costs $5"));
        assert!(!matches(r"\$", "costs 5"));
        assert!(matches("(?-i)GET", "GET"));
        assert!(matches("(?s)a.b", "a\nb"));
        assert!(matches("a{2,1000}", "aa"));
    }

    #[test]
    fn perl_classes_keep_their_re2_ascii_meaning() {
        // U+0663 is ARABIC-INDIC DIGIT THREE: a Unicode digit, not an RE2 `\d`.
        assert!(!matches(r"\d", "\u{0663}"));
        assert!(matches(r"\d", "a3"));
        assert!(matches(r"\D", "\u{0663}"));
        assert!(matches(r"[\d]", "7"));
        assert!(!matches(r"[^\d]", "7"));
        assert!(matches(r"[^\D]", "7"));
        assert!(matches(r"[x\s]", " "));
        assert!(!matches(r"\w", "é"));
        assert!(matches(r"\W", "é"));
        assert!(!matches(r"\s", "\u{000B}"));
        assert!(matches(r"\pL", "é"));
    }

    #[test]
    fn refused_constructs_say_why() {
        for (pattern, reason) in [
            ("^GET", "anchors"),
            ("GET$", "anchors"),
            (r"\AGET", "anchors"),
            (r"GET\z", "anchors"),
            ("(?m)^GET", "anchors"),
            (r"\bGET", "word boundaries"),
            (r"\BGET", "word boundaries"),
            (r"\<GET", "word boundaries"),
            ("a*?", "lazy"),
            ("a+?", "lazy"),
            ("a??", "lazy"),
            ("a{1,3}?", "lazy"),
            ("(?U)a*", "lazy"),
            ("(?i)get", "case-insensitive"),
            ("(?i:get)", "case-insensitive"),
            ("(?x)a b", "not RE2"),
            ("[a-z&&b]", "not RE2"),
            (r"\u0041", "not RE2"),
            ("a{1001}", "not RE2"),
            ("(a", "not a valid pattern"),
            (r"(a)\1", "not a valid pattern"),
            ("(?=a)", "not a valid pattern"),
            (r"\Qa\E", "not a valid pattern"),
        ] {
            let error = Pattern::new(pattern, false).unwrap_err();
            assert!(error.contains(reason), "{pattern}: {error}");
        }
    }
}
