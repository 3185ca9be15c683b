using System.Collections.Concurrent;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// Ids of pieces already tokenized (Hugging Face keeps the same per-word cache): bounded in entries and in piece
/// length; once full, new pieces are computed but not stored. Thread-safe.
/// </summary>
internal sealed class WordCache
{
    public const int MaxPieceLength = 256;
    private readonly int _capacity;
    private readonly ConcurrentDictionary<string, int[]> _map = new(StringComparer.Ordinal);
    private int _count; // ConcurrentDictionary.Count takes every lock

    public WordCache(int capacity) => _capacity = capacity;

    public bool TryGet(string piece, out int[] ids) => _map.TryGetValue(piece, out ids!);

    public void Add(string piece, int[] ids)
    {
        if (piece.Length < MaxPieceLength && Volatile.Read(ref _count) < _capacity && _map.TryAdd(piece, ids))
            Interlocked.Increment(ref _count);
    }
}
