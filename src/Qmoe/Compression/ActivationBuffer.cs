using System.IO.MemoryMappedFiles;

namespace Qmoe.Compression;

/// <summary>
/// A fixed-size matrix of f32 rows [Rows, Width] for the pipeline's activations: a managed array when the
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
    private float* _ptr;

    public long Rows { get; }
    public int Width { get; }
    public bool Spilled => _file != null;
    public long Bytes => Rows * Width * sizeof(float);

    public ActivationBuffer(long rows, int width, MemoryBudget budget, string name)
    {
        Rows = rows; Width = width; _budget = budget;
        long bytes = Bytes;
        if (bytes <= (long)Array.MaxLength * sizeof(float) && budget.TryReserve(bytes))
        {
            _ram = GC.AllocateArray<float>(checked((int)(rows * width)), pinned: true);
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
            _ptr = (float*)(p + _view.PointerOffset);
        }
        catch (IOException e)
        {
            Dispose();
            throw new QmoeException($"{_file}: cannot create a {bytes >> 20} MiB activation spill file ({e.Message.ReplaceLineEndings(" ")}); free disk space or raise --memory-budget");
        }
    }

    /// <summary>Rows [first, first + count) as a writable span (count · Width must fit in an int).</summary>
    public Span<float> Slice(long first, int count)
    {
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(first));
        long start = first * Width;
        int len = checked(count * Width);
        return _ram != null ? _ram.AsSpan(checked((int)start), len) : new Span<float>(_ptr + start, len);
    }

    /// <summary>Rows [first, first + count) as a weight matrix view (valid while this buffer lives).</summary>
    public Models.Layers.Matrix Matrix(long first, int count)
    {
        var span = Slice(first, count);
        fixed (float* p = span) return Models.Layers.Matrix.FromPointer(p, count, Width); // RAM arrays are pinned, files mapped
    }

    public void Dispose()
    {
        if (_ram != null) { _budget.Release(Bytes); _ram = null; }
        if (_view != null && _ptr != null) { _view.SafeMemoryMappedViewHandle.ReleasePointer(); _ptr = null; }
        _view?.Dispose();
        _mmf?.Dispose();
        if (_file != null) { try { File.Delete(_file); } catch (IOException) { } }
    }
}
