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

/// The note `did you mean `x`?`, if some candidate is close.
pub fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
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
    fn rejects_far_names() {
        assert_eq!(closest("cosine", ["constant"]), None);
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(closest("relu", ["relu"]), None);
    }
}
