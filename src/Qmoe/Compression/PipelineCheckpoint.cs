using System.Text.Json;
using Qmoe.IO;

namespace Qmoe.Compression;

/// <summary>
/// The resume point of a compression run, saved after every block in the work directory: the index of the
/// next block and the hidden states it starts from (raw f32 files). A run with <c>--resume</c> continues from
/// here; the fingerprint (model, settings, calibration) must match, so a resumed run computes exactly what
/// the interrupted one would have.
/// </summary>
public sealed class PipelineCheckpoint(string workDir)
{
    private sealed record State(string Fingerprint, int NextBlock, string[] Buffers);

    private string StatePath => Path.Combine(workDir, "checkpoint.json");
    private string BufferPath(string name) => Path.Combine(workDir, $"{name}.f32");

    public bool Exists => File.Exists(StatePath);

    /// <summary>Saves named buffers, then (last, atomically) the state that makes them the resume point.</summary>
    public void Save(string fingerprint, int nextBlock, IReadOnlyDictionary<string, ActivationBuffer> buffers)
    {
        foreach (var (name, buf) in buffers)
            AtomicFile.Write(BufferPath(name), fs => CopyRows(buf, bytes => fs.Write(bytes)));
        AtomicFile.WriteAllText(StatePath, JsonSerializer.Serialize(new State(fingerprint, nextBlock, buffers.Keys.ToArray())));
    }

    /// <summary>
    /// End of block <paramref name="block"/>: adds its time to <paramref name="stage"/>, saves the checkpoint (timed
    /// as "checkpoint"; the hidden states only when <paramref name="saveBuffers"/>, i.e. when a later block reads them),
    /// then runs the work directory's test hook.
    /// </summary>
    public void AfterBlock(string fingerprint, int block, IReadOnlyDictionary<string, ActivationBuffer> buffers, bool saveBuffers,
        Dictionary<string, double> stageSeconds, string stage, TimeSpan blockTime, CompressionWorkDir work)
    {
        stageSeconds[stage] = stageSeconds.GetValueOrDefault(stage) + blockTime.TotalSeconds;
        var budget = buffers.Values.First().Budget;
        budget.Lap("recompute"); // the block's outputs with the quantized experts (or a dense block's forward pass)
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Save(fingerprint, block + 1, saveBuffers ? buffers : new Dictionary<string, ActivationBuffer>());
        budget.TrimResident();
        budget.Lap("checkpoint");
        stageSeconds["checkpoint"] = stageSeconds.GetValueOrDefault("checkpoint") + sw.Elapsed.TotalSeconds;
        work.AfterBlockHook(block);
    }

    /// <summary>The next block to run, after filling <paramref name="buffers"/> (those the checkpoint holds) from disk.</summary>
    public int Load(string fingerprint, IReadOnlyDictionary<string, ActivationBuffer> buffers)
    {
        State state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(StatePath)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new QmoeException($"{StatePath}: corrupt checkpoint ({e.Message})"); }
        if (state.Fingerprint != fingerprint)
            throw new QmoeException($"{StatePath}: the checkpoint belongs to a run with another model, settings or calibration data; delete {workDir} to start over");
        foreach (var name in state.Buffers)
        {
            if (!buffers.TryGetValue(name, out var buf)) continue;
            string path = BufferPath(name);
            long expected = buf.Bytes;
            if (!File.Exists(path) || new FileInfo(path).Length != expected)
                throw new QmoeException($"{path}: checkpoint buffer missing or of the wrong size (expected {expected} bytes)");
            using var fs = File.OpenRead(path);
            CopyRows(buf, bytes => fs.ReadExactly(bytes));
        }
        return state.NextBlock;
    }

    private delegate void RowBytes(Span<byte> bytes);

    /// <summary>Hands <paramref name="buf"/>'s f32 rows to <paramref name="io"/> 256 at a time (to write or fill them),
    /// dropping each chunk's pages of a spilled buffer from the resident set after it (4 GiB of hidden states at
    /// Mixtral-8x7B × 128 × 2048 stayed resident otherwise).</summary>
    private static void CopyRows(ActivationBuffer buf, RowBytes io)
    {
        const int rowsPerCopy = 256;
        for (long r = 0; r < buf.Rows; r += rowsPerCopy)
        {
            int n = (int)Math.Min(rowsPerCopy, buf.Rows - r);
            io(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buf.Slice(r, n)));
            buf.TrimRows(r, n);
        }
    }
}
