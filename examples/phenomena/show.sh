#!/bin/sh
# Prints the columns of an nnc log (run.csv or run.layers.csv) whose names match a regular
# expression, one "name value" line each, at one step (default 1; `last` for the last row).
#   sh examples/phenomena/show.sh run.layers.csv 'grad_norm.*weight' [STEP]
# Example: sh show.sh n1.layers.csv '^grad_norm.*weight$' 1
[ $# -ge 2 ] || { echo "usage: show.sh LOG.csv REGEX [STEP|last]" >&2; exit 2; }
awk -F, -v re="$2" -v step="${3:-1}" '
    NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; next }
    step == "last" || $1 == step { row = $0 }
    END {
        if (row == "") { print "no row for step " step > "/dev/stderr"; exit 1 }
        n = split(row, v, ",")
        for (i = 1; i <= n; i++) if (name[i] ~ re) printf "%-32s %.4g\n", name[i], v[i]
    }' "$1"
