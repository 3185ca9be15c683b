using System.Text.Json.Nodes;
using static Qmoe.Models.SynthShape;

namespace Qmoe.Models.Switch;

/// <summary>Synthetic Switch Transformer checkpoints (<c>qmoe synth</c>): the preset, config.json and tensor list.</summary>
public static class SwitchSynth
{
    /// <summary>google/switch-base-128: d_model 768, d_ff 3072, 12 heads × 64, 12+12 layers (every other sparse), 128 experts.</summary>
    public static SynthShape Base128 => new()
    {
        Family = SwitchFamily.Type, VocabSize = 32128, Hidden = 768, Ffn = 3072, Layers = 12, Heads = 12, HeadDim = 64,
        Experts = 128, ExpertCapacity = 64, Buckets = 32, MaxDistance = 128,
    };

    /// <summary>
    /// google/switch-c-2048 (1.6T parameters): d_model 2080, d_ff 6144, 32 heads × 64, 15+15 blocks, every block sparse,
    /// 2048 experts, expert_capacity 64, vocab 32128, 32 relative-position buckets up to distance 128 (the published
    /// config's values; fields not listed are switch-base-128's, e.g. tied embeddings and ReLU experts).
    /// </summary>
    public static SynthShape C2048 => new()
    {
        Family = SwitchFamily.Type, VocabSize = 32128, Hidden = 2080, Ffn = 6144, Layers = 15, Heads = 32, HeadDim = 64,
        Experts = 2048, ExpertCapacity = 64, Buckets = 32, MaxDistance = 128, AllSparse = true,
    };

    public static JsonObject Config(SynthShape s) => new()
    {
        ["architectures"] = new JsonArray("SwitchTransformersForConditionalGeneration"),
        ["model_type"] = SwitchFamily.Type, ["vocab_size"] = s.VocabSize, ["d_model"] = s.Hidden, ["d_kv"] = s.HeadDim,
        ["d_ff"] = s.Ffn, ["num_heads"] = s.Heads, ["num_layers"] = s.Layers, ["num_decoder_layers"] = s.Layers,
        ["num_sparse_encoder_layers"] = s.SparseLayers, ["num_sparse_decoder_layers"] = s.SparseLayers,
        ["num_experts"] = s.Experts, ["expert_capacity"] = s.ExpertCapacity, ["router_bias"] = false,
        ["router_dtype"] = "float32", ["relative_attention_num_buckets"] = s.Buckets,
        ["relative_attention_max_distance"] = s.MaxDistance, ["layer_norm_epsilon"] = 1e-6,
        ["feed_forward_proj"] = "relu", ["dense_act_fn"] = "relu", ["is_encoder_decoder"] = true,
        ["tie_word_embeddings"] = true, ["decoder_start_token_id"] = 0, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
        ["torch_dtype"] = "bfloat16",
    };

    public static IEnumerable<SynthTensor> Tensors(SynthShape s)
    {
        int d = s.Hidden, inner = s.Heads * s.HeadDim;
        yield return new SynthTensor("shared.weight", s.VocabSize, d, 1f);
        foreach (var stack in new[] { "encoder", "decoder" })
        {
            bool dec = stack == "decoder";
            for (int i = 0; i < s.Layers; i++)
            {
                string b = $"{stack}.block.{i}";
                foreach (var t in Attention($"{b}.layer.0.SelfAttention")) yield return t;
                if (i == 0) yield return M($"{b}.layer.0.SelfAttention.relative_attention_bias.weight", s.Buckets, s.Heads);
                yield return Norm($"{b}.layer.0.layer_norm.weight", d);
                if (dec)
                {
                    foreach (var t in Attention($"{b}.layer.1.EncDecAttention")) yield return t;
                    yield return Norm($"{b}.layer.1.layer_norm.weight", d);
                }
                string ff = $"{b}.layer.{(dec ? 2 : 1)}";
                if (SwitchConfig.IsSparse(i, s.Layers, s.SparseLayers))
                {
                    yield return M($"{ff}.mlp.router.classifier.weight", s.Experts, d);
                    for (int e = 0; e < s.Experts; e++)
                    {
                        yield return M($"{ff}.mlp.experts.expert_{e}.wi.weight", s.Ffn, d);
                        yield return M($"{ff}.mlp.experts.expert_{e}.wo.weight", d, s.Ffn);
                    }
                }
                else
                {
                    yield return M($"{ff}.mlp.wi.weight", s.Ffn, d);
                    yield return M($"{ff}.mlp.wo.weight", d, s.Ffn);
                }
                yield return Norm($"{ff}.layer_norm.weight", d);
            }
            yield return Norm($"{stack}.final_layer_norm.weight", d);
        }

        IEnumerable<SynthTensor> Attention(string p) =>
            [M($"{p}.q.weight", inner, d), M($"{p}.k.weight", inner, d), M($"{p}.v.weight", inner, d), M($"{p}.o.weight", d, inner)];
    }
}
