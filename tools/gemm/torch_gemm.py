#!/usr/bin/env python3
"""GEMM 2048^3 float32 GFLOP/s with PyTorch (Debian python3-torch, OpenBLAS) at 1 and 2 threads.

The baseline for `qmoe bench gptq`'s GEMM line (issue 15). Run it in the same sitting as the bench,
on a quiet machine: /usr/bin/python3 tools/gemm/torch_gemm.py
Not used by CI.
"""
import time
import torch

n = 2048
a = torch.randn(n, n)
b = torch.randn(n, n)
print("torch", torch.__version__, "| BLAS via", torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0])
for threads in (1, 2):
    torch.set_num_threads(threads)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    print(f"GEMM {n}^3, {threads} thread(s): {2 * n**3 / best / 1e9:.1f} GFLOP/s (best of 5)")
