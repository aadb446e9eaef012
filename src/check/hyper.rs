//! Hyper-parameters: the `optimizer` (`optim`), `schedule` (`sched`), `clip` and
//! `train { ... }` items, read against the registry tables with PyTorch's defaults and
//! validation rules, and the check that a `data` set fits the model's `input` and `label`.
//!
//! | item      | rules                                                                    |
//! |-----------|--------------------------------------------------------------------------|
//! | optimizer | see `optim` (PyTorch's checks per hyper-parameter; groups)               |
//! | schedule  | see `sched` (every part but the last must end)                           |
//! | clip      | c > 0                                                                    |
//! | train     | batch, epochs, steps >= 1; seed >= 0; validation in [0, 1);              |
//! |           | scale_lr a positive number, `batch / N` or `sqrt(batch / N)`             |
//! | synthetic | n >= 1, noise >= 0                                                       |

use super::args::{describe, Args, Rule};
use super::model::{Clip, DataSpec, ModelInput, Optimizer, Schedule, Synthetic, TrainSpec};
use super::registry::{self, Builtin, CLIPS, DATASETS, TRAIN_SETTINGS};
use super::shapes::show;
use super::suggest::did_you_mean;
use super::Items;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, InputKind};
use crate::syntax::ast::{Arg, Expr, ExprKind, Stmt};

/// The validated hyper-parameter items, with defaults for those not written.
pub(crate) struct Hyper {
    /// `None` when missing or invalid (reported).
    pub optimizer: Option<Optimizer>,
    pub schedule: Schedule,
    pub clip: Option<Clip>,
    pub train: TrainSpec,
}

pub(crate) fn check_hyper(items: &Items, diags: &mut Vec<Diagnostic>) -> Hyper {
    let label = items.model.and_then(|m| {
        m.body.iter().find_map(|s| match s {
            Stmt::Label { name, .. } => Some(name.name.as_str()),
            _ => None,
        })
    });
    let optimizer = items.optimizer.and_then(|e| super::optim::optimizer(e, items.groups, diags));
    if let (Some(o), Some(e)) = (&optimizer, items.optimizer) {
        super::optim::host_driven_conflicts(o, e, items.clip, diags);
    }
    Hyper {
        optimizer,
        schedule: items
            .schedule
            .map_or_else(Schedule::default, |(parts, _)| super::sched::schedule(parts, diags)),
        clip: items.clip.and_then(|e| clip(e, diags)),
        train: items.train.map_or_else(default_train, |(s, _)| train(s, label, diags)),
    }
}

/// A spec written `name` or `name(args)`: its name, the name's span and the arguments.
pub(super) fn spec<'e>(
    e: &'e Expr,
    what: &str,
    example: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(&'e str, Span, &'e [Arg])> {
    match &e.kind {
        ExprKind::Name(n) => Some((n, e.span, &[])),
        ExprKind::Call { callee, args } => Some((&callee.name, callee.span, args)),
        _ => {
            diags.push(
                Diagnostic::error(e.span, format!("expected {what}, found {}", describe(e)))
                    .label(format!("not {what}"))
                    .note(format!("write e.g. `{example}`")),
            );
            None
        }
    }
}

/// `name` in `table`, or an "unknown ..." diagnostic with a suggestion.
pub(super) fn lookup(
    table: &'static [Builtin],
    what: &str,
    name: &str,
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'static Builtin> {
    if let Some(b) = registry::find(table, name) {
        return Some(b);
    }
    let mut d = Diagnostic::error(span, format!("unknown {what} `{name}`"))
        .label(format!("no {what} with this name"));
    if let Some(s) = did_you_mean(name, registry::names(table)) {
        d = d.note(s);
    }
    let all: Vec<&str> = registry::names(table).collect();
    diags.push(d.note(format!("available: {}", all.join(", "))));
    None
}

/// Moves `a`'s value errors to `diags`; `Some(v)` if there were none.
pub(super) fn done<T>(mut a: Args, v: T, diags: &mut Vec<Diagnostic>) -> Option<T> {
    let ok = a.errors.is_empty();
    diags.append(&mut a.errors);
    ok.then_some(v)
}

/// `global_norm(c)` or `value(c)`, globally or in a parameter group.
pub(super) fn clip(e: &Expr, diags: &mut Vec<Diagnostic>) -> Option<Clip> {
    let (name, span, args) = spec(e, "a clipping rule", "clip global_norm(1.0)", diags)?;
    let b = lookup(CLIPS, "clipping rule", name, span, diags)?;
    let mut a = Args::bind(b, args, e.span, diags)?;
    let c = a.num("c", 1.0, Rule::Positive);
    let clip = if name == "global_norm" { Clip::GlobalNorm(c) } else { Clip::Value(c) };
    done(a, clip, diags)
}

