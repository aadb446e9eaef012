//! Initializer specs: `init = he_normal`, `init = normal(std = 0.01)`, `= ones` after a
//! `param`. Reads the name and arguments against the INITIALIZERS table, validates the
//! arguments (std > 0, low < high, gain > 0, fixup's branches >= 1 and layers >= 2) and,
//! given the parameter's shape, that the initializer applies to it (orthogonal,
//! delta_orthogonal and lsuv need rank >= 2, identity rank 2). Where an initializer may
//! appear (lsuv only as a Dense or Conv2d weight's `init`) is checked by the declarations.

use super::args::{describe, Args, Rule};
use super::model::Init;
use super::registry::{self, INITIALIZERS};
use super::suggest::did_you_mean;
use crate::diagnostic::Diagnostic;
use crate::syntax::ast::{Expr, ExprKind};

/// Largest branch or layer count of `fixup` (larger ones are clamped: the scale is 0 anyway).
const MAX_FIXUP: u64 = 1 << 30;

/// Reads an initializer spec; `None` after reporting what is wrong.
pub(crate) fn init_spec(e: &Expr, diags: &mut Vec<Diagnostic>) -> Option<Init> {
    let (callee, args) = match &e.kind {
        ExprKind::Name(n) => ((n.as_str(), e.span), &[][..]),
        ExprKind::Call { callee, args } => ((callee.name.as_str(), callee.span), &args[..]),
        _ => {
            diags.push(
                Diagnostic::error(
                    e.span,
                    format!("expected an initializer, found {}", describe(e)),
                )
                .label("not an initializer")
                .note("write e.g. `init = he_normal` or `init = normal(std = 0.01)`"),
            );
            return None;
        }
    };
    let (name, name_span) = callee;
    let Some(b) = registry::find(INITIALIZERS, name) else {
        let mut d = Diagnostic::error(name_span, format!("unknown initializer `{name}`"))
            .label("no initializer with this name");
        if let Some(s) = did_you_mean(name, registry::names(INITIALIZERS)) {
            d = d.note(s);
        }
        diags.push(d);
        return None;
    };
    let mut a = Args::bind(b, args, e.span, diags)?;
    let init = read(name, &mut a)?;
    let bad = !a.errors.is_empty();
    diags.append(&mut a.errors);
    if bad {
        return None;
    }
    if let Init::Fixup { layers, .. } = init {
        if layers < 2 {
            let at = a.get("layers").map_or(e.span, |x| x.value.span);
            diags.push(
                Diagnostic::error(
                    at,
                    format!("fixup needs at least 2 layers per branch, found {layers}"),
                )
                .label("the scale branches^(-1/(2 layers - 2)) needs layers >= 2")
                .note("a branch's last layer is initialized to zeros: write `init = zeros` for it"),
            );
            return None;
        }
    }
    if let Init::Uniform { low, high } = init {
        if low >= high {
            diags.push(
                Diagnostic::error(
                    e.span,
                    format!("uniform needs low < high, found ({low}, {high})"),
                )
                .label("empty range"),
            );
            return None;
        }
    }
    Some(init)
}

/// The initializer `name` with its validated arguments (errors collected in `a`).
fn read(name: &str, a: &mut Args) -> Option<Init> {
    Some(match name {
        "default" => Init::Default,
        "zeros" => Init::Zeros,
        "ones" => Init::Ones,
        "constant" => Init::Constant(a.num("c", 0.0, Rule::Finite)),
        "normal" => Init::Normal {
            mean: a.num("mean", 0.0, Rule::Finite),
            std: a.num("std", 1.0, Rule::Positive),
        },
        "uniform" => Init::Uniform {
            low: a.num("low", -1.0, Rule::Finite),
            high: a.num("high", 1.0, Rule::Finite),
        },
        "truncated_normal" => Init::TruncatedNormal {
            mean: a.num("mean", 0.0, Rule::Finite),
            std: a.num("std", 1.0, Rule::Positive),
        },
        "xavier_uniform" => Init::XavierUniform { gain: a.num("gain", 1.0, Rule::Positive) },
        "xavier_normal" => Init::XavierNormal { gain: a.num("gain", 1.0, Rule::Positive) },
        "he_uniform" | "kaiming_uniform" => Init::HeUniform,
        "he_normal" | "kaiming_normal" => Init::HeNormal,
        "lecun_uniform" => Init::LecunUniform,
        "lecun_normal" => Init::LecunNormal,
        "orthogonal" => Init::Orthogonal { gain: a.num("gain", 1.0, Rule::Positive) },
        "identity" => Init::Identity,
        "delta_orthogonal" => Init::DeltaOrthogonal { gain: a.num("gain", 1.0, Rule::Positive) },
        "fixup" => Init::Fixup {
            branches: a.int("branches", 1, 1).min(MAX_FIXUP) as u32,
            layers: a.int("layers", 2, 1).min(MAX_FIXUP) as u32,
        },
        "lsuv" => Init::Lsuv,
        _ => return None,
    })
}

/// Whether `init` applies to a parameter of `shape`; the reason if not.
pub(crate) fn fits(init: &Init, shape: &[usize]) -> Result<(), String> {
    match init {
        Init::Orthogonal { .. } if shape.len() < 2 => {
            Err("orthogonal needs a parameter with at least 2 dimensions".to_string())
        }
        Init::DeltaOrthogonal { .. } if shape.len() < 2 => Err(
            "delta_orthogonal needs a parameter with at least 2 dimensions ([out, in, taps...])"
                .to_string(),
        ),
        Init::Lsuv if shape.len() < 2 => {
            Err("lsuv needs a parameter with at least 2 dimensions".to_string())
        }
        Init::Identity if shape.len() != 2 => {
            Err("identity needs a matrix parameter (2 dimensions)".to_string())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_initializer_in_the_table_is_implemented() {
        use crate::syntax::ast::Arg;
        let one =
            Expr { kind: ExprKind::Number { value: 1.0, int: true }, span: Default::default() };
        for b in INITIALIZERS {
            let required = b.params.iter().filter(|p| p.default.is_none()).count();
            let args: Vec<Arg> = (0..required)
                .map(|_| Arg { name: None, value: one.clone(), span: one.span })
                .collect();
            let mut diags = Vec::new();
            let mut a = Args::bind(b, &args, Default::default(), &mut diags).unwrap();
            assert!(read(b.name, &mut a).is_some(), "{}", b.name);
        }
    }

    #[test]
    fn shapes_that_an_initializer_cannot_fill() {
        assert!(fits(&Init::Identity, &[4, 4]).is_ok());
        assert!(fits(&Init::Identity, &[4]).is_err());
        assert!(fits(&Init::Orthogonal { gain: 1.0 }, &[8]).is_err());
        assert!(fits(&Init::DeltaOrthogonal { gain: 1.0 }, &[8]).is_err());
        assert!(fits(&Init::DeltaOrthogonal { gain: 1.0 }, &[8, 4, 3]).is_ok());
        assert!(fits(&Init::HeNormal, &[8]).is_ok());
    }
}
