using System.Text.Json.Nodes;
using static Qmoe.Models.SynthShape;

namespace Qmoe.Models.Mixtral;

/// <summary>Synthetic Mixtral checkpoints (<c>qmoe synth</c>): the preset, config.json and tensor list.</summary>
public static class MixtralSynth
{
    /// <summary>mistralai/Mixtral-8x7B: 32 layers, hidden 4096, intermediate 14336, 32 heads / 8 KV heads × 128, 8 experts top-2.</summary>
    public static SynthShape Mixtral8x7b => new()
    {
        Family = MixtralFamily.Type, VocabSize = 32000, Hidden = 4096, Ffn = 14336, Layers = 32, Heads = 32, KvHeads = 8, HeadDim = 128,
        Experts = 8, TopK = 2, RopeTheta = 1e6,
    };

    public static JsonObject Config(SynthShape s) => new()
    {
        ["architectures"] = new JsonArray("MixtralForCausalLM"),
        ["model_type"] = MixtralFamily.Type, ["vocab_size"] = s.VocabSize, ["hidden_size"] = s.Hidden, ["intermediate_size"] = s.Ffn,
        ["num_hidden_layers"] = s.Layers, ["num_attention_heads"] = s.Heads, ["num_key_value_heads"] = s.KvHeads,
        ["head_dim"] = s.HeadDim, ["num_local_experts"] = s.Experts, ["num_experts_per_tok"] = s.TopK,
        ["hidden_act"] = "silu", ["rms_norm_eps"] = 1e-5, ["rope_theta"] = s.RopeTheta,
        ["max_position_embeddings"] = 32768, ["sliding_window"] = null, ["tie_word_embeddings"] = false,
        ["router_jitter_noise"] = 0.0, ["bos_token_id"] = null, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
        ["torch_dtype"] = "bfloat16",
    };

    public static IEnumerable<SynthTensor> Tensors(SynthShape s)
    {
        int d = s.Hidden, f = s.Ffn, q = s.Heads * s.HeadDim, kv = s.KvHeads * s.HeadDim;
        yield return new SynthTensor("model.embed_tokens.weight", s.VocabSize, d, 1f);
        for (int i = 0; i < s.Layers; i++)
        {
            string p = $"model.layers.{i}";
            yield return Norm($"{p}.input_layernorm.weight", d);
            yield return M($"{p}.self_attn.q_proj.weight", q, d);
            yield return M($"{p}.self_attn.k_proj.weight", kv, d);
            yield return M($"{p}.self_attn.v_proj.weight", kv, d);
            yield return M($"{p}.self_attn.o_proj.weight", d, q);
            yield return Norm($"{p}.post_attention_layernorm.weight", d);
            yield return M($"{p}.block_sparse_moe.gate.weight", s.Experts, d);
            for (int e = 0; e < s.Experts; e++)
            {
                yield return M($"{p}.block_sparse_moe.experts.{e}.w1.weight", f, d);
                yield return M($"{p}.block_sparse_moe.experts.{e}.w2.weight", d, f);
                yield return M($"{p}.block_sparse_moe.experts.{e}.w3.weight", f, d);
            }
        }
        yield return Norm("model.norm.weight", d);
        yield return M("lm_head.weight", s.VocabSize, d);
    }
}
