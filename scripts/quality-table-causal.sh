#!/usr/bin/env bash
# Quality table of a decoder-only MoE (Qwen3-MoE, DeepSeek-V3, Mixtral with tokenizer.json): dense vs ternary GPTQ
# (compressed and fake-quant) / ternary RTN / 2/3/4-bit GPTQ (fake-quant), CE on raw validation and ood_man text
# (eval --text: the fixtures' FAMILIES.md metric). Needs tokenizer.json support (eval --text, --calib-text). Usage:
#   scripts/quality-table-causal.sh MODEL_DIR OUT_DIR FIXTURES_DIR [compress flags...]
# e.g. scripts/quality-table-causal.sh ../shared/fixtures/deepseek-v3-tiny /tmp/qds ../shared/fixtures
set -euo pipefail
model=$1; out=$2; fixtures=$3; shift 3
cd "$(dirname "$0")/.."
dotnet build -c Release src/Qmoe.Cli -v q -nologo >/dev/null
q() { dotnet src/Qmoe.Cli/bin/Release/net10.0/Qmoe.Cli.dll "$@"; }
mkdir -p "$out"
evals() { for s in validation ood_man; do q eval --model "$1" --text "$fixtures/data/text/$s.txt" --json 2>/dev/null; done | tr '\n' ' '; }
echo "dense $(evals "$model")" | tee -a "$out/table.txt"
calib=(--calib-text "$fixtures/corpus/train.txt.gz" --samples 128 --seq-len 128)
run() { # name, compress flags...
  local name=$1; shift
  [ -d "$out/$name" ] || q compress --model "$model" --out "$out/$name" "${calib[@]}" "$@" --json 2>"$out/$name.log" >"$out/$name.json"
  echo "$name $(cat "$out/$name.json") $(evals "$out/$name")" | tee -a "$out/table.txt"
}
run ternary-gptq-compressed "$@"
run ternary-gptq "$@" --fake-quant
run ternary-rtn "$@" --fake-quant --method rtn
for b in 2 3 4; do run "gptq-$b" "$@" --fake-quant --bits $b; done
