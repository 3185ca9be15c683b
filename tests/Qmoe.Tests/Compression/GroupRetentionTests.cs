using Qmoe.Compression;

namespace Qmoe.Tests.Compression;

/// <summary>Runs alone: the test reads the process's live managed memory, which other tests' allocations would blur.</summary>
[CollectionDefinition(nameof(LiveMemoryCollection), DisableParallelization = true)]
public sealed class LiveMemoryCollection;

/// <summary>
/// Nothing of a finished group of experts stays reachable while the next group is quantized (issue 14: the loop's
/// unoptimised-JIT temporaries kept the last group's results, 840 MiB per Mixtral-8x7B expert, alive through the next).
/// </summary>
[Collection(nameof(LiveMemoryCollection))]
public class GroupRetentionTests
{
    [Fact]
    public void AGroupsResultsAreGarbageWhenTheNextGroupStarts()
    {
        using var tmp = Paths.Temp();
        var calib = CalibrationLoader.Load(Paths.TinyModel, Paths.CalibrationText, null, null, 16, premask: false);
        var options = new CompressionOptions { GroupSize = 1 };
        // Live bytes at the start of each group (one expert per group), per sparse layer, measured on the pipeline's thread.
        var live = new List<List<long>>();
        CompressionPipeline.Run(Paths.TinyModel, tmp.File("out"), calib, options, p =>
        {
            if (p.Stage != "quantize" || !p.Message.Contains(": experts ")) return;
            if (p.Message.Contains(": experts 0–")) live.Add([]);
            live[^1].Add(GC.GetTotalMemory(forceFullCollection: true));
        });
        // One switch-tiny-8 expert's results: wi and wo, 2 × 256 × 128 weights as f32 dequantized + u8 codes.
        const long results = 2 * 256 * 128 * 5;
        Assert.Equal(2, live.Count); // one sparse encoder and one sparse decoder layer
        // Between group 0's start and the others' the layer's writer has allocated its file buffer (1 MiB, at the first
        // expert written); nothing else may have grown. Before the fix every later group also started with the
        // previous group's results live: measured ~1.38 MB more instead of ~1.05 MB.
        const long writerBuffer = 1 << 20;
        foreach (var layer in live)
        {
            Assert.Equal(8, layer.Count);
            for (int g = 1; g < layer.Count; g++)
                Assert.True(layer[g] - layer[0] < writerBuffer + results / 2, $"group {g} starts with {layer[g] - layer[0]} more live bytes than group 0");
        }
    }
}
