using System.Buffers;

namespace Qmoe.Numerics;

/// <summary>
/// A temporary float buffer for one call: rented from <see cref="ArrayPool{T}.Shared"/> when small, allocated when
/// large. A decode step runs hundreds of small products whose few-KB temporaries, allocated fresh, made the GC collect
/// every step or two (it collects after ~2 MB on a machine that reports no cache sizes); large buffers (calibration
/// chunks, tens of MB) are not pooled, since the pool would keep them alive outside the compression memory budget.
/// Contents are not cleared: the caller writes before it reads. Dispose returns a rented array.
/// </summary>
public readonly ref struct ScratchBuffer
{
    /// <summary>The largest buffer rented from the pool (1 MiB of floats).</summary>
    public const int MaxPooled = 1 << 18;

    private readonly float[] _array;
    private readonly bool _pooled;

    public ScratchBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _pooled = length <= MaxPooled;
        _array = _pooled ? ArrayPool<float>.Shared.Rent((int)length) : new float[length];
        Span = _array.AsSpan(0, checked((int)length));
    }

    /// <summary>The buffer's <c>length</c> floats.</summary>
    public Span<float> Span { get; }

    /// <summary>The backing array, at least <c>length</c> long (for APIs that take arrays); not to be kept after Dispose.</summary>
    public float[] Array => _array;

    public void Dispose()
    {
        if (_pooled) ArrayPool<float>.Shared.Return(_array);
    }
}
