//! What `lint` (and `run`, before it connects) checks beyond the grammar:
//! every call names a function that exists with that many arguments (the
//! tool's API, Rhai's own, or one the script defines); pattern literals
//! compile the way `expect` compiles them; and a string method that changes
//! its string in place and returns nothing (`trim`, `replace`, …) is not
//! used for a value, where it would silently give `()`.
//!
//! The tool's API is read from the engine a run builds, so the check never
//! drifts from what a run accepts: once per process, on a thread of its own
//! with a session over an in-memory pipe that nothing ever reads.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::OnceLock;

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt, AST};

use super::sandbox::location;
use crate::error::{Error, Result};
use crate::expect::Pattern;

/// Rhai's keywords that are called like functions.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
    "eval",
];

/// String methods that change their string in place and return `()`.
const IN_PLACE: &[&str] = &[
    "trim",
    "make_upper",
    "make_lower",
    "replace",
    "pad",
    "crop",
    "truncate",
    "clear",
];

/// The calls whose first argument is patterns (regular expressions).
const REGEX_CALLS: &[&str] = &["expect", "expect_screen"];

/// Function names and the argument counts each takes.
type Known = BTreeMap<String, BTreeSet<usize>>;

/// Checks the calls of `ast` (the script `name`); the first problem found.
pub(super) fn check(name: &str, ast: &AST) -> Result<()> {
    // No API read (the engine could not be built): no call is judged
    // unknown, rather than every one.
    let known = (!api().is_empty()).then(|| {
        let mut known = api().clone();
        for f in ast.iter_functions() {
            known
                .entry(f.name.to_string())
                .or_default()
                .insert(f.params.len());
        }
        known
    });
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        found = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => {
                check_call(name, call, *pos, known.as_ref())
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => {
                check_call(name, call, *pos, known.as_ref())
            }
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => {
                check_in_place(name, call, *pos, path)
            }
            _ => None,
        };
        found.is_none()
    });
    found.map_or(Ok(()), Err)
}

fn check_call(
    name: &str,
    call: &FnCallExpr,
    pos: Position,
    known: Option<&Known>,
) -> Option<Error> {
    let called = call.name.as_str();
    let is_word = called.starts_with(|c: char| c.is_alphabetic() || c == '_');
    if call.is_qualified() || !is_word || KEYWORDS.contains(&called) {
        return None;
    }
    if let Some(known) = known {
        if let Some(e) = check_name_and_count(name, call, pos, known) {
            return Some(e);
        }
    }
    if REGEX_CALLS.contains(&called) {
        return check_patterns(name, called, call.args.first()?);
    }
    None
}

/// A call of a function nobody defines, or with a count of arguments it
/// never takes.
fn check_name_and_count(
    name: &str,
    call: &FnCallExpr,
    pos: Position,
    known: &Known,
) -> Option<Error> {
    let called = call.name.as_str();
    let given = call.args.len();
    let Some(counts) = known.get(called) else {
        let hint = nearest(called, known)
            .map(|n| format!(" (did you mean {n}()?)"))
            .unwrap_or_default();
        return Some(Error::usage(format!(
            "{}: unknown function {called}(){hint}: neither the tool's script API \
             (docs/scripts.md), Rhai nor this script defines it",
            location(name, pos)
        )));
    };
    if !counts.contains(&given) {
        let takes: Vec<String> = counts.iter().map(usize::to_string).collect();
        return Some(Error::usage(format!(
            "{}: {called}() takes {} argument(s), not {given}",
            location(name, pos),
            takes.join(" or ")
        )));
    }
    None
}

