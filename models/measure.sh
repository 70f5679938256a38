#!/bin/sh
# Every figure the model card reports for a model, in one go (results in OUT/, a summary on stdout).
#   IAM=/path/to/IAM-OnDB sh models/measure.sh MODEL.pt OUT [BASELINE.pt]
# MODEL: the candidate (an exported int8 file, as shipped); BASELINE: the model it would
# replace (default: models/default.pt); both are read with models/lm-en.npz where the LM is used.
# Runs one CPU thread, as the card's figures are; pause training runs first (kill -STOP) for the
# speed and load figures. Takes about 15 minutes on an idle 2-core machine.
set -eu
if [ $# -lt 2 ] || [ -z "${IAM:-}" ]; then
    echo "usage: IAM=DIR sh models/measure.sh MODEL.pt OUT [BASELINE.pt]" >&2
    exit 2
fi
model=$1
out=$2
base=${3:-models/default.pt}
val="iamondb:$IAM@testset_v"
mkdir -p "$out"
say() { printf '%s\n' "$*" | tee -a "$out/summary.txt"; }
cer() { python -c 'import json, sys
d = json.load(sys.stdin)
print("CER %.2f%% (%d/%d) WER %.2f%%" % (100 * d["cer"], d["char_errors"], d["ref_chars"], 100 * d["wer"]))'; }
: > "$out/summary.txt"
say "model $model ($(stat -c %s "$model") bytes; with the LM $(( $(stat -c %s "$model") + $(stat -c %s models/lm-en.npz) )) bytes), baseline $base, $(date -u '+%F %T') UTC"

say "== testset_v (all lines)"
for m in model base; do
    eval f=\$$m
    inkread eval --model "$f" --data "$val" --no-lm --threads 1 --json --errors "$out/$m-greedy.tsv" > "$out/$m-greedy.json"
    inkread eval --model "$f" --data "$val" --threads 1 --json --errors "$out/$m-lm.tsv" > "$out/$m-lm.json"
    say "$m greedy: $(cer < "$out/$m-greedy.json")"
    say "$m LM:     $(cer < "$out/$m-lm.json")"
done
say "-- model against baseline, greedy"; inkread compare "$out/base-greedy.tsv" "$out/model-greedy.tsv" | tee -a "$out/summary.txt"
say "-- model against baseline, with the LM"; inkread compare "$out/base-lm.tsv" "$out/model-lm.tsv" | tee -a "$out/summary.txt"
inkread eval --model "$model" --data "$val" --no-lm --threads 1 --json --batch-size 1 > "$out/model-greedy-b1.json"
say "model greedy, one line at a time: $(cer < "$out/model-greedy-b1.json")"

say "== ink not from a whiteboard (first 400 lines; greedy / with the LM)"
for opt in "" "--drop-time" "--rate 200" "--rate 30" "--scale 0.05" "--scale 20"; do
    # shellcheck disable=SC2086
    g=$(inkread eval --model "$model" --data "$val" --limit 400 --no-lm --threads 1 --json $opt | cer)
    # shellcheck disable=SC2086
    l=$(inkread eval --model "$model" --data "$val" --limit 400 --threads 1 --json $opt | cer)
    say "${opt:-as recorded}: $g / $l"
done

say "== synthetic lines (synth:300@99; greedy / with the LM)"
say "$(inkread eval --model "$model" --data synth:300@99 --no-lm --threads 1 --json | cer) / $(inkread eval --model "$model" --data synth:300@99 --threads 1 --json | cer)"

say "== data/samples"
for f in data/samples/*; do
    say "$f: $(inkread recognize --model "$model" "$f" 2>&1 | tail -n 1)"
done

say "== loading (three fresh processes, model and LM; torch imported first)"
for i in 1 2 3; do
    say "$(python -c 'import sys, time, torch
from inkread.recognizer import Recognizer
t = time.perf_counter(); Recognizer.load(sys.argv[1]); print(f"{time.perf_counter() - t:.3f} s")' "$model")"
done

say "== speed (inkread bench, 50 lines, one thread)"
inkread bench --model "$model" --data "$val" --lines 50 --threads 1 --no-extras --train-batch 0 | tee -a "$out/summary.txt"

say "== saliency (synth:40@3, SmoothGrad and the plain gradient)"
inkread saliency --model "$model" --faithfulness synth:40@3 --methods smoothgrad,gradient --deletion-chars 0 \
    --threads 1 | tee -a "$out/summary.txt"
say "done $(date -u '+%F %T') UTC"
