using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qmoe.Numerics;

/// <summary>
/// Copies GEMM operand blocks into the panel layout the micro-kernel streams: A block [mc, kc] as panels of MR rows
/// ([panel][p][r]), B block [kc, nc] as panels of NR columns ([panel][p][j]); missing rows/columns are zero.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into dst (ceil(mc/MR) * MR * kc floats).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void PackA(in GemmOperand A, int i0, int mc, int p0, int kc, int MR, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR, dst += MR * kc)
        {
            int mr = Math.Min(MR, mc - ir);
            if (mr < MR) new Span<float>(dst, MR * kc).Clear();
            if (!A.Bf16 && !A.Transposed)
            {
                for (int r = 0; r < mr; r++)
                {
                    float* src = (float*)A.Data + (long)(i0 + ir + r) * A.Ld + p0;
                    for (int p = 0; p < kc; p++) dst[p * MR + r] = src[p];
                }
            }
            else if (!A.Bf16)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = (float*)A.Data + (long)(p0 + p) * A.Ld + i0 + ir;
                    for (int r = 0; r < mr; r++) dst[p * MR + r] = src[r];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                    for (int r = 0; r < mr; r++) dst[p * MR + r] = A[i0 + ir + r, p0 + p];
            }
        }
    }

    /// <summary>Packs the NR-column panels first .. first+count of op(B)[p0 .. p0+kc, j0 .. j0+nc] into dst (panel q at q*NR*kc).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void PackB(in GemmOperand B, int p0, int kc, int j0, int nc, int NR, int first, int count, float* dst)
    {
        for (int q = first; q < first + count; q++)
        {
            int jr = q * NR;
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (long)q * NR * kc;
            if (nr < NR) new Span<float>(d, NR * kc).Clear();
            int j = j0 + jr;
            if (!B.Transposed && !B.Bf16)
            {
                for (int p = 0; p < kc; p++)
                    new ReadOnlySpan<float>((float*)B.Data + (long)(p0 + p) * B.Ld + j, nr).CopyTo(new Span<float>(d + p * NR, nr));
            }
            else if (B.Transposed && !B.Bf16)
            {
                for (int c = 0; c < nr; c++)
                {
                    float* src = (float*)B.Data + (long)(j + c) * B.Ld + p0;
                    for (int p = 0; p < kc; p++) d[p * NR + c] = src[p];
                }
            }
            else if (B.Transposed)
            {
                // bf16 weights W[n, k]: widen on the fly (a bf16 is the top half of an f32).
                for (int c = 0; c < nr; c++)
                {
                    ushort* src = (ushort*)B.Data + (long)(j + c) * B.Ld + p0;
                    for (int p = 0; p < kc; p++) ((uint*)d)[p * NR + c] = (uint)src[p] << 16;
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                    for (int c = 0; c < nr; c++) d[p * NR + c] = B[p0 + p, j + c];
            }
        }
    }
}