fn default_train() -> TrainSpec {
    TrainSpec {
        data: None,
        batch: 32,
        epochs: None,
        steps: None,
        seed: 0,
        shuffle: true,
        validation: 0.0,
        scale_lr: None,
        split_seed: None,
    }
}

/// The `train { key = value, ... }` settings; every setting is a keyword of TRAIN_SETTINGS.
fn train(settings: &[Arg], label: Option<&str>, diags: &mut Vec<Diagnostic>) -> TrainSpec {
    let mut seen: Vec<(&str, Span)> = Vec::new();
    let mut kept: Vec<Arg> = Vec::new();
    for s in settings {
        let Some(key) = &s.name else {
            diags.push(
                Diagnostic::error(s.span, "train settings are written `key = value`")
                    .label("missing `key =`")
                    .note("e.g. `train { data = xor(n = 200), batch = 32, epochs = 10 }`"),
            );
            continue;
        };
        if registry::find(TRAIN_SETTINGS, &key.name).is_none() {
            let mut d =
                Diagnostic::error(key.span, format!("unknown train setting `{}`", key.name))
                    .label("not a train setting");
            if let Some(sug) = did_you_mean(&key.name, registry::names(TRAIN_SETTINGS)) {
                d = d.note(sug);
            }
            let all: Vec<&str> = registry::names(TRAIN_SETTINGS).collect();
            diags.push(d.note(format!("settings: {}", all.join(", "))));
            continue;
        }
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key.name) {
            diags.push(
                Diagnostic::error(s.span, format!("`{}` given twice", key.name))
                    .label("given again here")
                    .secondary(*first, "first given here"),
            );
            continue;
        }
        seen.push((&key.name, s.span));
        kept.push(s.clone());
    }
    read_train(&kept, label, diags)
}

const TRAIN: Builtin = Builtin {
    name: "train",
    params: &[
        registry::Param { name: "data", default: Some("none") },
        registry::Param { name: "batch", default: Some("32") },
        registry::Param { name: "epochs", default: Some("1") },
        registry::Param { name: "steps", default: Some("none") },
        registry::Param { name: "seed", default: Some("0") },
        registry::Param { name: "shuffle", default: Some("true") },
        registry::Param { name: "validation", default: Some("0") },
        registry::Param { name: "scale_lr", default: Some("none") },
        registry::Param { name: "split_seed", default: Some("none") },
    ],
    doc: "train settings",
};

fn read_train(settings: &[Arg], label: Option<&str>, diags: &mut Vec<Diagnostic>) -> TrainSpec {
    let mut spec = default_train();
    let Some(mut a) = Args::bind(&TRAIN, settings, Span::default(), diags) else { return spec };
    spec.batch = a.int("batch", 32, 1) as usize;
    spec.epochs = a.get("epochs").map(|_| a.int("epochs", 1, 1) as usize);
    spec.steps = a.get("steps").map(|_| a.int("steps", 1, 1) as usize);
    spec.seed = a.int("seed", 0, 0);
    spec.shuffle = a.boolean("shuffle", true);
    spec.validation = a.num("validation", 0.0, Rule::UnitOpen);
    spec.split_seed = a.get("split_seed").map(|_| a.int("split_seed", 0, 0));
    spec.data = a.get("data").and_then(|d| data(&d.value, label, diags));
    if let Some(arg) = a.get("scale_lr") {
        spec.scale_lr = super::sched::scale_lr(&arg.value, &mut a.errors);
    }
    diags.append(&mut a.errors);
    spec
}

fn data(e: &Expr, label: Option<&str>, diags: &mut Vec<Diagnostic>) -> Option<DataSpec> {
    let (name, span, args) =
        spec(e, "a data set", "data = csv(\"train.csv\", label = \"y\")", diags)?;
    let b = lookup(DATASETS, "data set", name, span, diags)?;
    let mut a = Args::bind(b, args, e.span, diags)?;
    let span = e.span;
    let spec = match name {
        "csv" => {
            let path = a.string("path", None);
            let label = a.string("label", label);
            if label.is_none() && a.get("label").is_none() {
                a.errors.push(
                    Diagnostic::error(span, "csv needs the label column: `label = \"name\"`")
                        .label("which column holds the label?")
                        .note("by default it is the name of the model's `label`, but the model has none"),
                );
            }
            DataSpec::Csv { path: path.unwrap_or_default(), label: label.unwrap_or_default(), span }
        }
        "npz" => DataSpec::Npz {
            path: a.string("path", None).unwrap_or_default(),
            x: a.string("x", Some("x")).unwrap_or_default(),
            y: a.string("y", Some("y")).unwrap_or_default(),
            span,
        },
        "npy" => DataSpec::Npy {
            x: a.string("x", None).unwrap_or_default(),
            y: a.string("y", None).unwrap_or_default(),
            span,
        },
        "idx" => DataSpec::Idx {
            images: a.string("images", None).unwrap_or_default(),
            labels: a.string("labels", None).unwrap_or_default(),
            span,
        },
        _ => {
            let n = a.int("n", 200, 1) as usize;
            let noise = a.num("noise", 0.1, Rule::NonNegative);
            DataSpec::Synthetic { kind: synthetic(name)?, n, noise, span }
        }
    };
    done(a, spec, diags)
}

