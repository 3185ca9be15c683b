#!/usr/bin/env python3
"""GEMM 2048^3 float32 GFLOP/s with PyTorch (Debian python3-torch on OpenBLAS) at 1 and 2 threads.

The baseline for `qmoe bench gptq`'s GEMM line (issue 15). Run it in the same sitting as the bench, on a quiet
machine: /usr/bin/python3 tools/gemm/torch_gemm.py. Needs the packages python3-torch and libopenblas0-pthread
(without OpenBLAS, Debian's torch falls back to the reference BLAS: ~8 GFLOP/s).

Each thread count runs in its own process with OPENBLAS_NUM_THREADS set (torch.set_num_threads does not bind
OpenBLAS's own pool). OpenBLAS picks its kernels by CPU; to compare with qmoe's AVX2 path
(DOTNET_EnableAVX512=0) on an AVX-512 machine, force its AVX2 kernels: OPENBLAS_CORETYPE=Haswell.
Not used by CI.
"""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import time

N = 2048


def one(threads: int) -> None:
    import torch
    a, b = torch.randn(N, N), torch.randn(N, N)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    print(f"GEMM {N}^3, {threads} thread(s): {2 * N**3 / best / 1e9:.1f} GFLOP/s (best of 5)")


def config() -> str:
    for name in ("openblas", "openblasp", "blas"):
        path = ctypes.util.find_library(name)
        if not path:
            continue
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_get_config") and hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_config.restype = lib.openblas_get_corename.restype = ctypes.c_char_p
            return f"{lib.openblas_get_config().decode()}, kernels {lib.openblas_get_corename().decode()}"
    return "no OpenBLAS found"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        one(int(sys.argv[1]))
    else:
        import torch
        print("torch", torch.__version__, "|", config(), "| OPENBLAS_CORETYPE =", os.environ.get("OPENBLAS_CORETYPE", "(auto)"))
        for threads in (1, 2):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            subprocess.run([sys.executable, __file__, str(threads)], env=env, check=True)
