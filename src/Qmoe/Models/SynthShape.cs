using System.Text.Json.Nodes;

namespace Qmoe.Models;

/// <summary>One tensor of a synthetic checkpoint: [Rows, Cols] (Cols = 0 for a vector), filled with ones or N(0, Std²).</summary>
public sealed record SynthTensor(string Name, long Rows, long Cols, float Std, bool Ones = false)
{
    public long[] Shape => Cols == 0 ? [Rows] : [Rows, Cols];
    public long Elements => Cols == 0 ? Rows : Rows * Cols;
}

/// <summary>
/// The architecture of a synthetic Hugging Face checkpoint (<c>qmoe synth</c>): a model of a registered family
/// with given sizes, its config.json (HF field names) and its tensor list in HF naming and order.
/// The families' named presets are the real models' exact shapes; small custom shapes serve tests.
/// Initialisation ("roughly trained scale"): every matrix N(0, 1/fan_in) with fan_in = its input width
/// (columns), token embeddings N(0, 1), norm weights 1.
/// </summary>
public sealed record SynthShape
{
    /// <summary>The family's model_type (see <see cref="ModelFamilies"/>).</summary>
    public required string Family { get; init; }
    public required int VocabSize { get; init; }
    public required int Hidden { get; init; }
    public required int Ffn { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int HeadDim { get; init; }
    public required int Experts { get; init; }
    /// <summary>Mixtral: key/value heads and experts per token.</summary>
    public int KvHeads { get; init; }
    public int TopK { get; init; } = 1;
    public double RopeTheta { get; init; } = 1e6;
    /// <summary>Switch: capacity, relative-position buckets and max distance.</summary>
    public int ExpertCapacity { get; init; } = 64;
    public int Buckets { get; init; } = 32;
    public int MaxDistance { get; init; } = 128;
    /// <summary>Switch: every block sparse (switch-c-2048) instead of every other one.</summary>
    public bool AllSparse { get; init; }
    /// <summary>
    /// Families whose config has more than these fields (Qwen3-MoE, DeepSeek-V3) name the preset whose real config.json
    /// the shape slices (by <see cref="Layers"/> and <see cref="Experts"/>); the other fields then describe it.
    /// </summary>
    public string? Preset { get; init; }

    /// <summary>A preset of any family by name (<c>synth --shape</c>).</summary>
    public static SynthShape Named(string name) => ModelFamilies.SynthPreset(name);

    /// <summary>Switch: sparse layer count of one stack (every other layer, HF's rule with step 2; every layer for c2048).</summary>
    public int SparseLayers => AllSparse ? Layers : Layers / 2;

    /// <summary>The HF config.json of this shape (its family's).</summary>
    public JsonObject Config() => ModelFamilies.Named(Family).SynthConfig(this);

    /// <summary>Matrix N(0, 1/fan_in) with fan_in = its columns.</summary>
    public static SynthTensor M(string name, long rows, long cols) => new(name, rows, cols, 1f / MathF.Sqrt(cols));
    /// <summary>Norm weight of ones.</summary>
    public static SynthTensor Norm(string name, long dim) => new(name, dim, 0, 0, Ones: true);
    /// <summary>A SwiGLU MLP's gate_proj, up_proj [ffn, dim] and down_proj [dim, ffn] under <paramref name="prefix"/>.</summary>
    public static IEnumerable<SynthTensor> GatedMlp(string prefix, long dim, long ffn) =>
        [M($"{prefix}.gate_proj.weight", ffn, dim), M($"{prefix}.up_proj.weight", ffn, dim), M($"{prefix}.down_proj.weight", dim, ffn)];

    /// <summary>All tensors in HF order (the order they are written).</summary>
    public IEnumerable<SynthTensor> Tensors() => ModelFamilies.Named(Family).SynthTensors(this);
}
