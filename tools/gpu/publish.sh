#!/bin/bash
# Builds a self-contained qmoe for a lent GPU machine, which has no .NET (not run in CI).
# Usage, from the repository root: tools/gpu/publish.sh [FIXTURES]   (.dev/ is git-ignored; the device tool carries it)
# Writes .dev/cli/Qmoe.Cli and, given the fixtures folder (../shared/fixtures), compressed models in .dev/m for check.sh.
# The device tool carries at most 64 MiB with the working tree, so the build is a compressed single file with the
# framework trimmed (~22 MB) and without ScottPlot's native Skia libraries (the demo's plot is not needed there).
# ILGPU maps framework intrinsics (System.Math, BitOperations, ...) by reflection, so CoreLib is kept whole
# (roots.targets); trimming it made every kernel compile fail with ILGPU's InternalCompilerException.
set -euo pipefail
out=.dev/cli; fixtures=${1:-}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out" src/*/obj/Release/net10.0/linux-x64 src/*/bin/Release/net10.0/linux-x64
dotnet publish src/Qmoe.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:InvariantGlobalization=true \
  -p:DebugType=none -p:GenerateDocumentationFile=false \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true \
  -p:JsonSerializerIsReflectionEnabledByDefault=true -p:CustomAfterMicrosoftCommonTargets="$here/roots.targets" \
  -o "$out"
rm -f "$out"/libSkiaSharp.so "$out"/libHarfBuzzSharp.so
ls -la "$out"
[ -n "$fixtures" ] || exit 0
m=.dev/m; rm -rf $m; mkdir -p $m
for model in mixtral-tiny-8 qwen3-moe-tiny; do
  "$out"/Qmoe.Cli compress --model "$fixtures/$model" --out $m/$model --calib-text "$fixtures/corpus/train.txt.gz" --samples 64 | tail -1
done
"$out"/Qmoe.Cli compress --model "$fixtures/switch-tiny-8" --out $m/switch-tiny-8 --calib "$fixtures/data/calibration_set.safetensors" --split calibration | tail -1
cp "$fixtures/data/eval_sets.safetensors" "$fixtures/data/text/validation.txt" $m/
du -sh .dev
