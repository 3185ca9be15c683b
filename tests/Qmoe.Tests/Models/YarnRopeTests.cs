using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.Models;
using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Layers;

namespace Qmoe.Tests.Models;

/// <summary>
/// YaRN against values of Hugging Face's formula computed by tools/yarn_reference.py (tests/data/yarn): inverse
/// frequencies, attention factor, cos/sin at several positions, and DeepSeek's softmax-scale mscale² adjustment,
/// for the rope_scaling of the real DeepSeek-V3 and Kimi-K2 configs and a Qwen3-style generic YaRN.
/// </summary>
public class YarnRopeTests
{
    private static JsonElement[] Cases()
    {
        var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.TestData, "yarn", "yarn_reference.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().ToArray();
    }

    private static JsonObject ConfigOf(JsonElement c) => new()
    {
        ["max_position_embeddings"] = c.GetProperty("max_position_embeddings").GetInt32(),
        ["rope_theta"] = c.GetProperty("rope_theta").GetDouble(),
        ["rope_scaling"] = JsonNode.Parse(c.GetProperty("rope_scaling").GetRawText()),
    };

    [Fact]
    public void FrequenciesAttentionFactorAndCosSinMatchHuggingFace()
    {
        var cases = Cases();
        Assert.Equal(4, cases.Length);
        foreach (var c in cases)
        {
            string name = c.GetProperty("name").GetString()!;
            var scaling = RopeScaling.From(ConfigReader.FromJson(ConfigOf(c), name))!;
            int dim = c.GetProperty("dim").GetInt32();
            var (inv, attn) = YarnRope.Parameters(dim, c.GetProperty("rope_theta").GetDouble(), scaling);
            var expected = c.GetProperty("inv_freq").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(expected.Length, inv.Length);
            for (int i = 0; i < inv.Length; i++)
                Assert.True(Math.Abs(inv[i] - expected[i]) <= 2e-7 * expected[i], $"{name}: inv_freq[{i}] {inv[i]} vs {expected[i]}");
            Assert.Equal(c.GetProperty("attention_factor").GetDouble(), attn, 12);

            // cos/sin as the rotation of unit vectors: head = [1, .., 1 | 0, .., 0] → [cos·a | sin·a].
            var rope = YarnRope.Create(dim, c.GetProperty("rope_theta").GetDouble(), scaling, interleaved: false);
            var positions = c.GetProperty("positions").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var cos = c.GetProperty("cos").EnumerateArray().ToArray();
            var sin = c.GetProperty("sin").EnumerateArray().ToArray();
            for (int p = 0; p < positions.Length; p++)
            {
                var x = new float[dim];
                x.AsSpan(0, dim / 2).Fill(1f);
                rope.Apply(x, 1, 1, positions[p]);
                var ec = cos[p].EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var es = sin[p].EnumerateArray().Select(e => e.GetDouble()).ToArray();
                for (int i = 0; i < dim / 2; i++)
                {
                    // f32 pow implementations differ by an ulp or so (2e-7 relative, checked above), which moves the
                    // f32 angle pos·inv_freq by up to pos·inv_freq·4e-7: the tolerance allows that and 1e-6 more.
                    double tol = 1e-6 + positions[p] * expected[i] * 4e-7;
                    Assert.True(Math.Abs(x[i] - ec[i]) <= tol, $"{name} pos {positions[p]}: cos[{i}] {x[i]} vs {ec[i]}");
                    Assert.True(Math.Abs(x[i + dim / 2] - es[i]) <= tol, $"{name} pos {positions[p]}: sin[{i}] {x[i + dim / 2]} vs {es[i]}");
                }
            }
        }
    }

    [Fact]
    public void DeepseekSoftmaxScaleIncludesMscaleSquared()
    {
        foreach (var c in Cases().Where(c => c.TryGetProperty("softmax_scale", out _)))
        {
            var json = TinyDeepseek.Config();
            foreach (var (k, v) in ConfigOf(c)) json[k] = v?.DeepClone();
            json["qk_nope_head_dim"] = c.GetProperty("qk_head_dim").GetInt32() - 64;
            json["qk_rope_head_dim"] = 64;
            var cfg = DeepseekV3Config.From(ConfigReader.FromJson(json, "config.json"), "");
            double expected = c.GetProperty("softmax_scale").GetDouble();
            Assert.True(Math.Abs(cfg.SoftmaxScale() - expected) <= 1e-7 * expected, $"{c.GetProperty("name")}: {cfg.SoftmaxScale()} vs {expected}");
        }
    }

    [Fact]
    public void InterleavedRotationEqualsHalfRotationOfPermutedPairs()
    {
        // HF's rope_interleave: permute [x0, x2, .., x1, x3, ..], then rotate halves. Our in-place pair rotation must
        // give the same values, permuted the same way.
        var rng = new Random(5);
        int dim = 16;
        var x = Enumerable.Range(0, dim).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var permuted = Enumerable.Range(0, dim).Select(i => x[i < dim / 2 ? 2 * i : 2 * (i - dim / 2) + 1]).ToArray();
        new RotaryEmbedding(dim, 10000, interleaved: true).Apply(x, 1, 1, 37);
        new RotaryEmbedding(dim, 10000, interleaved: false).Apply(permuted, 1, 1, 37);
        for (int i = 0; i < dim / 2; i++)
        {
            Assert.Equal(permuted[i], x[2 * i]);
            Assert.Equal(permuted[i + dim / 2], x[2 * i + 1]);
        }
    }

    [Theory]
    [InlineData("{\"type\":\"linear\",\"factor\":2.0}", "rope_scaling type 'linear'")]
    [InlineData("{\"rope_type\":\"dynamic\",\"factor\":2.0}", "rope_scaling type 'dynamic'")]
    [InlineData("{\"type\":\"yarn\",\"factor\":40,\"original_max_position_embeddings\":8192}", "differs from max_position_embeddings")]
    [InlineData("{\"type\":\"yarn\"}", "'factor'")]
    public void UnsupportedRopeScalingIsRefused(string scaling, string mentioned)
    {
        var json = TinyDeepseek.Config();
        json["max_position_embeddings"] = 163840;
        json["rope_scaling"] = JsonNode.Parse(scaling);
        var e = Assert.Throws<QmoeException>(() => DeepseekV3Config.From(ConfigReader.FromJson(json, "config.json"), ""));
        Assert.Contains(mentioned, e.Message);
    }
}
