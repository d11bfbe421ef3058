//! The Rhai engine every script runs in, and compiling scripts with errors
//! that point at file, line and column.
//!
//! Rhai itself has no file, process or network access; this module closes
//! the remaining doors and bounds the work a script can do:
//! - `import` is a disabled keyword (a compile error `lint` reports), and
//!   behind that a module resolver that resolves nothing, so a script cannot
//!   load code from disk;
//! - `eval` is disabled, so all code is visible to `lint`;
//! - undeclared variables are compile errors (strict mode), so `lint` finds
//!   typos before a console is touched;
//! - operations, call depth, expression depth and string/array/map sizes
//!   are limited (see [`SandboxLimits`]), so a runaway loop ends with an error
//!   instead of hanging a rescue session;
//! - the heap a script grows is bounded by [`super::memory::SCRIPT_BUDGET`]
//!   (Rhai bounds each value, not their sum), and `log()` by
//!   [`MAX_LOG_LINES`] and [`MAX_LOG_BYTES`]: hitting a cap is a script
//!   error at the line that hit it (exit 2), never an abort.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Module, ParseError, Position, AST};

use crate::error::{Error, Result};

/// The sandbox's resource limits.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Rhai operations per run (a waiting `expect` costs one, not one per byte).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Nesting depth of expressions (and of expressions inside functions).
    pub max_expr_depth: usize,
    /// Characters in one string; above the session's 1 MiB match buffer so
    /// any `before` text fits.
    pub max_string_size: usize,
    /// Elements in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
}

/// The limits scripts run with.
pub const LIMITS: SandboxLimits = SandboxLimits {
    max_operations: 50_000_000,
    max_call_levels: 64,
    max_expr_depth: 64,
    max_string_size: 4 * 1024 * 1024,
    max_array_size: 100_000,
    max_map_size: 10_000,
};

/// Most `log()` lines one run keeps (each is also a transcript marker).
pub const MAX_LOG_LINES: usize = 100_000;
/// Most bytes of `log()` text one run keeps.
pub const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

/// The token a script is terminated with when it exceeds its memory budget.
pub const OUT_OF_MEMORY: &str = "memory budget exceeded";

/// Largest script file accepted.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

/// A module resolver that refuses every `import`.
struct NoImports;

impl rhai::ModuleResolver for NoImports {
    fn resolve(
        &self,
        _engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> std::result::Result<Rc<Module>, Box<EvalAltResult>> {
        Err(Box::new(EvalAltResult::ErrorRuntime(
            format!(
                "import {path:?} refused: scripts cannot load modules or files; \
                 put the code in the script itself"
            )
            .into(),
            pos,
        )))
    }
}

/// A Rhai engine with the sandbox applied and no console functions yet.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(NoImports);
    engine.disable_symbol("eval");
    engine.disable_symbol("import");
    engine.set_strict_variables(true);
    engine.set_max_operations(LIMITS.max_operations);
    engine.set_max_call_levels(LIMITS.max_call_levels);
    engine.set_max_expr_depths(LIMITS.max_expr_depth, LIMITS.max_expr_depth);
    engine.set_max_string_size(LIMITS.max_string_size);
    engine.set_max_array_size(LIMITS.max_array_size);
    engine.set_max_map_size(LIMITS.max_map_size);
    // The count runs as long as the engine does (its closure holds the
    // guard), from before the baseline is taken.
    let counting = super::memory::Counting::start();
    let baseline = super::memory::live_bytes();
    engine.on_progress(move |_| {
        let _counting = &counting;
        let grown = super::memory::live_bytes().saturating_sub(baseline);
        (grown > super::memory::SCRIPT_BUDGET as isize).then(|| Dynamic::from(OUT_OF_MEMORY))
    });
    // Until the console functions route them, print and debug go nowhere
    // rather than to the process's stdout.
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    register_var_syntax(&mut engine, |name, _, pos| {
        Err(Box::new(EvalAltResult::ErrorRuntime(
            format!("var({name:?}): no variables in this engine").into(),
            pos,
        )))
    });
    engine
}

