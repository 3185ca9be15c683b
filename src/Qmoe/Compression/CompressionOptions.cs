using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>Settings of one compression run (the <c>compress</c> verb's flags).</summary>
public sealed record CompressionOptions
{
    public QuantType Type { get; init; } = QuantType.Ternary;
    public QuantMethod Method { get; init; } = QuantMethod.Gptq;
    /// <summary>GPTQ damping (fraction of mean diag H); null = the type's default (0.1 ternary, 0.01 n-bit).</summary>
    public double? Damp { get; init; }
    public int BlockSize { get; init; } = 128;
    public bool ActOrder { get; init; }
    /// <summary>Exclude sentinel positions from the Hessians (QMoE's pre-masking).</summary>
    public bool Premask { get; init; }
    /// <summary>Write a dense HF checkpoint with dequantized experts instead of the compressed format.</summary>
    public bool FakeQuant { get; init; }
    /// <summary>Activations held in RAM; beyond it they go to memory-mapped spill files.</summary>
    public long MemoryBudgetBytes { get; init; } = 4L << 30;
    /// <summary>Experts get at most this many times the mean tokens per expert (≤ 0: no cap).</summary>
    public double TokenCapFactor { get; init; } = 4.0;
    /// <summary>Experts per GPTQ group; null = chosen from the memory budget.</summary>
    public int? GroupSize { get; init; }
    /// <summary>Calibration sequences run through a block at once (at most; see <see cref="ChunkTokens"/>).</summary>
    public int ChunkSequences { get; init; } = 16;
    /// <summary>Tokens run through a block at once: a chunk takes sequences while they fit (always at least one), so a
    /// chunk of long sequences stays small. 16 GPTQ-style 2048-token blocks at Mixtral width held ~3.7 GB of chunk
    /// activations, nearly the whole default budget; 4096 tokens hold ~0.5 GB. Short sequences (≤ 256 tokens) are
    /// chunked by <see cref="ChunkSequences"/> as before.</summary>
    public int ChunkTokens { get; init; } = 4096;
    /// <summary>Continue from the checkpoint of an interrupted run with the same settings.</summary>
    public bool Resume { get; init; }
    /// <summary>Dictionary code: format version of the compressed output.</summary>
    public int FormatVersion { get; init; } = 2;
    /// <summary>Compressed output: shards of at most this many bytes (HF index + model-0000k-of-0000n.safetensors);
    /// ≤ 0 or a model that fits: one model.safetensors.</summary>
    public long ShardBytes { get; init; } = 4L << 30;
    /// <summary>v2: the dictionary as a trie or as the parameters it is regenerated from (default: the smaller).</summary>
    public Codec.DictionaryStorage DictionaryStorage { get; init; } = Codec.DictionaryStorage.Auto;
    /// <summary>Store 2-bit experts bit-packed even where their dict16 code is smaller (<c>--pack-2bit</c>): faster
    /// matvecs, more bytes (docs/FORMAT.md, "Coded 2-bit experts"); the allocation probe then prices them packed.</summary>
    public bool PackTwoBit { get; init; }

    /// <summary>Mixed precision (<c>--target-bits</c>): the type of each expert matrix by checkpoint tensor name;
    /// matrices not listed get <see cref="Type"/>.</summary>
    public IReadOnlyDictionary<string, QuantType>? Allocation { get; init; }
    /// <summary>When set, every expert matrix is also quantized to each of <see cref="Precision.Candidates"/>
    /// and measured into this probe (the run itself propagates <see cref="Type"/>).</summary>
    public AllocationProbe? Probe { get; init; }
    /// <summary>How the probe scores a candidate's change of its expert's output (<c>--proxy</c>).</summary>
    public AllocationProxy Proxy { get; init; } = AllocationProxy.Output;

    /// <summary>Mixed precision: ternary matrices whose grid is widened (sparser ternary), by checkpoint tensor name.</summary>
    public IReadOnlyDictionary<string, float>? TernaryStretch { get; init; }
    /// <summary>The ternary grid stretch of one expert matrix (1 = QMoE's grid).</summary>
    public float StretchOf(string weightName) => TernaryStretch != null && TernaryStretch.TryGetValue(weightName, out var s) ? s : 1f;

    /// <summary>The type of one expert matrix (its checkpoint tensor name).</summary>
    public QuantType TypeOf(string weightName) => Allocation != null && Allocation.TryGetValue(weightName, out var t) ? t : Type;
    /// <summary>True when every expert matrix is ternary.</summary>
    public bool AllTernary => Type == QuantType.Ternary && (Allocation?.Values.All(t => t == QuantType.Ternary) ?? true);

    public GptqOptions Gptq => GptqFor(Type);
    public GptqOptions GptqFor(QuantType type, float stretch = 1f) =>
        new() { Type = type, Damp = Damp, BlockSize = BlockSize, ActOrder = ActOrder, TernaryStretch = stretch };
    public double EffectiveDamp => Damp ?? QuantTypeInfo.Of(Type).DefaultDamp;
}

/// <summary>What <c>--target-bits</c>' probe minimises per candidate: Σ g² over the expert's calibration tokens of ‖Δy‖²
/// (<see cref="Output"/>), or of Δyᵀ G Δy with G the next layer's readers of the residual stream
/// (<see cref="NextLayer"/>, <see cref="ResidualReaders"/>; decoder-only checkpoints).</summary>
public enum AllocationProxy { Output, NextLayer }
