#!/bin/sh
# Phenomenon 13: trains width_256.nn ... width_16384.nn, writes widths.csv (one row per
# width: the relative weight change and the final losses) and draws the weight change
# against the width on log-log axes (widths.svg). Run from the repository root; NNC names
# the nnc binary (default: nnc on the PATH).
set -e
NNC=${NNC:-nnc}
dir=examples/phenomena/13_ntk
echo "width,weight_change,train_loss,validation_loss" > widths.csv
for w in 256 1024 4096 16384; do
    out=$($NNC train $dir/width_$w.nn --quiet)
    change=$(echo "$out" | awk '/^weight change/ { print $NF }')
    train=$(echo "$out" | awk '/^train / { print $3 }')
    val=$(echo "$out" | awk '/^validation / { print $3 }')
    echo "$w,$change,$train,$val" >> widths.csv
    echo "width $w: weight change $change, train loss $train, validation loss $val"
done
$NNC plot widths.csv --x width --y weight_change --log-x --log-y --out widths.svg
