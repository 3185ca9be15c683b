using Qmoe.IO;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

public class DenseMatVecTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(5, 16)]
    [InlineData(17, 129)]
    [InlineData(64, 300)]
    [InlineData(9, 1031)]
    public void F32AndBf16MatchADoubleReference(int rows, int cols)
    {
        var rnd = new Random(rows * 7 + cols);
        var wf = CompressedMatVecTests.RandomVector(rnd, rows * cols);
        var wb = new ushort[wf.Length];
        BFloat16.FromFloat(wf, wb);
        var x = CompressedMatVecTests.RandomVector(rnd, cols);
        var refF32 = new float[rows]; var refBf16 = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double sf = 0, sb = 0;
            for (int j = 0; j < cols; j++) { sf += (double)wf[r * cols + j] * x[j]; sb += (double)BFloat16.ToFloat(wb[r * cols + j]) * x[j]; }
            refF32[r] = (float)sf; refBf16[r] = (float)sb;
        }
        foreach (int threads in new[] { 1, 2 })
        {
            using var parallel = new RowParallel(threads);
            var dense = new DenseMatVec(parallel);
            var y = new float[rows];
            dense.Multiply(wf, rows, cols, x, y);
            CompressedMatVecTests.AssertClose(refF32, y);
            dense.Multiply(wb, rows, cols, x, y);
            CompressedMatVecTests.AssertClose(refBf16, y);
        }
    }

    [Fact]
    public void WrongShapesAreRefused()
    {
        using var parallel = new RowParallel(1);
        var dense = new DenseMatVec(parallel);
        Assert.Throws<ArgumentException>(() => dense.Multiply(new float[10], 3, 4, new float[4], new float[3]));
        Assert.Throws<ArgumentException>(() => dense.Multiply(new ushort[12], 3, 4, new float[5], new float[3]));
    }
}
