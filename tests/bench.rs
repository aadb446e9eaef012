//! `nnc bench`: the JSON line `scripts/bench_session.py` reads, the table, the five
//! benchmark configs, and errors. Tiny timing windows (hidden flags) keep it fast.

mod common;
use common::nnc;

const QUICK: [&str; 6] = ["--windows", "2", "--window-s", "0.05", "--warmup-s", "0.05"];

/// The parsed JSON line and its text.
fn bench_json(file: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["bench", file, "--json"];
    args.extend(QUICK);
    args.extend(extra);
    let (code, out, err) = nnc(&args);
    assert_eq!(code, 0, "{file}: {err}");
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    (serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}")), out)
}

#[test]
fn json_has_the_keys_compare_peers_reads() {
    let (v, out) = bench_json("examples/bench/a.nn", &["--threads", "1", "--backend", "interp"]);
    // compare-peers takes the first key matching /steps.*(per|\/).*s/: it must be the rate.
    assert!(out.starts_with(r#"{"steps_per_s":"#), "{out}");
    let num = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}"));
    assert!(num("steps_per_s") > 0.0);
    assert!((num("us_per_step") * num("steps_per_s") - 1e6).abs() < 1e3);
    assert!(num("peak_rss_mib") > 0.0);
    assert_eq!(num("threads"), 1.0);
    assert_eq!(num("batch"), 32.0);
    assert_eq!(num("n_params"), 64.0 * 32.0 + 32.0 + 32.0 * 10.0 + 10.0);
    assert_eq!(v["config"], "a");
    assert_eq!(v["backend"], "interp");
    assert_eq!(v["window_rates"].as_array().unwrap().len(), 2);
    let stages = v["compile_ms"].as_object().unwrap();
    for s in ["parse", "check", "lower", "autodiff", "update", "passes", "total"] {
        assert!(stages[s].as_f64().unwrap() >= 0.0, "{s}: {v}");
    }
    assert!(num("compile_total_ms") > 0.0);
    assert!(num("loss_first").is_finite() && num("loss_last").is_finite());
}

#[test]
fn every_benchmark_config_compiles_and_matches_the_peer_table() {
    // (file, parameter count of the peers' model, batch): bench_common.py CONFIGS.
    let configs = [
        ("a", [64, 32, 10].as_slice(), 32),
        ("b", &[784, 128, 10], 64),
        ("c", &[784, 512, 512, 512, 10], 128),
        ("d", &[1024, 2048, 2048, 1024], 256),
        ("e", &[10, 64, 64, 1], 256),
    ];
    for (c, layers, batch) in configs {
        let file = format!("examples/bench/{c}.nn");
        let (code, out, err) = nnc(&["check", &file]);
        assert_eq!(code, 0, "{file}: {err}");
        let params: usize = layers.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        assert!(
            out.contains(&format!("{params} parameters in {} tensors", 2 * (layers.len() - 1))),
            "{file}: {out}"
        );
        let src = std::fs::read_to_string(&file).unwrap();
        assert!(src.contains(&format!("batch = {batch}")), "{file}");
        assert!(src.contains(&format!("random(n = {})", 8 * batch)), "{file}");
    }
}

#[test]
fn the_jit_reports_its_stages_and_agrees_with_the_interpreter() {
    for c in ["a", "e"] {
        let file = format!("examples/bench/{c}.nn");
        let (jit, _) = bench_json(&file, &[]);
        let (interp, _) = bench_json(&file, &["--backend", "interp"]);
        assert_eq!(jit["backend"], "jit", "the default engine");
        let stages = jit["compile_ms"].as_object().unwrap();
        for s in ["parse", "check", "lower", "autodiff", "update", "passes", "fuse", "cranelift"] {
            assert!(stages[s].as_f64().unwrap() >= 0.0, "{s}: {jit}");
        }
        let sum: f64 =
            stages.iter().filter(|(k, _)| *k != "total").map(|(_, v)| v.as_f64().unwrap()).sum();
        assert!((sum - stages["total"].as_f64().unwrap()).abs() < 0.01, "{jit}");
        // Same initialization, same first batch: the same loss before the first update.
        let (a, b) = (jit["loss_first"].as_f64().unwrap(), interp["loss_first"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{c}: jit {a} vs interp {b}");
    }
}

#[test]
fn the_table_is_readable() {
    let mut args = vec!["bench", "examples/bench/e.nn"];
    args.extend(QUICK);
    let (code, out, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    for want in ["compile", "parse", "total", "steps/s", "peak RSS", "batch 256"] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// `--profile` lists every kernel of the step once, with its time and share, busiest first.
#[test]
fn the_profile_lists_every_kernel() {
    let mut args = vec!["bench", "examples/bench/e.nn", "--profile"];
    args.extend(QUICK);
    let (code, out, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    let (_, ir, _) = nnc(&["ir", "examples/bench/e.nn", "--stage", "kernels"]);
    let n = ir.lines().find_map(|l| l.strip_prefix("program step: ")).unwrap();
    let n: usize = n.split_whitespace().next().unwrap().parse().unwrap();
    let head = out.lines().find(|l| l.starts_with("kernel time per step")).expect(&out);
    assert!(head.ends_with(&format!("in {n} kernels")), "{head}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("  k")).collect();
    assert_eq!(rows.len(), n, "{out}");
    let mut ks: Vec<usize> =
        rows.iter().map(|r| r[3..].split(' ').next().unwrap().parse().unwrap()).collect();
    ks.sort();
    assert_eq!(ks, (0..n).collect::<Vec<_>>(), "each kernel once: {out}");
    let us: Vec<f64> =
        rows.iter().map(|r| r.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert!(us.windows(2).all(|w| w[0] >= w[1]), "busiest first: {out}");
    assert!(us.iter().sum::<f64>() > 0.0, "{out}");
}

#[test]
fn errors_are_reported() {
    let (code, _, err) = nnc(&["bench", "no/such/file.nn", "--json"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = nnc(&["bench", "tests/cases/errors/check_undefined_name.nn"]);
    assert_eq!(code, 1);
    assert!(err.contains("error"), "{err}");
}

/// `threads_used`: a model whose products and kernels are all below the splitting
/// thresholds runs on one thread whatever `--threads` says (no pool is started); one with a
/// 5.4·10⁸-flop product uses the pool.
#[test]
fn threads_are_used_only_when_there_is_work_to_split() {
    let (small, _) = bench_json("examples/bench/a.nn", &["--threads", "2"]);
    assert_eq!((small["threads"].as_u64(), small["threads_used"].as_u64()), (Some(2), Some(1)));
    let (one, _) = bench_json("examples/bench/a.nn", &["--threads", "1"]);
    assert_eq!(one["threads_used"].as_u64(), Some(1));
    let dir = std::env::temp_dir().join(format!("nnc-bench-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wide.nn");
    std::fs::write(
        &file,
        "model Wide {\n    input x: [B, 1024]\n    label y: class[B] of 1024\n    fc = Dense(1024 -> 1024)\n    loss = cross_entropy(fc(x), y)\n}\noptimizer sgd(lr = 0.1)\ntrain { data = random(n = 256), batch = 256, steps = 1 }\n",
    )
    .unwrap();
    let (wide, _) = bench_json(file.to_str().unwrap(), &["--threads", "2"]);
    assert_eq!(wide["threads_used"].as_u64(), Some(2), "{wide}");
    std::fs::remove_dir_all(&dir).unwrap();
}