/// Makes `var(name)` and `var(name, default)` callable.
///
/// `var` is a reserved keyword in Rhai, so it cannot be an ordinary
/// function; the script API promises it, so it is custom syntax instead:
/// `var` `(` expr [`,` expr] `)`. Registering again replaces the lookup.
pub fn register_var_syntax(
    engine: &mut Engine,
    lookup: impl Fn(&str, Option<Dynamic>, Position) -> Result<Dynamic, Box<EvalAltResult>> + 'static,
) {
    engine.register_custom_syntax_with_state_raw(
        "var",
        |symbols: &[ImmutableString], look_ahead: &str, _state: &mut Dynamic| {
            let next = match (symbols.len(), symbols.get(3).map(|s| s.as_str())) {
                (1, _) => Some("("),
                (2, _) | (4, Some(",")) => Some("$expr$"),
                (3, _) if look_ahead == "," => Some(","),
                (3, _) | (5, _) => Some(")"),
                _ => None,
            };
            Ok(next.map(ImmutableString::from))
        },
        false,
        move |context, inputs, _state| {
            let pos = inputs[0].position();
            let name = context.eval_expression_tree(&inputs[0])?;
            let Some(name) = name.read_lock::<ImmutableString>().map(|s| s.to_string()) else {
                return Err(Box::new(EvalAltResult::ErrorRuntime(
                    format!(
                        "var() takes the variable's name as a string, not a {}",
                        name.type_name()
                    )
                    .into(),
                    pos,
                )));
            };
            let default = match inputs.get(1) {
                Some(expr) => Some(context.eval_expression_tree(expr)?),
                None => None,
            };
            lookup(&name, default, pos)
        },
    );
}

/// Compiles `source`, naming the script `name` in errors; a number written
/// in the script that a call cannot take is an error here, before the run.
pub fn compile(engine: &Engine, name: &str, source: &str) -> Result<AST> {
    let mut ast = engine.compile(source).map_err(|e| parse_error(name, &e))?;
    ast.set_source(name);
    check_literal_seconds(name, &ast)?;
    Ok(ast)
}

/// Longest wait a script may ask for, in seconds (one day): a timeout or a
/// `sleep`.
pub const MAX_WAIT_SECS: f64 = 86_400.0;

/// Which argument of a call is a number of seconds, and whether 0 is fine
/// (`sleep(0)` does nothing; a timeout of 0 could never match).
const SECONDS_ARGUMENTS: &[(&str, usize, bool)] = &[
    ("sleep", 0, true),
    ("expect", 1, false),
    ("expect_exact", 1, false),
    ("expect_screen", 1, false),
    ("run", 1, false),
    ("sudo", 1, false),
    ("login", 2, false),
];

/// The range check the calls make at run time, made on the literals `lint`
/// can see (`sleep(1e300)`, `expect("x", -1)`).
fn check_literal_seconds(name: &str, ast: &AST) -> Result<()> {
    use rhai::{ASTNode, Expr, Stmt};
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        // A call is an expression, or a statement of its own (`sleep(1);`).
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, _))) => call,
            Some(ASTNode::Stmt(Stmt::FnCall(call, _))) => call,
            _ => return true,
        };
        let Some(&(_, index, zero_ok)) = SECONDS_ARGUMENTS
            .iter()
            .find(|(f, _, _)| *f == call.name.as_str())
        else {
            return true;
        };
        let (secs, pos) = match call.args.get(index) {
            Some(Expr::IntegerConstant(i, pos)) => (*i as f64, *pos),
            Some(Expr::FloatConstant(f, pos)) => (**f, *pos),
            _ => return true,
        };
        if seconds_in_range(secs, zero_ok) {
            return true;
        }
        found = Some(Error::usage(format!(
            "{}: {}: {} seconds is out of range; give {} and at most {MAX_WAIT_SECS}",
            location(name, pos),
            call.name,
            shown_seconds(secs),
            if zero_ok { "0 or more" } else { "more than 0" },
        )));
        false
    });
    found.map_or(Ok(()), Err)
}

/// `secs` as a person writes it: `1e300`, not 301 digits.
pub fn shown_seconds(secs: f64) -> String {
    if secs.is_finite() && secs.abs() < 1e9 {
        format!("{secs}")
    } else {
        format!("{secs:e}")
    }
}

