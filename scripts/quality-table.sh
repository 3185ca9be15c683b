#!/usr/bin/env bash
# Reproduces the quality table: dense vs ternary GPTQ / RTN vs 2/3/4-bit GPTQ (fake-quant), validation and
# ood_man CE, plus the ternary GPTQ compressed model's size. Usage:
#   scripts/quality-table.sh MODEL_DIR OUT_DIR CALIB_ARGS...
# e.g. scripts/quality-table.sh ../shared/fixtures/switch-small-32 /tmp/q32 \
#        --calib ../shared/fixtures/data/calibration_set.safetensors --split calibration --samples 512
set -euo pipefail
model=$1; out=$2; shift 2
cd "$(dirname "$0")/.."
dotnet build -c Release src/Qmoe.Cli -v q -nologo >/dev/null
q() { dotnet src/Qmoe.Cli/bin/Release/net10.0/Qmoe.Cli.dll "$@"; }
mkdir -p "$out"
evals() { for s in validation ood_man; do q eval --model "$1" --data data/eval_sets.safetensors --split $s --json 2>/dev/null; done | tr '\n' ' '; }
echo "dense $(evals "$model")" | tee -a "$out/table.txt"
run() { # name, compress flags...
  local name=$1; shift
  [ -d "$out/$name" ] || q compress --model "$model" --out "$out/$name" "$@" --json 2>"$out/$name.log" >"$out/$name.json"
  echo "$name $(cat "$out/$name.json") $(evals "$out/$name")" | tee -a "$out/table.txt"
}
run ternary-gptq-compressed "$@"
run ternary-gptq "$@" --fake-quant
run ternary-rtn "$@" --fake-quant --method rtn
run ternary-gptq-premask "$@" --fake-quant --premask
for b in 2 3 4; do run "gptq-$b" "$@" --fake-quant --bits $b; done
q inspect "$out/ternary-gptq-compressed" --json > "$out/inspect.json" && cat "$out/inspect.json"
