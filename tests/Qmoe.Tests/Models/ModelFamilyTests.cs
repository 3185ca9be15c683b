using System.Text.RegularExpressions;
using Qmoe.Compression;
using Qmoe.Models;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Switch;

namespace Qmoe.Tests.Models;

/// <summary>The family registry, and the layering it allows: Runtime and Compression never reference each other.</summary>
public class ModelFamilyTests
{
    [Fact]
    public void RegistryFindsEachFamilyByModelTypeAndRefusesOthers()
    {
        Assert.Equal(new[] { "switch_transformers", "mixtral", "qwen3_moe", "deepseek_v3", "kimi_k2" }, ModelFamilies.All.Select(f => f.ModelType));
        Assert.Equal(CalibrationKind.SpanCorruption, ModelFamilies.For(ConfigReader.Load(Paths.TinyModel)).Calibration);
        Assert.IsType<MixtralFamily>(ModelFamilies.Named("mixtral"));
        var cfg = ConfigReader.FromJson(new System.Text.Json.Nodes.JsonObject { ["model_type"] = "gpt2" }, "x/config.json");
        var e = Assert.Throws<QmoeException>(() => ModelFamilies.For(cfg));
        Assert.Equal("x/config.json: model_type 'gpt2' is not supported (switch_transformers, mixtral, qwen3_moe, deepseek_v3, kimi_k2)", e.Message);
        Assert.Equal(new[] { "switch-base-128", "switch-c-2048", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3", "kimi-k2" }, ModelFamilies.SynthPresetNames);
        Assert.Equal(SwitchFamily.Type, SynthShape.Named("switch-base-128").Family);
    }

    [Fact]
    public void SwitchBlocksAreWalkedEncoderThenDecoderWithSparseLayersNamed()
    {
        using var m = ModelFamilies.Named(SwitchFamily.Type).OpenForCompression(Paths.TinyModel);
        Assert.Equal(new[] { "encoder", "decoder" }, m.Streams(new CalibrationData([[1, 2]], [[0, 1]], "t")).Select(s => s.Name));
        var blocks = m.Blocks;
        Assert.Equal(blocks.Count(b => b.Stream == "encoder"), blocks.TakeWhile(b => b.Stream == "encoder").Count());
        Assert.Equal(new[] { "encoder.block.1.layer.1.mlp", "decoder.block.1.layer.2.mlp" }, blocks.Select(b => b.SparsePrefix).OfType<string>());
    }

    [Theory]
    [InlineData("Runtime", "Qmoe.Compression")]
    [InlineData("Compression", "Qmoe.Runtime")]
    public void RuntimeAndCompressionDoNotReferenceEachOther(string folder, string otherNamespace)
    {
        var names = typeof(QmoeException).Assembly.GetTypes()
            .Where(t => t.Namespace == otherNamespace && !t.IsNested && !t.Name.Contains('<'))
            .Select(t => t.Name.Split('`')[0]).ToList();
        Assert.NotEmpty(names);
        foreach (var file in Directory.GetFiles(Path.Combine(Paths.RepoRoot, "src", "Qmoe", folder), "*.cs", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(file);
            Assert.False(text.Contains(otherNamespace), $"{file} uses {otherNamespace}");
            foreach (var n in names)
                Assert.False(Regex.IsMatch(text, $@"\b{n}\b"), $"{file} uses {otherNamespace}.{n}");
        }
    }
}
