using System.Text.Json.Nodes;

namespace Qmoe.Models.Qwen3Moe;

/// <summary>
/// Synthetic Qwen3-MoE checkpoints (<c>qmoe synth</c>): the real Qwen3-30B-A3B config, sliced by layers and
/// experts, and the tensor list (HF names and order) any valid config implies.
/// </summary>
public static class Qwen3MoeSynth
{
    /// <summary>Qwen/Qwen3-30B-A3B: 48 layers, hidden 2048, 32 heads / 4 KV heads × 128, 128 experts (768) top-8.</summary>
    public static JsonObject Qwen3_30B_A3B() => new()
    {
        ["architectures"] = new JsonArray("Qwen3MoeForCausalLM"), ["model_type"] = "qwen3_moe",
        ["vocab_size"] = 151936, ["hidden_size"] = 2048, ["intermediate_size"] = 6144, ["moe_intermediate_size"] = 768,
        ["num_hidden_layers"] = 48, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 4, ["head_dim"] = 128,
        ["num_experts"] = 128, ["num_experts_per_tok"] = 8, ["norm_topk_prob"] = true, ["decoder_sparse_step"] = 1,
        ["mlp_only_layers"] = new JsonArray(), ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1000000.0, ["rope_scaling"] = null,
        ["max_position_embeddings"] = 40960, ["hidden_act"] = "silu", ["attention_bias"] = false, ["use_sliding_window"] = false,
        ["sliding_window"] = null, ["tie_word_embeddings"] = false, ["bos_token_id"] = 151643, ["eos_token_id"] = 151645,
        ["torch_dtype"] = "bfloat16",
    };

    /// <summary>Keeps the first <paramref name="layers"/> layers and/or the first <paramref name="experts"/> experts (top-k capped by them).</summary>
    public static JsonObject Slice(JsonObject config, int? layers, int? experts)
    {
        var c = (JsonObject)config.DeepClone();
        if (layers is int l) c["num_hidden_layers"] = l;
        if (experts is int e)
        {
            c["num_experts"] = e;
            c["num_experts_per_tok"] = Math.Min(e, (int)c["num_experts_per_tok"]!);
        }
        return c;
    }

    /// <summary>Every tensor of a checkpoint with this config, in HF order.</summary>
    public static IEnumerable<SynthTensor> Tensors(Qwen3MoeConfig c)
    {
        int d = c.HiddenSize;
        yield return new SynthTensor("model.embed_tokens.weight", c.VocabSize, d, 1f);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}";
            yield return SynthShape.Norm($"{p}.input_layernorm.weight", d);
            yield return SynthShape.M($"{p}.self_attn.q_proj.weight", c.QWidth, d);
            yield return SynthShape.M($"{p}.self_attn.k_proj.weight", c.KvWidth, d);
            yield return SynthShape.M($"{p}.self_attn.v_proj.weight", c.KvWidth, d);
            yield return SynthShape.M($"{p}.self_attn.o_proj.weight", d, c.QWidth);
            yield return SynthShape.Norm($"{p}.self_attn.q_norm.weight", c.HeadDim);
            yield return SynthShape.Norm($"{p}.self_attn.k_norm.weight", c.HeadDim);
            yield return SynthShape.Norm($"{p}.post_attention_layernorm.weight", d);
            if (c.IsSparse(i))
            {
                yield return SynthShape.M($"{p}.mlp.gate.weight", c.NumExperts, d);
                for (int e = 0; e < c.NumExperts; e++)
                    foreach (var t in SynthShape.GatedMlp($"{p}.mlp.experts.{e}", d, c.MoeIntermediateSize)) yield return t;
            }
            else foreach (var t in SynthShape.GatedMlp($"{p}.mlp", d, c.IntermediateSize)) yield return t;
        }
        yield return SynthShape.Norm("model.norm.weight", d);
        yield return SynthShape.M("lm_head.weight", c.VocabSize, d);
    }
}
