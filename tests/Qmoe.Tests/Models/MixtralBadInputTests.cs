using System.Text.Json.Nodes;
using Qmoe.Models;
using Qmoe.Models.Mixtral;
using Qmoe.Runtime;

namespace Qmoe.Tests.Models;

/// <summary>Unsupported Mixtral configs and mismatched checkpoints are refused with one-line errors naming the field or tensor.</summary>
public class MixtralBadInputTests
{
    private static JsonObject TinyConfig() => new()
    {
        ["model_type"] = "mixtral", ["vocab_size"] = 3900, ["hidden_size"] = 192, ["intermediate_size"] = 384,
        ["num_hidden_layers"] = 4, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 2, ["num_local_experts"] = 8,
        ["num_experts_per_tok"] = 2, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["hidden_act"] = "silu",
        ["sliding_window"] = null, ["tie_word_embeddings"] = false, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
    };

    private static MixtralConfig Parse(JsonObject config)
    {
        using var dir = Paths.Temp();
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        return MixtralConfig.From(ConfigReader.Load(dir.Path));
    }

    [Fact]
    public void ValidConfigParses()
    {
        var c = Parse(TinyConfig());
        Assert.Equal(32, c.HeadDim);
        Assert.Equal(64, c.KvWidth);
        Assert.Null(c.SlidingWindow);
    }

    [Theory]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act")]
    [InlineData("rope_scaling", "{\"type\":\"linear\",\"factor\":2.0}", "rope_scaling")]
    [InlineData("tie_word_embeddings", "true", "tie_word_embeddings")]
    [InlineData("num_key_value_heads", "4", "num_key_value_heads")]
    [InlineData("num_experts_per_tok", "9", "num_experts_per_tok")]
    [InlineData("hidden_size", "200", "hidden_size")]
    [InlineData("model_type", "\"llama\"", "model_type")]
    public void UnsupportedValuesAreRefused(string field, string json, string mentioned)
    {
        var cfg = TinyConfig();
        cfg[field] = JsonNode.Parse(json);
        var e = Assert.Throws<QmoeException>(() => Parse(cfg));
        Assert.Contains(mentioned, e.Message);
    }

    [Fact]
    public void SequencesBeyondTheSlidingWindowAreRefused()
    {
        var cfg = TinyConfig();
        cfg["sliding_window"] = 16;
        var c = Parse(cfg);
        c.CheckLength(16);
        var e = Assert.Throws<QmoeException>(() => c.CheckLength(17));
        Assert.Contains("sliding_window", e.Message);
    }

    [FixtureFact("mixtral-tiny-8")]
    public void WrongTensorShapeIsRefused()
    {
        using var dir = Paths.Temp();
        var src = Paths.Fixture("mixtral-tiny-8")!;
        foreach (var f in new[] { "model.safetensors", "spiece.model" }) File.Copy(Path.Combine(src, f), dir.File(f));
        var cfg = TinyConfig();
        cfg["intermediate_size"] = 256;
        File.WriteAllText(dir.File("config.json"), cfg.ToJsonString());
        var e = Assert.Throws<QmoeException>(() => ModelLoader.Open(dir.Path));
        Assert.Contains("experts.0.w1.weight", e.Message);
    }
}