/// A pattern literal (a string, or an array of strings) that `expect`
/// could never compile.
fn check_patterns(name: &str, called: &str, arg: &Expr) -> Option<Error> {
    // A list of literals is folded into one constant by the compiler.
    let (literals, pos): (Vec<String>, Position) = match arg {
        Expr::StringConstant(s, pos) => (vec![s.to_string()], *pos),
        Expr::DynamicConstant(value, pos) => match value.read_lock::<rhai::Array>() {
            Some(items) => (
                items
                    .iter()
                    .filter_map(|d| d.clone().into_string().ok())
                    .collect(),
                *pos,
            ),
            None => return None,
        },
        Expr::Array(items, pos) => (
            items
                .iter()
                .filter_map(|e| match e {
                    Expr::StringConstant(s, _) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            *pos,
        ),
        _ => return None,
    };
    literals.iter().enumerate().find_map(|(i, text)| {
        Pattern::regex(text.as_str()).check().err().map(|e| {
            let e = e
                .to_string()
                .replacen("pattern #0", &format!("pattern #{i}"), 1);
            Error::usage(format!("{}: {called}(): {e}", location(name, pos)))
        })
    })
}

/// `log(s.trim())`: the method returns `()`, so the value used is `()`.
fn check_in_place(name: &str, call: &FnCallExpr, pos: Position, path: &[ASTNode]) -> Option<Error> {
    let method = call.name.as_str();
    if !IN_PLACE.contains(&method) {
        return None;
    }
    // Up through the `a.b.method()` chain to what holds it.
    let holder = path
        .iter()
        .rev()
        .skip(1)
        .find(|node| !matches!(node, ASTNode::Expr(Expr::Dot(..))));
    // Only an expression statement (`s.trim();`) throws the value away.
    let used = !matches!(holder, None | Some(ASTNode::Stmt(Stmt::Expr(_))));
    used.then(|| {
        Error::usage(format!(
            "{}: {method}() changes the string in place and returns nothing, so its value \
             here is (); call it on its own first: `let s = …; s.{method}(…); log(s);` \
             (docs/scripts.md)",
            location(name, pos)
        ))
    })
}

/// The known name nearest `called` (at most two edits away), for a hint.
fn nearest<'a>(called: &str, known: &'a Known) -> Option<&'a str> {
    known
        .keys()
        .map(|k| (strsim::levenshtein(called, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.as_str())
}

/// Every function a run's engine has (the tool's API and Rhai's packages)
/// with its argument counts.
fn api() -> &'static Known {
    static API: OnceLock<Known> = OnceLock::new();
    API.get_or_init(|| std::thread::spawn(registered).join().unwrap_or_default())
}

/// Builds a run's engine over a session nothing answers and reads its
/// functions' signatures (`name(a: T, b: U) -> R`).
fn registered() -> Known {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return Known::new();
    };
    let _inside = runtime.enter();
    let (pipe, _other_end) = tokio::io::duplex(64);
    let transport = crate::transport::StreamTransport::new(pipe, "lint".into());
    let session = crate::expect::Session::new(
        Box::new(transport),
        crate::transcript::Recorder::disabled(),
        crate::expect::SessionOptions::default(),
    );
    let host = Rc::new(super::bindings::Host::new(
        "lint",
        session,
        super::Driver::Real(runtime.handle().clone()),
        super::ScriptInputs::default(),
        None,
    ));
    let mut engine = super::sandbox::sandboxed_engine();
    super::register_api(&mut engine, &host);
    let mut known = Known::new();
    for signature in engine.gen_fn_signatures(true) {
        if let Some((name, count)) = parse_signature(&signature) {
            known.entry(name).or_default().insert(count);
        }
    }
    known
}

/// `expect(list: Array, t: i64) -> Map` → ("expect", 2); the return type
/// may hold parentheses and commas of its own (`Result<(), Box<…>>`).
fn parse_signature(signature: &str) -> Option<(String, usize)> {
    let (name, rest) = signature.split_once('(')?;
    let (mut depth, mut count, mut any) = (0usize, 1, false);
    for c in rest.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' if depth == 0 => {
                return Some((name.trim().to_string(), if any { count } else { 0 }))
            }
            ')' | '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => count += 1,
            c if !c.is_whitespace() => any = true,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(source: &str) -> Result<()> {
        let engine = super::super::sandbox::sandboxed_engine();
        let ast = super::super::sandbox::compile(&engine, "t.rhai", source)?;
        check("t.rhai", &ast)
    }

    #[test]
    fn signatures_count_their_parameters_not_their_return_type() {
        let result = "core::result::Result<(),alloc::boxed::Box<rhai::EvalAltResult>>";
        assert_eq!(
            parse_signature(&format!("send_line() -> {result}")),
            Some(("send_line".into(), 0))
        );
        assert_eq!(
            parse_signature(&format!("login(_: string, _: string, _: f64) -> {result}")),
            Some(("login".into(), 3))
        );
        assert_eq!(
            parse_signature("trim(string: &mut string)"),
            Some(("trim".into(), 1))
        );
    }

    #[test]
    fn unknown_functions_and_wrong_counts_are_named_with_their_place() {
        let e = lint("send_line(\"x\");\nexpct(\"a\");")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.rhai:2:1: unknown function expct() (did you mean expect()?)"),
            "{e}"
        );
        let e = lint("expect(\"a\", 1, 2, 3);").unwrap_err().to_string();
        assert!(
            e.contains("expect() takes 1 or 2 argument(s), not 4"),
            "{e}"
        );
        // The API, Rhai's own functions and the script's are all known.
        lint(
            "fn twice(x) { x * 2 }\nlet n = twice(2);\nlog(`${n}`);\nlet m = parse_int(\"3\");\n\
              send_line(\"a\"); expect([\"a\", \"b\"], 5); login(\"u\", \"pw\"); run(\"id\"); \
              log(type_of(m)); mark(\"x\"); sleep(1); let t = timestamp();",
        )
        .unwrap();
    }

    #[test]
    fn a_pattern_literal_that_cannot_compile_is_an_error() {
        let e = lint("expect([\"ok\", \"(unclosed\"], 1);")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.rhai:1:8: expect(): pattern #1 /(unclosed/"),
            "{e}"
        );
        let e = lint("expect(\"[z-a]\");").unwrap_err().to_string();
        assert!(
            e.contains("t.rhai:1:8: expect(): pattern #0 /[z-a]/"),
            "{e}"
        );
        // Exact patterns are text, not regular expressions.
        lint("expect_exact(\"(unclosed\", 1);").unwrap();
    }

    #[test]
    fn an_in_place_method_used_for_its_value_is_an_error() {
        let e = lint("let s = \" a \";\nlog(s.trim());")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.rhai:2:7: trim() changes the string in place"),
            "{e}"
        );
        let e = lint("let r = #{output: \" a \"};\nlet x = r.output.trim();")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trim() changes the string in place"), "{e}");
        lint("let s = \" a \";\ns.trim();\nlog(s);\nlet r = #{o: \"x\"};\nr.o.replace(\"x\", \"y\");")
            .unwrap();
    }
}
