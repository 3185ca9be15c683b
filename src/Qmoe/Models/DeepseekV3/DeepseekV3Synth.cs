using System.Text.Json.Nodes;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// Synthetic DeepSeek-V3 / Kimi-K2 checkpoints (<c>qmoe synth</c>): the real configs (bf16, so without their FP8
/// quantization_config), sliced by layers and routed experts, and the tensor list (HF names and order) any valid
/// config implies.
/// </summary>
public static class DeepseekV3Synth
{
    private static JsonObject Common() => new()
    {
        ["architectures"] = new JsonArray("DeepseekV3ForCausalLM"), ["model_type"] = "deepseek_v3",
        ["hidden_size"] = 7168, ["intermediate_size"] = 18432, ["moe_intermediate_size"] = 2048, ["num_hidden_layers"] = 61,
        ["q_lora_rank"] = 1536, ["kv_lora_rank"] = 512, ["qk_nope_head_dim"] = 128, ["qk_rope_head_dim"] = 64,
        ["v_head_dim"] = 128, ["n_shared_experts"] = 1, ["num_experts_per_tok"] = 8, ["norm_topk_prob"] = true,
        ["scoring_func"] = "sigmoid", ["topk_method"] = "noaux_tc", ["moe_layer_freq"] = 1, ["rms_norm_eps"] = 1e-6,
        ["rope_interleave"] = true, ["hidden_act"] = "silu", ["attention_bias"] = false, ["tie_word_embeddings"] = false,
        ["num_nextn_predict_layers"] = 1, ["torch_dtype"] = "bfloat16",
    };

    /// <summary>deepseek-ai/DeepSeek-V3: 61 layers (3 dense, 18432), hidden 7168, 128 MLA heads, 256 routed (2048) + 1 shared, top-8 in 4 of 8 groups.</summary>
    public static JsonObject DeepseekV3()
    {
        var c = Common();
        c["vocab_size"] = 129280; c["num_attention_heads"] = 128; c["num_key_value_heads"] = 128;
        c["n_routed_experts"] = 256; c["n_group"] = 8; c["topk_group"] = 4; c["routed_scaling_factor"] = 2.5;
        c["first_k_dense_replace"] = 3; c["rope_theta"] = 10000.0; c["max_position_embeddings"] = 163840;
        c["rope_scaling"] = new JsonObject
        {
            ["type"] = "yarn", ["factor"] = 40, ["original_max_position_embeddings"] = 4096, ["beta_fast"] = 32,
            ["beta_slow"] = 1, ["mscale"] = 1.0, ["mscale_all_dim"] = 1.0,
        };
        c["bos_token_id"] = 0; c["eos_token_id"] = 1;
        return c;
    }

    /// <summary>moonshotai/Kimi-K2: the DeepSeek-V3 architecture with 64 heads, 384 routed experts, one group, 1 dense layer.</summary>
    public static JsonObject KimiK2()
    {
        var c = Common();
        c["model_type"] = "kimi_k2";
        c["vocab_size"] = 163840; c["num_attention_heads"] = 64; c["num_key_value_heads"] = 64;
        c["n_routed_experts"] = 384; c["n_group"] = 1; c["topk_group"] = 1; c["routed_scaling_factor"] = 2.827;
        c["first_k_dense_replace"] = 1; c["rope_theta"] = 50000.0; c["max_position_embeddings"] = 131072;
        c["num_nextn_predict_layers"] = 0;
        c["rope_scaling"] = new JsonObject
        {
            ["type"] = "yarn", ["factor"] = 32.0, ["original_max_position_embeddings"] = 4096, ["beta_fast"] = 1.0,
            ["beta_slow"] = 1.0, ["mscale"] = 1.0, ["mscale_all_dim"] = 1.0,
        };
        c["bos_token_id"] = 163584; c["eos_token_id"] = 163585;
        return c;
    }

    /// <summary>
    /// Keeps <paramref name="layers"/> layers — min(first_k_dense_replace, N − 1) dense, so a slice keeps at least one
    /// MoE layer — and/or the first <paramref name="experts"/> routed experts, with n_group / topk_group / top-k reduced
    /// where the groups no longer fit (the group size stays at least 2).
    /// </summary>
    public static JsonObject Slice(JsonObject config, int? layers, int? experts)
    {
        var c = (JsonObject)config.DeepClone();
        if (layers is int l)
        {
            c["num_hidden_layers"] = l;
            c["first_k_dense_replace"] = Math.Min((int)c["first_k_dense_replace"]!, Math.Max(0, l - 1));
        }
        if (experts is int e)
        {
            int groups = (int)c["n_group"]!;
            while (groups > 1 && (e % groups != 0 || e / groups < 2)) groups--;
            int topkGroups = Math.Min((int)c["topk_group"]!, groups);
            c["n_routed_experts"] = e;
            c["n_group"] = groups;
            c["topk_group"] = topkGroups;
            c["num_experts_per_tok"] = Math.Min((int)c["num_experts_per_tok"]!, topkGroups * (e / groups));
        }
        return c;
    }

    /// <summary>Every tensor of a checkpoint with this config, in HF order (no multi-token-prediction layers).</summary>
    public static IEnumerable<SynthTensor> Tensors(DeepseekV3Config c)
    {
        int d = c.HiddenSize, H = c.NumHeads, r = c.KvLoraRank;
        yield return new SynthTensor("model.embed_tokens.weight", c.VocabSize, d, 1f);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}", a = $"{p}.self_attn";
            yield return SynthShape.Norm($"{p}.input_layernorm.weight", d);
            if (c.QLoraRank is int qr)
            {
                yield return SynthShape.M($"{a}.q_a_proj.weight", qr, d);
                yield return SynthShape.Norm($"{a}.q_a_layernorm.weight", qr);
                yield return SynthShape.M($"{a}.q_b_proj.weight", H * c.QkHeadDim, qr);
            }
            else yield return SynthShape.M($"{a}.q_proj.weight", H * c.QkHeadDim, d);
            yield return SynthShape.M($"{a}.kv_a_proj_with_mqa.weight", r + c.QkRopeHeadDim, d);
            yield return SynthShape.Norm($"{a}.kv_a_layernorm.weight", r);
            yield return SynthShape.M($"{a}.kv_b_proj.weight", H * (c.QkNopeHeadDim + c.VHeadDim), r);
            yield return SynthShape.M($"{a}.o_proj.weight", d, H * c.VHeadDim);
            yield return SynthShape.Norm($"{p}.post_attention_layernorm.weight", d);
            if (c.IsSparse(i))
            {
                yield return SynthShape.M($"{p}.mlp.gate.weight", c.NumRoutedExperts, d);
                yield return new SynthTensor($"{p}.mlp.gate.e_score_correction_bias", c.NumRoutedExperts, 0, 0.01f);
                for (int e = 0; e < c.NumRoutedExperts; e++)
                    foreach (var t in SynthShape.GatedMlp($"{p}.mlp.experts.{e}", d, c.MoeIntermediateSize)) yield return t;
                if (c.NumSharedExperts > 0)
                    foreach (var t in SynthShape.GatedMlp($"{p}.mlp.shared_experts", d, c.MoeIntermediateSize * c.NumSharedExperts)) yield return t;
            }
            else foreach (var t in SynthShape.GatedMlp($"{p}.mlp", d, c.IntermediateSize)) yield return t;
        }
        yield return SynthShape.Norm("model.norm.weight", d);
        yield return SynthShape.M("lm_head.weight", c.VocabSize, d);
    }
}