fn synthetic(name: &str) -> Option<Synthetic> {
    Some(match name {
        "xor" => Synthetic::Xor,
        "spirals" => Synthetic::Spirals,
        "moons" => Synthetic::Moons,
        "blobs" => Synthetic::Blobs,
        "teacher" => Synthetic::Teacher,
        "random" => Synthetic::Random,
        "linear" => Synthetic::Linear,
        "tokens" => Synthetic::Tokens,
        _ => return None,
    })
}

/// Checks that `data` can feed the model: exactly one `input` and one `label`, shaped as
/// the data set produces them. `batch` is the user's batch symbol, for messages.
pub(crate) fn check_data_fit(
    data: &DataSpec,
    inputs: &[ModelInput],
    batch: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let span = data_span(data);
    let features: Vec<&ModelInput> = inputs.iter().filter(|i| !i.is_label).collect();
    let labels: Vec<&ModelInput> = inputs.iter().filter(|i| i.is_label).collect();
    let mut ok = true;
    for (list, what) in [(&features, "input"), (&labels, "label")] {
        if list.len() != 1 {
            let mut d = Diagnostic::error(
                span,
                format!("`data` feeds exactly one `{what}`, but the model declares {}", list.len()),
            )
            .label("this data set");
            for i in list {
                d = d.secondary(i.span, format!("`{}` declared here", i.name));
            }
            diags.push(d);
            ok = false;
        }
    }
    if !ok {
        return;
    }
    let fit = Fit { span, batch, x: features[0], y: labels[0] };
    if let Err(d) = fit.check(data) {
        diags.push(d);
    }
}

fn data_span(data: &DataSpec) -> Span {
    match data {
        DataSpec::Csv { span, .. }
        | DataSpec::Npz { span, .. }
        | DataSpec::Npy { span, .. }
        | DataSpec::Idx { span, .. }
        | DataSpec::Synthetic { span, .. } => *span,
    }
}

/// One data set against the model's one input `x` and one label `y`.
struct Fit<'a> {
    span: Span,
    batch: &'a str,
    x: &'a ModelInput,
    y: &'a ModelInput,
}

