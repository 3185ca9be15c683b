using System.IO.MemoryMappedFiles;
using Qmoe.IO;

namespace Qmoe.Compression;

/// <summary>
/// A fixed-size matrix of rows [Rows, Width] (f32, or bf16 for weights known to be bf16-exact) for the pipeline's activations: a managed array when the
/// memory budget allows, otherwise a memory-mapped temporary file. The file is preallocated (fallocate) so a
/// full disk fails here with a clear error instead of as a fault when a mapped page is first written.
/// </summary>
public sealed unsafe class ActivationBuffer : IDisposable
{
    private readonly MemoryBudget _budget;
    private float[]? _ram;
    private readonly string? _file;
    private readonly MemoryMappedFile? _mmf;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _ptr;
    private byte* _mapBase;

    public long Rows { get; }
    public int Width { get; }
    /// <summary><see cref="DType.F32"/> or <see cref="DType.BF16"/>.</summary>
    public DType DType { get; }
    public bool Spilled => _file != null;
    /// <summary>The budget this buffer counts against.</summary>
    public MemoryBudget Budget => _budget;
    public long Bytes => Rows * Width * DType.Size();

    public ActivationBuffer(long rows, int width, MemoryBudget budget, string name, DType dtype = DType.F32)
    {
        if (dtype is not (DType.F32 or DType.BF16)) throw new ArgumentException("activation buffers hold F32 or BF16");
        Rows = rows; Width = width; _budget = budget; DType = dtype;
        long bytes = Bytes;
        if (bytes <= (long)Array.MaxLength * sizeof(float) && budget.TryReserve(bytes))
        {
            _ram = GC.AllocateArray<float>(checked((int)((bytes + 3) / 4)), pinned: true);
            fixed (float* p = _ram) _ptr = (byte*)p; // pinned: the address is stable
            return;
        }
        Directory.CreateDirectory(budget.SpillDirectory);
        _file = Path.Combine(budget.SpillDirectory, $"{name}.{Guid.NewGuid():N}.spill");
        try
        {
            using (var fs = new FileStream(_file, new FileStreamOptions
                   { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, PreallocationSize = Math.Max(bytes, 1) }))
                fs.SetLength(Math.Max(bytes, 1));
            _mmf = MemoryMappedFile.CreateFromFile(_file, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
            _view = _mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _mapBase = p;
            _ptr = p + _view.PointerOffset;
            budget.AddSpilled(this);
        }
        catch (IOException e)
        {
            Dispose();
            throw new QmoeException($"{_file}: cannot create a {bytes >> 20} MiB activation spill file ({e.Message.ReplaceLineEndings(" ")}); free disk space or raise --memory-budget");
        }
    }

    /// <summary>Rows [first, first + count) of an f32 buffer as a writable span (count · Width must fit in an int).</summary>
    public Span<float> Slice(long first, int count) =>
        DType == DType.F32 ? new Span<float>(Address(first, count), checked(count * Width)) : throw new InvalidOperationException("buffer is bf16");

    /// <summary>Stores f32 rows starting at <paramref name="first"/>, rounding to bf16 for a bf16 buffer.</summary>
    public void Write(long first, ReadOnlySpan<float> rows)
    {
        int count = rows.Length / Width;
        if (DType == DType.F32) rows.CopyTo(Slice(first, count));
        else BFloat16.FromFloat(rows, new Span<ushort>(Address(first, count), rows.Length));
    }

    /// <summary>Rows [first, first + count) as a weight matrix view (valid while this buffer lives).</summary>
    public Models.Layers.Matrix Matrix(long first, int count) =>
        Models.Layers.Matrix.FromPointer(Address(first, count), DType, count, Width); // RAM arrays are pinned, files mapped

    private byte* Address(long first, int count)
    {
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(first));
        return _ptr + first * Width * DType.Size();
    }

    /// <summary>Spilled buffers: drops the whole pages inside rows [first, first + count) from the resident set (see <see cref="Trim"/>).</summary>
    public void TrimRows(long first, int count)
    {
        if (_mapBase == null) return;
        long page = Environment.SystemPageSize; // madvise needs page-aligned ranges: 4 KiB here, 16/64 KiB on some ARM systems
        long start = (_ptr - _mapBase) + first * Width * DType.Size(), end = start + (long)count * Width * DType.Size();
        long a = (start + page - 1) / page * page, b = end / page * page;
        if (b > a) MappedPages.DropResident(_mapBase + a, (ulong)(b - a));
    }

    /// <summary>Spilled buffers: drops the mapping's pages from the resident set (<see cref="MappedPages"/>); the data stays in the file.</summary>
    public void Trim()
    {
        if (_mapBase != null) MappedPages.DropResident(_mapBase, _view!.SafeMemoryMappedViewHandle.ByteLength);
    }

    public void Dispose()
    {
        if (_mapBase != null) { _budget.RemoveSpilled(this); _mapBase = null; }
        if (_ram != null) { _budget.Release(Bytes); _ram = null; _ptr = null; }
        if (_view != null && _ptr != null) { _view.SafeMemoryMappedViewHandle.ReleasePointer(); _ptr = null; }
        _view?.Dispose();
        _mmf?.Dispose();
        if (_file != null) { try { File.Delete(_file); } catch (IOException) { } }
    }
}
