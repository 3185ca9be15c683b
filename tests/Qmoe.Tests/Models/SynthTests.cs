using Qmoe.IO;
using Qmoe.Models;
using Qmoe.Runtime;

namespace Qmoe.Tests.Models;

/// <summary>Synthetic checkpoints: exact preset shapes, deterministic sharded bf16 output that loads and runs.</summary>
public class SynthTests
{
    private static string Tokenizer => Path.Combine(Paths.TinyModel, "spiece.model");

    /// <summary>A tiny Mixtral shape (vocab above the tokenizer's 3900 pieces; 4 heads over 2 KV heads).</summary>
    public static SynthShape TinyMixtral => Qmoe.Models.Mixtral.MixtralSynth.Mixtral8x7b with
    { VocabSize = 3904, Hidden = 32, Ffn = 48, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 8, Experts = 4, RopeTheta = 1e4 };

    public static SynthShape TinySwitch => Qmoe.Models.Switch.SwitchSynth.Base128 with
    { VocabSize = 4000, Hidden = 32, Ffn = 48, Layers = 2, Heads = 4, HeadDim = 8, Experts = 4, ExpertCapacity = 8 };

    [Fact]
    public void PresetsHaveTheRealModelsParameterCounts()
    {
        // Mixtral-8x7B: 46,702,792,704 parameters (the published count).
        Assert.Equal(46_702_792_704L, Qmoe.Models.Mixtral.MixtralSynth.Mixtral8x7b.Tensors().Sum(t => t.Elements));
        var sw = Qmoe.Models.Switch.SwitchSynth.Base128.Tensors().ToList();
        Assert.Equal(6 * 2 * 128 * 2, sw.Count(t => t.Name.Contains(".experts.expert_")));
        Assert.Contains(sw, t => t.Name == "encoder.block.1.layer.1.mlp.experts.expert_127.wo.weight" && t.Rows == 768 && t.Cols == 3072);
        Assert.Contains(sw, t => t.Name == "decoder.block.11.layer.2.mlp.router.classifier.weight");
        Assert.Contains(sw, t => t.Name == "decoder.block.10.layer.2.mlp.wi.weight");
    }

    [Fact]
    public void SwitchC2048HasEverySparseBlockAndItsExpertCount()
    {
        var c = SynthShape.Named("switch-c-2048");
        // 15 + 15 blocks, all sparse, 2048 experts of wi [6144, 2080] and wo [2080, 6144]: 1.57T expert parameters.
        long expert = c.Tensors().Where(t => t.Name.Contains(".experts.expert_")).Sum(t => t.Elements);
        Assert.Equal(30L * 2048 * 2 * 6144 * 2080, expert);
        Assert.Equal(1_570_347_417_600L, expert);
        var slice = (c with { Layers = 1, Experts = 4 }).Tensors().ToList();
        Assert.Equal(2 * 4 * 2, slice.Count(t => t.Name.Contains(".experts.expert_"))); // encoder.block.0 and decoder.block.0
        Assert.Contains(slice, t => t.Name == "decoder.block.0.layer.2.mlp.router.classifier.weight" && t.Rows == 4 && t.Cols == 2080);
        Assert.Equal(15, (int)c.Config()["num_sparse_encoder_layers"]!);
    }

    [Fact]
    public void TinyMixtralIsShardedDeterministicAndRuns()
    {
        using var tmp = Paths.Temp();
        var a = SynthCheckpoint.Write(TinyMixtral, tmp.File("a"), Tokenizer, seed: 7, shardBytes: 64 << 10);
        int saved = Threads.Count;
        Threads.Count = 1;
        try { SynthCheckpoint.Write(TinyMixtral, tmp.File("b"), Tokenizer, seed: 7, shardBytes: 64 << 10); }
        finally { Threads.Count = saved; }
        Assert.True(a.Shards > 1);
        Assert.True(File.Exists(tmp.File("a/model.safetensors.index.json")));
        foreach (var f in Directory.GetFiles(a.Dir).Select(Path.GetFileName))
            Assert.True(File.ReadAllBytes(Path.Combine(a.Dir, f!)).AsSpan().SequenceEqual(File.ReadAllBytes(tmp.File("b/" + f))), $"{f} differs between thread counts");

        using (var store = TensorStore.Open(a.Dir))
        {
            var t = store.Info("model.layers.1.block_sparse_moe.experts.3.w2.weight");
            Assert.Equal(DType.BF16, t.DType);
            Assert.Equal(new long[] { 32, 48 }, t.Shape);
            var w = store.ReadFloat32("model.layers.1.block_sparse_moe.experts.3.w2.weight", 32, 48);
            double std = Math.Sqrt(w.Average(v => (double)v * v));
            Assert.InRange(std, 0.85 / Math.Sqrt(48), 1.15 / Math.Sqrt(48));
        }

        using var model = ModelLoader.Open(a.Dir);
        Assert.Equal("mixtral", model.Family);
        var g = Generation.Run(model, "And God said", 5);
        Assert.InRange(g.OutputIds.Length, g.InputIds.Length + 1, g.InputIds.Length + 5);
        var r = model.Evaluate(EvalSet.Load(Paths.EvalSets, "validation", model.VocabSize, limit: 2, causal: true));
        // Random weights: next-token CE near ln(vocab) (logits of roughly unit scale add a little).
        Assert.InRange(r.MeanCe, Math.Log(3904) - 1, Math.Log(3904) + 3);
    }

    [Fact]
    public void TinySwitchRuns()
    {
        using var tmp = Paths.Temp();
        var s = SynthCheckpoint.Write(TinySwitch, tmp.File("s"), Tokenizer, seed: 1);
        Assert.Equal(1, s.Shards);
        using var model = ModelLoader.Open(s.Dir);
        Assert.Equal("switch_transformers", model.Family);
        var g = Generation.Run(model, "In the beginning", 4);
        Assert.Equal(0, g.OutputIds[0]);
        var r = model.Evaluate(EvalSet.Load(Paths.EvalSets, "validation", model.VocabSize, limit: 2));
        Assert.InRange(r.MeanCe, Math.Log(4000) - 1, Math.Log(4000) + 3);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        using var tmp = Paths.Temp();
        Assert.Contains("unknown shape", Assert.Throws<QmoeException>(() => SynthShape.Named("gpt-5")).Message);
        Assert.Contains("not found", Assert.Throws<QmoeException>(() => SynthCheckpoint.Write(TinyMixtral, tmp.File("x"), tmp.File("none.model"))).Message);
        Assert.Contains("already exists", Assert.Throws<QmoeException>(() => SynthCheckpoint.Write(TinyMixtral, tmp.Path, Tokenizer)).Message);
        Cli.CliProcess.AssertRefused(Cli.CliProcess.Run("synth", "--shape", "mixtral-8x7b", "--out", tmp.File("y"), "--layers", "0"), "--layers");
    }
}
