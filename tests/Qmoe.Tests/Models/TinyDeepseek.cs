using System.Text.Json.Nodes;

namespace Qmoe.Tests.Models;

/// <summary>A small valid DeepSeek-V3 config (HF field names) for config and bad-input tests.</summary>
public static class TinyDeepseek
{
    public static JsonObject Config() => new()
    {
        ["model_type"] = "deepseek_v3", ["vocab_size"] = 4160, ["hidden_size"] = 192, ["intermediate_size"] = 384,
        ["moe_intermediate_size"] = 96, ["num_hidden_layers"] = 4, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 6,
        ["q_lora_rank"] = 96, ["kv_lora_rank"] = 64, ["qk_nope_head_dim"] = 32, ["qk_rope_head_dim"] = 16, ["v_head_dim"] = 32,
        ["n_routed_experts"] = 16, ["n_shared_experts"] = 1, ["num_experts_per_tok"] = 4, ["n_group"] = 4, ["topk_group"] = 2,
        ["norm_topk_prob"] = true, ["routed_scaling_factor"] = 2.5, ["scoring_func"] = "sigmoid", ["topk_method"] = "noaux_tc",
        ["first_k_dense_replace"] = 1, ["moe_layer_freq"] = 1, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0,
        ["rope_interleave"] = true, ["rope_scaling"] = null, ["max_position_embeddings"] = 512, ["hidden_act"] = "silu",
        ["attention_bias"] = false, ["tie_word_embeddings"] = false, ["eos_token_id"] = 4100,
    };
}
