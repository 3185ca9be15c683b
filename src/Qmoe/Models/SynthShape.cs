using System.Text.Json.Nodes;
using Qmoe.Models.Switch;

namespace Qmoe.Models;

/// <summary>One tensor of a synthetic checkpoint: [Rows, Cols] (Cols = 0 for a vector), filled with ones or N(0, Std²).</summary>
public sealed record SynthTensor(string Name, long Rows, long Cols, float Std, bool Ones = false)
{
    public long[] Shape => Cols == 0 ? [Rows] : [Rows, Cols];
    public long Elements => Cols == 0 ? Rows : Rows * Cols;
}

/// <summary>
/// The architecture of a synthetic Hugging Face checkpoint (<c>qmoe synth</c>): a Switch Transformer or a
/// Mixtral with given sizes, its config.json (HF field names) and its tensor list in HF naming and order.
/// The named presets are the real models' exact shapes; small custom shapes serve tests.
/// Initialisation ("roughly trained scale"): every matrix N(0, 1/fan_in) with fan_in = its input width
/// (columns), token embeddings N(0, 1), norm weights 1.
/// </summary>
public sealed record SynthShape
{
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

    /// <summary>google/switch-base-128: d_model 768, d_ff 3072, 12 heads × 64, 12+12 layers (every other sparse), 128 experts.</summary>
    public static SynthShape SwitchBase128 => new()
    {
        Family = "switch_transformers", VocabSize = 32128, Hidden = 768, Ffn = 3072, Layers = 12, Heads = 12, HeadDim = 64,
        Experts = 128, ExpertCapacity = 64, Buckets = 32, MaxDistance = 128,
    };

    /// <summary>mistralai/Mixtral-8x7B: 32 layers, hidden 4096, intermediate 14336, 32 heads / 8 KV heads × 128, 8 experts top-2.</summary>
    public static SynthShape Mixtral8x7b => new()
    {
        Family = "mixtral", VocabSize = 32000, Hidden = 4096, Ffn = 14336, Layers = 32, Heads = 32, KvHeads = 8, HeadDim = 128,
        Experts = 8, TopK = 2, RopeTheta = 1e6,
    };

    /// <summary>
    /// google/switch-c-2048 (1.6T parameters): d_model 2080, d_ff 6144, 32 heads × 64, 15+15 blocks, every block sparse,
    /// 2048 experts, expert_capacity 64, vocab 32128, 32 relative-position buckets up to distance 128.
    /// </summary>
    public static SynthShape SwitchC2048 => new()
    {
        Family = "switch_transformers", VocabSize = 32128, Hidden = 2080, Ffn = 6144, Layers = 15, Heads = 32, HeadDim = 64,
        Experts = 2048, ExpertCapacity = 64, Buckets = 32, MaxDistance = 128, AllSparse = true,
    };

    public static SynthShape Named(string name) => name switch
    {
        "switch-base-128" => SwitchBase128,
        "switch-c-2048" => SwitchC2048,
        "mixtral-8x7b" => Mixtral8x7b,
        _ => throw new QmoeException($"--shape {name}: unknown shape (switch-base-128, switch-c-2048, mixtral-8x7b)"),
    };

    /// <summary>Switch: sparse layer count of one stack (every other layer, HF's rule with step 2; every layer for c2048).</summary>
    public int SparseLayers => AllSparse ? Layers : Layers / 2;

    public JsonObject Config() => Family switch
    {
        "switch_transformers" => new JsonObject
        {
            ["architectures"] = new JsonArray("SwitchTransformersForConditionalGeneration"),
            ["model_type"] = "switch_transformers", ["vocab_size"] = VocabSize, ["d_model"] = Hidden, ["d_kv"] = HeadDim,
            ["d_ff"] = Ffn, ["num_heads"] = Heads, ["num_layers"] = Layers, ["num_decoder_layers"] = Layers,
            ["num_sparse_encoder_layers"] = SparseLayers, ["num_sparse_decoder_layers"] = SparseLayers,
            ["num_experts"] = Experts, ["expert_capacity"] = ExpertCapacity, ["router_bias"] = false,
            ["router_dtype"] = "float32", ["relative_attention_num_buckets"] = Buckets,
            ["relative_attention_max_distance"] = MaxDistance, ["layer_norm_epsilon"] = 1e-6,
            ["feed_forward_proj"] = "relu", ["dense_act_fn"] = "relu", ["is_encoder_decoder"] = true,
            ["tie_word_embeddings"] = true, ["decoder_start_token_id"] = 0, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
            ["torch_dtype"] = "bfloat16",
        },
        "mixtral" => new JsonObject
        {
            ["architectures"] = new JsonArray("MixtralForCausalLM"),
            ["model_type"] = "mixtral", ["vocab_size"] = VocabSize, ["hidden_size"] = Hidden, ["intermediate_size"] = Ffn,
            ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads, ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim, ["num_local_experts"] = Experts, ["num_experts_per_tok"] = TopK,
            ["hidden_act"] = "silu", ["rms_norm_eps"] = 1e-5, ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = 32768, ["sliding_window"] = null, ["tie_word_embeddings"] = false,
            ["router_jitter_noise"] = 0.0, ["bos_token_id"] = null, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
            ["torch_dtype"] = "bfloat16",
        },
        _ => throw new QmoeException($"unknown synth family '{Family}'"),
    };