/// Whether `secs` is a wait a call can take ([`MAX_WAIT_SECS`] at most).
pub fn seconds_in_range(secs: f64, zero_ok: bool) -> bool {
    secs.is_finite() && (secs > 0.0 || (zero_ok && secs == 0.0)) && secs <= MAX_WAIT_SECS
}

/// Reads a script file, refusing huge or non-UTF-8 files with a clear error.
pub fn read_script(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the script {}: {e}; check the path",
            path.display()
        ))
    })?;
    if bytes.len() > MAX_SCRIPT_BYTES {
        return Err(Error::usage(format!(
            "the script {} is {} bytes; scripts may be at most {MAX_SCRIPT_BYTES} bytes",
            path.display(),
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::usage(format!(
            "the script {} is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `file:line:column` for a position (`file` alone when it has none).
pub fn location(name: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), Some(column)) => format!("{name}:{line}:{column}"),
        (Some(line), None) => format!("{name}:{line}"),
        _ => name.to_string(),
    }
}

fn parse_error(name: &str, e: &ParseError) -> Error {
    Error::usage(format!(
        "{}: syntax error: {}",
        location(name, e.position()),
        e.err_type()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(source: &str) -> std::result::Result<(), String> {
        compile(&sandboxed_engine(), "t.rhai", source)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = lint("let a = 1;\nlet b = ;\n").unwrap_err();
        assert!(err.starts_with("t.rhai:2:"), "{err}");
    }

    #[test]
    fn undeclared_variables_are_compile_errors() {
        let err = lint("let user = 1;\nuser + usr;").unwrap_err();
        assert!(err.starts_with("t.rhai:2:8"), "{err}");
        assert!(err.contains("usr"), "{err}");
    }

    #[test]
    fn var_is_callable_with_and_without_a_default() {
        assert!(lint("let a = var(\"a\");\nlet b = var(\"b\", a);").is_ok());
        let err = lint("let a = var(\"a\" \"b\");").unwrap_err();
        assert!(err.starts_with("t.rhai:1:"), "{err}");
        let mut engine = sandboxed_engine();
        register_var_syntax(&mut engine, |name, default, _| {
            Ok(default.unwrap_or_else(|| format!("<{name}>").into()))
        });
        let got: String = engine.eval("var(\"x\") + var(\"y\", \"-\" + 1)").unwrap();
        assert_eq!(got, "<x>-1");
    }

    #[test]
    fn eval_is_not_available() {
        assert!(lint("eval(\"1\")").is_err());
    }

    #[test]
    fn imports_are_compile_errors() {
        let err = lint("let a = 1;\nimport \"/etc/passwd\" as p;").unwrap_err();
        assert!(err.starts_with("t.rhai:2:1"), "{err}");
        assert!(err.contains("import"), "{err}");
    }

    #[test]
    fn the_module_resolver_refuses_everything() {
        let mut engine = Engine::new();
        engine.set_module_resolver(NoImports);
        let ast = engine.compile("import \"/etc/passwd\" as p;").unwrap();
        let err = engine.run_ast(&ast).unwrap_err().to_string();
        assert!(err.contains("refused"), "{err}");
    }

    #[test]
    fn runaway_loops_hit_the_operations_limit() {
        let engine = sandboxed_engine();
        let ast = compile(&engine, "t.rhai", "loop { }").unwrap();
        let err = engine.run_ast(&ast).unwrap_err();
        assert!(
            matches!(*err, EvalAltResult::ErrorTooManyOperations(..)),
            "{err}"
        );
    }

    #[test]
    fn deep_recursion_hits_the_call_depth_limit() {
        let engine = sandboxed_engine();
        let ast = compile(&engine, "t.rhai", "fn f(n) { f(n + 1) } f(0);").unwrap();
        let err = engine.run_ast(&ast).unwrap_err();
        assert!(
            matches!(*err, EvalAltResult::ErrorStackOverflow(..)),
            "{err}"
        );
    }

    #[test]
    fn huge_strings_are_refused() {
        let engine = sandboxed_engine();
        let ast = compile(&engine, "t.rhai", "let s = \"x\"; loop { s += s; }").unwrap();
        let err = engine.run_ast(&ast).unwrap_err();
        assert!(
            matches!(*err, EvalAltResult::ErrorDataTooLarge(..)),
            "{err}"
        );
    }
}