impl Fit<'_> {
    fn check(&self, data: &DataSpec) -> Result<(), Diagnostic> {
        let kind = match data {
            DataSpec::Npz { .. } | DataSpec::Npy { .. } | DataSpec::Idx { .. } => return Ok(()),
            DataSpec::Csv { .. } => {
                self.rows("csv")?;
                return match self.y.kind {
                    InputKind::Classes(_) => Ok(()),
                    _ if self.y.shape.0 == [Dim::Batch, Dim::Fixed(1)] => Ok(()),
                    _ => {
                        Err(self.bad_y("csv gives one label column", "`class[B] of C` or `[B,1]`"))
                    }
                };
            }
            DataSpec::Synthetic { kind, .. } => *kind,
        };
        let name = synthetic_name(kind);
        // Random features fill any per-example shape (images included).
        let any_shape = self.x.shape.0.len() > 2 && self.x.shape.0[0] == Dim::Batch;
        if kind == Synthetic::Random && any_shape && self.x.kind == InputKind::Features {
            return self.random_labels();
        }
        let f = self.rows(name)?;
        match (self.x.kind, kind) {
            (InputKind::Classes(v), Synthetic::Tokens) => return self.tokens(v),
            (InputKind::Classes(_), Synthetic::Random) => {}
            (InputKind::Classes(_), _) => {
                let x = &self.x.name;
                let msg = format!("{name} makes real-valued features, but `{x}` holds ids");
                return Err(self.error(msg, self.x));
            }
            (_, Synthetic::Tokens) => {
                let (x, b) = (&self.x.name, self.batch);
                let msg = format!("tokens makes ids, but `{x}` is real-valued");
                let note = format!("declare the ids as `input {x}: class[{b}, {f}] of V`");
                return Err(self.error(msg, self.x).note(note));
            }
            _ => {}
        }
        match kind {
            Synthetic::Xor | Synthetic::Moons | Synthetic::Spirals if f != 2 => Err(self
                .error(format!("{name} makes 2 features, but `{}` has {f}", self.x.name), self.x)),
            Synthetic::Xor | Synthetic::Moons => match self.y.kind {
                InputKind::Classes(2) => Ok(()),
                InputKind::Classes(c) => Err(self.error(
                    format!("{name} makes 2 classes, but `{}` has {c}", self.y.name),
                    self.y,
                )),
                _ if self.y.shape.0 == [Dim::Batch, Dim::Fixed(1)] => Ok(()),
                _ => Err(self.bad_y(
                    &format!("{name} makes one label per row"),
                    "`class[B] of 2` or `[B,1]`",
                )),
            },
            Synthetic::Spirals | Synthetic::Blobs => match self.y.kind {
                InputKind::Classes(_) => Ok(()),
                _ => Err(self.error(
                    format!(
                        "{name} needs class labels `class[{}] of C`, but `{}` is real-valued {}",
                        self.batch,
                        self.y.name,
                        show(&self.y.shape, self.batch)
                    ),
                    self.y,
                )),
            },
            Synthetic::Teacher | Synthetic::Linear => match self.y.kind {
                InputKind::Classes(_) => Err(self.error(
                    format!(
                        "{name} makes real-valued targets `[{}, T]`, but `{}` holds class labels",
                        self.batch, self.y.name
                    ),
                    self.y,
                )),
                _ if self.y.shape.rank() == 2 => Ok(()),
                _ => {
                    let what = format!("{name} makes target rows");
                    Err(self.bad_y(&what, &format!("`[{}, T]`", self.batch)))
                }
            },
            Synthetic::Tokens => self.tokens(0),
            Synthetic::Random => self.random_labels(),
        }
    }

    /// `random`'s labels: classes or target rows.
    fn random_labels(&self) -> Result<(), Diagnostic> {
        match self.y.kind {
            InputKind::Classes(_) => Ok(()),
            _ if self.y.shape.rank() == 2 => Ok(()),
            _ => Err(self.bad_y(
                "random makes class labels or target rows",
                &format!("`class[{b}] of C` or `[{b}, T]`", b = self.batch),
            )),
        }
    }

    /// The input must be feature rows `[B, F]`; returns F.
    fn rows(&self, name: &str) -> Result<u32, Diagnostic> {
        match self.x.shape.0[..] {
            [Dim::Batch, Dim::Fixed(f)] => Ok(f),
            _ => Err(self.error(
                format!(
                    "{name} makes feature rows `[{}, F]`, but `{}` is {}",
                    self.batch,
                    self.x.name,
                    show(&self.x.shape, self.batch)
                ),
                self.x,
            )),
        }
    }

    /// `tokens` for ids in `0..v`: class labels, no more classes than ids.
    fn tokens(&self, v: u32) -> Result<(), Diagnostic> {
        match self.y.kind {
            InputKind::Classes(c) if c <= v => Ok(()),
            InputKind::Classes(c) => {
                let x = &self.x.name;
                let msg =
                    format!("tokens gives each of {c} classes its own ids, but `{x}` has {v}");
                Err(self.error(msg, self.x))
            }
            _ => Err(self.bad_y("tokens makes one class label per row", "`class[B] of C`")),
        }
    }

    fn bad_y(&self, what: &str, expected: &str) -> Diagnostic {
        let shown = match self.y.kind {
            InputKind::Classes(c) => format!("`class[{}] of {c}`", self.batch),
            _ => show(&self.y.shape, self.batch),
        };
        self.error(format!("{what}: `{}` must be {expected}, but is {shown}", self.y.name), self.y)
    }

    fn error(&self, message: String, at: &ModelInput) -> Diagnostic {
        Diagnostic::error(self.span, message)
            .label("this data set")
            .secondary(at.span, format!("`{}` declared here", at.name))
    }
}

fn synthetic_name(kind: Synthetic) -> &'static str {
    match kind {
        Synthetic::Xor => "xor",
        Synthetic::Spirals => "spirals",
        Synthetic::Moons => "moons",
        Synthetic::Blobs => "blobs",
        Synthetic::Teacher => "teacher",
        Synthetic::Random => "random",
        Synthetic::Linear => "linear",
        Synthetic::Tokens => "tokens",
    }
}