    private static SynthTensor M(string name, long rows, long cols) => new(name, rows, cols, 1f / MathF.Sqrt(cols));
    private static SynthTensor Norm(string name, long dim) => new(name, dim, 0, 0, Ones: true);

    /// <summary>All tensors in HF order (the order they are written).</summary>
    public IEnumerable<SynthTensor> Tensors() => Family == "mixtral" ? MixtralTensors() : SwitchTensors();

    private IEnumerable<SynthTensor> MixtralTensors()
    {
        int d = Hidden, f = Ffn, q = Heads * HeadDim, kv = KvHeads * HeadDim;
        yield return new SynthTensor("model.embed_tokens.weight", VocabSize, d, 1f);
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}";
            yield return Norm($"{p}.input_layernorm.weight", d);
            yield return M($"{p}.self_attn.q_proj.weight", q, d);
            yield return M($"{p}.self_attn.k_proj.weight", kv, d);
            yield return M($"{p}.self_attn.v_proj.weight", kv, d);
            yield return M($"{p}.self_attn.o_proj.weight", d, q);
            yield return Norm($"{p}.post_attention_layernorm.weight", d);
            yield return M($"{p}.block_sparse_moe.gate.weight", Experts, d);
            for (int e = 0; e < Experts; e++)
            {
                yield return M($"{p}.block_sparse_moe.experts.{e}.w1.weight", f, d);
                yield return M($"{p}.block_sparse_moe.experts.{e}.w2.weight", d, f);
                yield return M($"{p}.block_sparse_moe.experts.{e}.w3.weight", f, d);
            }
        }
        yield return Norm("model.norm.weight", d);
        yield return M("lm_head.weight", VocabSize, d);
    }

    private IEnumerable<SynthTensor> SwitchTensors()
    {
        int d = Hidden, inner = Heads * HeadDim;
        yield return new SynthTensor("shared.weight", VocabSize, d, 1f);
        foreach (var stack in new[] { "encoder", "decoder" })
        {
            bool dec = stack == "decoder";
            for (int i = 0; i < Layers; i++)
            {
                string b = $"{stack}.block.{i}";
                foreach (var t in Attention($"{b}.layer.0.SelfAttention")) yield return t;
                if (i == 0) yield return M($"{b}.layer.0.SelfAttention.relative_attention_bias.weight", Buckets, Heads);
                yield return Norm($"{b}.layer.0.layer_norm.weight", d);
                if (dec)
                {
                    foreach (var t in Attention($"{b}.layer.1.EncDecAttention")) yield return t;
                    yield return Norm($"{b}.layer.1.layer_norm.weight", d);
                }
                string ff = $"{b}.layer.{(dec ? 2 : 1)}";
                if (SwitchConfig.IsSparse(i, Layers, SparseLayers))
                {
                    yield return M($"{ff}.mlp.router.classifier.weight", Experts, d);
                    for (int e = 0; e < Experts; e++)
                    {
                        yield return M($"{ff}.mlp.experts.expert_{e}.wi.weight", Ffn, d);
                        yield return M($"{ff}.mlp.experts.expert_{e}.wo.weight", d, Ffn);
                    }
                }
                else
                {
                    yield return M($"{ff}.mlp.wi.weight", Ffn, d);
                    yield return M($"{ff}.mlp.wo.weight", d, Ffn);
                }
                yield return Norm($"{ff}.layer_norm.weight", d);
            }
            yield return Norm($"{stack}.final_layer_norm.weight", d);
        }

        IEnumerable<SynthTensor> Attention(string p) =>
            [M($"{p}.q.weight", inner, d), M($"{p}.k.weight", inner, d), M($"{p}.v.weight", inner, d), M($"{p}.o.weight", d, inner)];
    }
}
