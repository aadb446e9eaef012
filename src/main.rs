//! The `nnc` command line: parses arguments with clap (`cli::args`) and calls the library;
//! the larger subcommands live in `cli/`. Exit codes: 0 success, 1 a user error (rendered
//! diagnostic or message), 2 a usage error.

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::args::{BenchBackendArg, Cli, Command, StageArg};
use cli::*;
use nnc::bench;
use nnc::diagnostic::render_all_with;
use nnc::pipeline::{self, IrError, Stage};
use nnc::syntax::ast;
use nnc::tensor::Tensor;
use nnc::train::session::{self, BackendKind, Options};
use nnc::train::{checkpoint as ckpt, data, report, weights};

/// Output cut short by the reader (`nnc ir … | head`) ends the process quietly, as other
/// command-line tools do, instead of a panic on the failed write: Rust ignores SIGPIPE by
/// default, this restores the default action.
#[cfg(unix)]
fn quiet_broken_pipe() {
    // SAFETY: setting a signal's disposition to its default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    quiet_broken_pipe();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Diagnostics { file, src, flags, diags }) => {
            eprint!("{}", render_all_with(&diags, &file.display().to_string(), &src, &flags));
            ExitCode::from(1)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e}");
            // As a shell reports a run that SIGINT ended.
            let interrupted = matches!(e, nnc::error::Error::Interrupted { .. });
            ExitCode::from(if interrupted { 130 } else { 1 })
        }
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::List { what } => {
            use nnc::check::registry;
            let words: Vec<String> = match what {
                Some(w) => vec![w],
                None => registry::list_words().into_iter().map(String::from).collect(),
            };
            let tables: Vec<String> = words
                .iter()
                .filter_map(|w| registry::list(w))
                .map(|(title, table)| registry::render(title, table))
                .collect();
            print!("{}", tables.join("\n"));
            Ok(())
        }
        Command::Check { file, no_data, sets } => {
            let run = RunArgs { data: None, batch: None, seed: None, sets };
            let c = compile_to_evaluate(&file, &run, None)?;
            let m = &c.model;
            // The data first: `ok` is printed only for a file whose data fits too.
            let data = match !no_data && m.train.data.is_some() {
                true => Some(session::load_data(m, &m.train, base_dir(&file), None)?),
                false => None,
            };
            println!("model {}: ok", m.name);
            let w = m.params.iter().map(|p| p.name.len()).max().unwrap_or(0).max(9);
            let shapes: Vec<String> = m.params.iter().map(|p| format!("{:?}", p.shape)).collect();
            let sw = shapes.iter().map(String::len).max().unwrap_or(0).max(12);
            println!("  {:w$}  {:>sw$}  {:>10}", "parameter", "shape", "count");
            for (p, shape) in m.params.iter().zip(&shapes) {
                let count = p.shape.iter().product::<usize>();
                println!("  {:w$}  {:>sw$}  {:>10}", p.name, shape, count);
            }
            println!("  {} parameters in {} tensors", m.param_count(), m.params.len());
            for b in &m.buffers {
                println!("  buffer {} {:?}", b.name, b.shape);
            }
            if !c.ast.items.iter().any(|i| matches!(i, ast::Item::Optimizer { .. })) {
                println!("  no optimizer: the model can be evaluated, not trained");
            }
            if let Some(ds) = data {
                let features = ds.x.shape[1..].iter().product::<usize>();
                let (train, val) = data::split(ds, m.train.validation, m.train.split_seed());
                println!(
                    "  data: {} training examples, {} validation, {features} features each",
                    train.len(),
                    val.map_or(0, |v| v.len()),
                );
            }
            Ok(())
        }
        Command::Ir { file, stage, check, bless, threads } => {
            if let (Some(p), true) = (&check, bless) {
                let (inputs, outputs) =
                    ([("the model file", file.as_path())], [("--check", p.as_path())]);
                nnc::files::check_outputs(&inputs, &outputs)
                    .map_err(|e| Failure::Message(e.to_string()))?;
            }
            let src = read(&file)?;
            let stage = match stage {
                StageArg::Ast => Stage::Ast,
                StageArg::Graph => Stage::Graph,
                StageArg::Grad => Stage::Grad,
                StageArg::Step => Stage::Step,
                StageArg::Opt => Stage::Opt,
                StageArg::Kernels => Stage::Kernels,
                StageArg::Clif => Stage::Clif,
            };
            let text = pipeline::ir(&src, stage, threads.max(1)).map_err(|e| match e {
                IrError::Source(diags) => Failure::Diagnostics {
                    file: file.clone(),
                    src: src.clone(),
                    flags: String::new(),
                    diags,
                },
                IrError::Jit(e) => Failure::Run(e.into()),
            })?;
            match (check, bless) {
                (None, _) => print!("{text}"),
                (Some(p), true) => {
                    nnc::files::write_atomic(&p, text.as_bytes())
                        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                    eprintln!("wrote {}", p.display());
                }
                (Some(p), false) => {
                    if !p.exists() {
                        return Err(Failure::Message(format!(
                            "{} does not exist: add --bless to write the current IR there",
                            p.display()
                        )));
                    }
                    let want = read(&p)?;
                    if want != text {
                        let (diff, renumbered) = nnc::graph::diff::ir_diff(&want, &text);
                        let only = match renumbered {
                            0 => String::new(),
                            n => format!(
                                "\n({n} more lines differ only in node numbers or source lines)"
                            ),
                        };
                        return Err(Failure::Message(format!(
                            "the {} IR of {} differs from {} (rerun with --bless to accept):\n{diff}{only}",
                            stage_name(stage),
                            file.display(),
                            p.display(),
                        )));
                    }
                    eprintln!("{}: IR matches {}", file.display(), p.display());
                }
            }
            Ok(())
        }
        Command::Train {
            file,
            run,
            steps,
            epochs,
            no_shuffle,
            init,
            save,
            log,
            log_layers,
            backend,
            threads,
            quiet,
            every,
            checkpoint,
            checkpoint_every,
            resume,
            trajectory,
            trajectory_every,
            allow_nonfinite,
        } => {
            let options = pipeline::CompileOptions {
                log_layers,
                allow_nonfinite,
                masks: cli::pruned(init.as_deref()),
                sets: run.sets.clone(),
                ..Default::default()
            };
            let c = compile_with(&file, &options, run.seed)?;
            if options.masks && c.model.optimizer.method == nnc::check::Method::Lbfgs {
                // Its update runs on the host, which the compiled masks do not reach.
                return Err("a pruned model (masks in --init) trains with a first-order \
                            optimizer, not lbfgs"
                    .to_string()
                    .into());
            }
            let dir = checkpoint.or_else(|| resume.clone());
            if checkpoint_every.is_some() && dir.is_none() {
                return Err("--checkpoint-every needs --checkpoint DIR (or --resume DIR)"
                    .to_string()
                    .into());
            }
            let layers_log =
                log.as_ref().filter(|_| log_layers).map(|l| l.with_extension("layers.csv"));
            // A folder yet to be created is checked as the file it will be.
            let ckpt_out = dir.as_ref().map(|d| if d.is_dir() { ckpt::path(d) } else { d.clone() });
            let resumed =
                resume.as_ref().map(|d| ckpt::path(d)).filter(|r| Some(r) != ckpt_out.as_ref());
            let outputs = [
                ("--save", &save),
                ("--log", &log),
                ("--log-layers", &layers_log),
                ("--checkpoint", &ckpt_out),
            ];
            let inputs = [("--init", &init), ("--resume", &resumed)];
            check_outputs(&file, &c, &run, &inputs, &outputs)?;
            if let Some(d) = &trajectory {
                if std::fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some()) {
                    let m =
                        format!("--trajectory {}: not empty (the weights go there)", d.display());
                    return Err(Failure::Message(m));
                }
            }
            let interrupt = dir.as_ref().map(|_| on_signals()).transpose()?;
            let kind = backend_kind(backend, threads);
            let o = Options {
                steps,
                epochs,
                batch: run.batch,
                seed: run.seed,
                data: run.data,
                no_shuffle,
                init,
                save: save.clone(),
                log,
                log_layers,
                quiet,
                every: every.map(|n| n as usize),
                checkpoint: dir.map(|dir| session::Checkpointing { dir, every: checkpoint_every }),
                resume,
                interrupt,
                allow_nonfinite,
                trajectory: trajectory.map(|dir| session::Trajectory {
                    dir,
                    every: trajectory_every.unwrap_or(session::Every::Epochs(1)),
                }),
            };
            let s = session::train(&c, kind, base_dir(&file), &o)?;
            let fmt = |vals: &[f32]| -> String {
                s.names
                    .iter()
                    .zip(vals)
                    .map(|(n, v)| format!("{n} {}", report::sig(*v as f64, 6)))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            println!("trained {} steps ({} epochs)", s.steps, s.epochs);
            println!("train       {}", fmt(&s.train));
            if let Some(v) = &s.validation {
                println!("validation  {}", fmt(v));
            }
            println!("weight change ‖θ − θ₀‖/‖θ₀‖ {}", report::sig(s.weight_change, 6));
            if let Some(p) = save {
                println!("saved weights to {}", p.display());
            }
            Ok(())
        }
        Command::Eval { file, weights: w, run } => {
            let (c, spec, ds) = compile_with_data(&file, &run, &w)?;
            session::check_memory(&c)?;
            let weights = session::initial_weights(&c.model, spec.seed, Some(&w))?;
            let mut be = session::backend_with(BackendKind::Interp, &c, weights)?;
            let names: Vec<&str> = c.forward.outputs.iter().map(|o| o.name.as_str()).collect();
            // The file's own data splits as training splits it; `--data` is evaluated whole.
            let parts = match (&run.data, spec.validation > 0.0) {
                (None, true) => match data::split(ds, spec.validation, spec.split_seed()) {
                    (train, Some(val)) => vec![("train", train), ("validation", val)],
                    (all, None) => vec![("all", all)],
                },
                _ => vec![("all", ds)],
            };
            for (part, ds) in &parts {
                let out = session::evaluate(&c.model, be.as_mut(), ds, spec.batch.max(256))?;
                let values: Vec<String> = names
                    .iter()
                    .zip(&out)
                    .map(|(n, v)| format!("{n} {}", report::sig(*v as f64, 6)))
                    .collect();
                println!("{part:<11} {:>5} examples  {}", ds.len(), values.join("  "));
            }
            Ok(())
        }
        Command::Predict { file, weights, out, run } => {
            cli::predict::run(&file, &weights, out, &run)
        }
        Command::Plot { logs, y, x, log_y, log_x, out, title } => {
            cli::plot::run(cli::plot::Args { logs, y, x, log_x, log_y, out, title })
        }
        Command::Sweep { file, run, seeds, jobs, steps, epochs, out } => {
            cli::sweep::run(cli::sweep::Args { file, run, seeds, jobs, out, steps, epochs })
        }
        Command::LrFind { file, run, min, max, steps, out, plot } => {
            cli::lr_find::run(cli::lr_find::Args { file, run, min, max, steps, out, plot })
        }
        Command::Line(a) => cli::line::run(a),
        Command::Connect(a) => cli::connect::run(a),
        Command::Landscape(a) => cli::landscape::run(a),
        Command::Prune(a) => cli::prune::run(a),
        Command::Ntk(a) => cli::ntk::run(a),
        Command::Weights { file, all } => {
            // A checkpoint folder stands for its checkpoint file.
            let file = if file.is_dir() { ckpt::path(&file) } else { file };
            let tensors = weights::load(&file).map_err(|e| e.to_string())?;
            if let Ok(c) = ckpt::load_file(&file) {
                print!("{}", c.describe());
            }
            print!("{}", weights::show(&tensors, all));
            Ok(())
        }
        Command::Bench { file, json, threads, backend, windows, window_s, warmup_s, profile } => {
            let src = read(&file)?;
            let engine = match backend {
                BenchBackendArg::Jit => bench::Engine::Jit,
                BenchBackendArg::Interp => bench::Engine::Interp,
            };
            let threads = threads.max(1);
            let s = bench::Settings {
                engine,
                threads,
                windows,
                window_s,
                warmup_s,
                profile,
                ..Default::default()
            };
            let r = bench::run(&src, &file, &s).map_err(|e| match e {
                bench::BenchError::Diagnostics(diags) => {
                    Failure::Diagnostics { file, src, flags: String::new(), diags }
                }
                bench::BenchError::Run(e) => Failure::Run(e),
            })?;
            match json {
                true => println!("{}", r.json()),
                false => print!("{}", r.table()),
            }
            if let Some(p) = &r.profile {
                // After the JSON line, not in it: the line stays one object for scripts.
                print!("{p}");
            }
            Ok(())
        }
        Command::Grad { file, weights: w, out, run, backend, threads } => {
            let c = compile_to_evaluate(&file, &run, Some(&w))?;
            check_outputs(
                &file,
                &c,
                &run,
                &[("--weights", &Some(w.clone()))],
                &[("--out", &Some(out.clone()))],
            )?;
            session::check_memory(&c)?;
            let (c, spec, ds) = with_data(c, &file, &run)?;
            let params = session::initial_params(&c.model, spec.seed, Some(&w))?;
            let n = spec.batch.min(ds.x.shape[0]);
            let idx: Vec<usize> = (0..n).collect();
            let (x, y) = data::batch(&ds, &idx);
            let inputs = session::inputs_for(&c.model, x, y);
            let grads = session::gradients(&c, backend_kind(backend, threads), &inputs, &params)?;
            let named: Vec<(String, &Tensor<f32>)> =
                c.model.params.iter().map(|p| p.name.clone()).zip(grads.iter()).collect();
            weights::save(&out, &named)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "wrote gradients of {} tensors on a batch of {n} to {}",
                named.len(),
                out.display()
            );
            Ok(())
        }
    }
}

fn stage_name(s: Stage) -> &'static str {
    Stage::ALL.iter().find(|(_, x)| *x == s).map(|(n, _)| *n).unwrap_or("?")
}
