#!/bin/bash
# Run on the GPU machine (the device tool: command "bash tools/gpu/check.sh", carry [".dev"]), after tools/gpu/publish.sh
# given the fixtures (it compresses mixtral-tiny-8, qwen3-moe-tiny and switch-tiny-8 into .dev/m).
# Prints: greedy ids and CE on cpu vs cuda for each model, then bench matvec on the GPU and on all CPU cores.
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
Q=.dev/cli/Qmoe.Cli; M=.dev/m; chmod +x $Q
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; nproc
# JSON on success, else the one-line error
j() { local out; out=$("$@" --json 2>/tmp/check.err) && echo "$out" | sed 's/"input_ids[^]]*],//' | head -c 400 || tail -1 /tmp/check.err; }
for dev in cpu cuda; do
  for m in qwen3-moe-tiny mixtral-tiny-8; do
    echo "$dev $m generate: $(j $Q generate --model $M/$m --prompt "The manual page" --max-new-tokens 64 --device $dev)"
    echo "$dev $m eval: $(j $Q eval --model $M/$m --text $M/validation.txt --device $dev)"
  done
  echo "$dev switch-tiny-8 eval: $(j $Q eval --model $M/switch-tiny-8 --data $M/eval_sets.safetensors --split validation --device $dev)"
done
timeout 200 $Q bench matvec --device cuda --sweeps 30 2>&1 | tail -4
timeout 200 $Q bench matvec --threads $(nproc) 2>&1 | tail -4
