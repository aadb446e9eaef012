//! "Did you mean ...?" for misspelled names: the closest candidate by Damerau–Levenshtein
//! distance (ignoring case), accepted only when the distance is small for the name's length.

/// The candidate closest to `name`, if it is close enough to be a plausible misspelling.
/// Ties go to the earliest candidate, so callers list the likeliest kind first.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = name.to_lowercase();
    let budget = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let d = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
        let plausible = d <= budget && d < name.chars().count().max(c.chars().count());
        if plausible && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// PyTorch's names of nnc's built-ins, which no spelling distance finds.
const PYTORCH_NAMES: [(&str, &str); 12] = [
    ("Linear", "Dense"),
    ("BatchNorm1d", "BatchNorm"),
    ("ReLU", "relu"),
    ("Tanh", "tanh"),
    ("Sigmoid", "sigmoid"),
    ("GELU", "gelu"),
    ("Dropout", "dropout"),
    ("CrossEntropyLoss", "cross_entropy"),
    ("MSELoss", "mse"),
    ("L1Loss", "l1"),
    ("BCEWithLogitsLoss", "bce_with_logits"),
    ("HuberLoss", "huber"),
];

/// The note `did you mean `x`?`, if some candidate is close, or is nnc's name for PyTorch's
/// `name` (`Linear` is `Dense`).
pub fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let ours = PYTORCH_NAMES.iter().find(|(theirs, _)| *theirs == name).map(|p| p.1);
    if let Some(ours) = ours.filter(|o| candidates.contains(o)) {
        return Some(format!("did you mean `{ours}`? (`{name}` is PyTorch's name for it)"));
    }
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_case_slips() {
        assert_eq!(closest("Dens", ["Dense", "Residual"]), Some("Dense"));
        assert_eq!(closest("rleu", ["tanh", "relu"]), Some("relu"));
        assert_eq!(closest("momentun", ["lr", "momentum", "nesterov"]), Some("momentum"));
        assert_eq!(closest("SGD", ["sgd", "adam"]), Some("sgd"));
        assert_eq!(closest("he_norml", ["he_uniform", "he_normal"]), Some("he_normal"));
    }

    #[test]
    fn knows_pytorch_names() {
        let note = did_you_mean("Linear", ["Dense", "LayerNorm"]).unwrap();
        assert_eq!(note, "did you mean `Dense`? (`Linear` is PyTorch's name for it)");
        assert_eq!(did_you_mean("ReLU", ["Dense"]), None, "only a name that is a candidate");
    }

    #[test]
    fn rejects_far_names() {
        assert_eq!(closest("cosine", ["constant"]), None);
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(closest("relu", ["relu"]), None);
    }
}
