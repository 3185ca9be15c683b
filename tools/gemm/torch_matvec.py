#!/usr/bin/env python3
"""One token through 128 expert matrices with PyTorch's matrix-vector product, f32 and bf16, at 1 and 2 threads.

A check on `qmoe bench matvec`'s dense baselines (its "f32 ms" and "bf16 ms" columns): the same shapes as its
switch-base-128 layer (wi 3072x768, wo 768x3072), 128 distinct matrices so that the weights come from DRAM, fastest
of 7 sweeps, ms per matrix. Run it in the same sitting as the bench, on a quiet machine:
/usr/bin/python3 tools/gemm/torch_matvec.py. Each thread count runs in its own process with OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS set. Not used by CI.
"""
import os
import subprocess
import sys
import time

EXPERTS = 128
SHAPES = ((3072, 768), (768, 3072))


def one(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    for dtype in (torch.float32, torch.bfloat16):
        for rows, cols in SHAPES:
            w = [torch.randn(rows, cols).to(dtype) for _ in range(EXPERTS)]
            x = torch.randn(cols).to(dtype)
            best = float("inf")
            for _ in range(7):
                t = time.perf_counter()
                for m in w:
                    torch.mv(m, x)
                best = min(best, (time.perf_counter() - t) / EXPERTS)
            name = str(dtype).replace("torch.", "")
            print(f"{name:8} {rows}x{cols}, {threads} thread(s): {best * 1e3:.3f} ms, {rows * cols / best / 1e9:.2f} G weights/s")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        one(int(sys.argv[1]))
    else:
        import torch
        print("torch", torch.__version__)
        for threads in (1, 2):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            subprocess.run([sys.executable, __file__, str(threads)], env=env, check=True)
