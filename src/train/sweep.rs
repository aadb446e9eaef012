//! The arithmetic of `nnc sweep`: expanding `--set KEY=V1,V2,...` flags into the grid of
//! their combinations, and the mean and spread of a result over seeds. Running the grid is
//! the command line's (`cli/sweep.rs`).

/// A flag's values: `KEY=V1,V2` gives `[KEY=V1, KEY=V2]`. Commas inside parentheses,
/// brackets or strings belong to a value (`optimizer=adam(lr = 1e-3, betas = (0.9, 0.99))`
/// is one value).
pub fn values(flag: &str) -> Result<Vec<String>, String> {
    let Some((key, list)) = flag.split_once('=') else {
        return Err(format!("--set {flag}: expected KEY=VALUE[,VALUE...]"));
    };
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, ch) in list.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    match out.iter().any(|v| v.trim().is_empty()) {
        true => Err(format!("--set {flag}: an empty value")),
        false => Ok(out.into_iter().map(|v| format!("{key}={}", v.trim())).collect()),
    }
}

/// Every combination of the flags' values, the first flag varying slowest: each point is
/// one `--set KEY=VALUE` per flag.
pub fn grid(flags: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut points: Vec<Vec<String>> = vec![Vec::new()];
    for flag in flags {
        let vs = values(flag)?;
        points = points
            .into_iter()
            .flat_map(|p| {
                vs.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// Mean and sample standard deviation (0 for a single value) of the finite `values`, and
/// how many there were; `None` when there are none.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64, usize)> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = match n {
        1 => 0.0,
        _ => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64,
    };
    Some((mean, var.sqrt(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_top_level_commas_only() {
        assert_eq!(
            values("optimizer.lr=1e-3, 3e-3,1e-2").unwrap(),
            ["optimizer.lr=1e-3", "optimizer.lr=3e-3", "optimizer.lr=1e-2"]
        );
        let one = "optimizer=adam(lr = 1e-3, betas = (0.9, 0.99))";
        assert_eq!(values(one).unwrap(), [one]);
        assert_eq!(values("train.data=csv(\"a,b.csv\"),x").unwrap().len(), 2);
        assert!(values("optimizer.lr=1,,2").is_err() && values("optimizer.lr").is_err());
    }

    #[test]
    fn the_grid_is_every_combination_first_flag_slowest() {
        let g = grid(&["a.x=1,2".into(), "b.y=3,4,5".into()]).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], ["a.x=1", "b.y=3"]);
        assert_eq!(g[1], ["a.x=1", "b.y=4"]);
        assert_eq!(g[5], ["a.x=2", "b.y=5"]);
        assert_eq!(grid(&[]).unwrap(), [Vec::<String>::new()]);
    }

    #[test]
    fn spread_is_the_sample_standard_deviation_of_finite_values() {
        let (m, sd, n) = mean_sd(&[1.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((m, n), (2.0, 2));
        assert!((sd - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(mean_sd(&[5.0]), Some((5.0, 0.0, 1)));
        assert_eq!(mean_sd(&[f64::INFINITY]), None);
    }
}
