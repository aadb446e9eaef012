//! The difference between two IR texts as a reader wants it (`nnc ir --check`): a one-line
//! change to a model renumbers every node after it (`%17` becomes `%19`) and moves every
//! source line below it (`line 12` becomes `line 13`), which a plain line diff shows as a
//! change of nearly every line. This diff sees through both: lines are first matched with
//! node numbers and source lines masked, the matched lines that define a node give the
//! renumbering, and a line counts as unchanged when it is the same under that renumbering
//! with source lines ignored. A changed operand (a real rewiring) still shows.

use similar::{capture_diff_slices, group_diff_ops, Algorithm, DiffTag};

/// A unified diff (`-` expected, `+` actual, 3 lines of context) of the lines of `old` and
/// `new` that differ beyond renumbering, and how many lines differ only by it.
pub fn ir_diff(old: &str, new: &str) -> (String, usize) {
    let (o, n): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let masked = |v: &[&str]| v.iter().map(|l| rewrite(l, &|_| None)).collect::<Vec<_>>();
    let (mo, mn) = (masked(&o), masked(&n));
    // old node -> new node, from the lines that match once masked.
    let mut map = std::collections::HashMap::new();
    for op in capture_diff_slices(Algorithm::Myers, &mo, &mn) {
        if op.tag() == DiffTag::Equal {
            let (a, b) = (op.old_range(), op.new_range());
            for (i, j) in a.zip(b) {
                if let (Some(x), Some(y)) = (defined(o[i]), defined(n[j])) {
                    map.insert(x, y);
                }
            }
        }
    }
    let ko: Vec<String> = o
        .iter()
        .map(|l| {
            rewrite(l, &|id| Some(map.get(&id).map_or(format!("%?{id}"), |m| format!("%{m}"))))
        })
        .collect();
    let kn: Vec<String> = n.iter().map(|l| rewrite(l, &|id| Some(format!("%{id}")))).collect();
    let ops = capture_diff_slices(Algorithm::Myers, &ko, &kn);
    let renumbered = ops
        .iter()
        .filter(|op| op.tag() == DiffTag::Equal)
        .flat_map(|op| op.old_range().zip(op.new_range()))
        .filter(|&(i, j)| o[i] != n[j])
        .count();
    let mut out = String::from("--- expected\n+++ actual\n");
    for group in group_diff_ops(ops, 3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (os, oe) = (first.old_range().start, last.old_range().end);
        let (ns, ne) = (first.new_range().start, last.new_range().end);
        out += &format!("@@ -{},{} +{},{} @@\n", os + 1, oe - os, ns + 1, ne - ns);
        for op in &group {
            match op.tag() {
                // Context lines as they read now.
                DiffTag::Equal => op.new_range().for_each(|j| out += &format!(" {}\n", n[j])),
                _ => {
                    op.old_range().for_each(|i| out += &format!("-{}\n", o[i]));
                    op.new_range().for_each(|j| out += &format!("+{}\n", n[j]));
                }
            }
        }
    }
    (out, renumbered)
}

/// The node a line defines: `%12 = ...`.
fn defined(line: &str) -> Option<u32> {
    let rest = line.trim_start().strip_prefix('%')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..].trim_start().starts_with('=').then(|| digits.parse().ok())?
}

/// `line` with every `%N` replaced by `node(N)` (`%` alone for `None`), every source line
/// number (`line 12`) by `line #`, and every run of spaces by one (numbers are right-aligned
/// and comments aligned after them, so a renumbering moves both).
fn rewrite(line: &str, node: &dyn Fn(u32) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        // The count of digits after `prefix`, if `rest` starts with it and some follow.
        let digits = |prefix: &str| {
            let after = rest.strip_prefix(prefix)?;
            let n = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (n > 0).then_some(n)
        };
        if let Some(n) = digits("%") {
            let id = rest[1..1 + n].parse().unwrap_or(u32::MAX);
            out += &node(id).unwrap_or_else(|| "%".into());
            rest = &rest[1 + n..];
        } else if let Some(n) = digits("line ") {
            out += "line #";
            rest = &rest["line ".len() + n..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "  %0 = input x\n  %1 = param w\n  %2 = matmul %0, %1   // fc, line 7\n  %3 = relu %2   // line 8\n  %4 = mean %3\n";

    #[test]
    fn renumbering_and_moved_source_lines_are_not_changes() {
        // A node inserted at the top: every number after it moves, and so do the lines.
        let new = "  %0 = input x\n  %1 = param b\n  %2 = param w\n  %3 = matmul %0, %2   // fc, line 8\n  %4 = relu %3   // line 9\n  %5 = mean %4\n";
        let (d, renumbered) = ir_diff(OLD, new);
        let changed: Vec<&str> = d.lines().filter(|l| l.starts_with(['+', '-'])).skip(2).collect();
        assert_eq!(changed, ["+  %1 = param b"], "{d}");
        assert_eq!(renumbered, 4);
    }

    #[test]
    fn a_rewired_operand_is_a_change() {
        let new = OLD.replace("relu %2", "relu %0");
        let (d, _) = ir_diff(OLD, &new);
        assert!(d.contains("-  %3 = relu %2") && d.contains("+  %3 = relu %0"), "{d}");
    }

    #[test]
    fn rewriting_masks_only_numbers_after_a_percent_or_line() {
        let r = rewrite("%12 = add %3, %4  // l1, line 5, 50%", &|id| Some(format!("n{id}")));
        assert_eq!(r, "n12 = add n3, n4 // l1, line #, 50%");
        assert_eq!(defined("   %12 = x"), Some(12));
        assert_eq!(defined("   %12 x"), None);
    }
}
