#!/usr/bin/env python3
"""Reference values of YaRN rope scaling as Hugging Face transformers computes it, for qmoe's tests.

Re-implements, with numpy (float32 where transformers uses float32 tensors, Python floats elsewhere):
  * transformers.modeling_rope_utils._compute_yarn_parameters -> (inv_freq [dim/2], attention_factor)
  * the cos/sin it yields at a few positions (cos(pos * inv_freq) * attention_factor)
  * DeepseekV3Attention.scaling: qk_head_dim**-0.5 * yarn_get_mscale(factor, mscale_all_dim)**2
for the rope_scaling of the real DeepSeek-V3 and Kimi-K2 configs and a Qwen3-style generic YaRN config.
Output: tests/data/yarn/yarn_reference.json (committed; not run in CI).
Usage: python3 tools/yarn_reference.py > tests/data/yarn/yarn_reference.json   (needs python3-numpy)
"""
import json
import math
import sys

import numpy as np

F32 = np.float32


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn(dim, base, rs, max_pos):
    factor = rs["factor"]
    attention_factor = rs.get("attention_factor")
    mscale = rs.get("mscale")
    mscale_all_dim = rs.get("mscale_all_dim")
    original = rs.get("original_max_position_embeddings") or max_pos
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1

    def correction_dim(rot):
        return (dim * math.log(original / (rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    # torch: base ** (arange(0, dim, 2).float() / dim) is a float32 tensor
    pos_freqs = np.power(F32(base), np.arange(0, dim, 2).astype(F32) / F32(dim), dtype=F32)
    extrapolation = (F32(1.0) / pos_freqs).astype(F32)
    interpolation = (F32(1.0) / (F32(factor) * pos_freqs)).astype(F32)
    ramp = np.clip((np.arange(dim // 2, dtype=F32) - F32(low)) / F32(high - low), 0, 1).astype(F32)
    extra_factor = (F32(1) - ramp).astype(F32)
    inv_freq = (interpolation * (F32(1) - extra_factor) + extrapolation * extra_factor).astype(F32)
    return inv_freq, attention_factor


CASES = [
    # name, rotary dim, rope_theta, max_position_embeddings, rope_scaling, qk_head_dim (DeepSeek softmax scale) or None
    ("deepseek-v3", 64, 10000.0, 163840,
     {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
      "mscale": 1.0, "mscale_all_dim": 1.0}, 192),
    ("kimi-k2", 64, 50000.0, 131072,
     {"type": "yarn", "factor": 32.0, "original_max_position_embeddings": 4096, "beta_fast": 1.0, "beta_slow": 1.0,
      "mscale": 1.0, "mscale_all_dim": 1.0}, 192),
    ("deepseek-mscale-0.707", 64, 10000.0, 163840,
     {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
      "mscale": 0.707, "mscale_all_dim": 0.707}, 192),
    ("qwen3-yarn", 128, 1000000.0, 131072,
     {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, None),
]

POSITIONS = [0, 1, 7, 100, 4095, 50000]

out = {"source": "tools/yarn_reference.py (numpy re-implementation of transformers' _compute_yarn_parameters)", "cases": []}
for name, dim, base, max_pos, rs, qk in CASES:
    inv, attn = yarn(dim, base, rs, max_pos)
    cos = [[float(np.cos(F32(p) * f) * F32(attn)) for f in inv] for p in POSITIONS]
    sin = [[float(np.sin(F32(p) * f) * F32(attn)) for f in inv] for p in POSITIONS]
    case = {"name": name, "dim": dim, "rope_theta": base, "max_position_embeddings": max_pos, "rope_scaling": rs,
            "inv_freq": [float(x) for x in inv], "attention_factor": attn, "positions": POSITIONS, "cos": cos, "sin": sin}
    if qk is not None:
        m = get_mscale(rs["factor"], rs.get("mscale_all_dim", 0)) if rs.get("mscale_all_dim") else 1.0
        case["qk_head_dim"] = qk
        case["softmax_scale"] = qk ** -0.5 * m * m
    out["cases"].append(case)
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
