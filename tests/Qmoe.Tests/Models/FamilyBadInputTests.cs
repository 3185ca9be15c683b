using System.Text.Json.Nodes;
using Qmoe.Models;
using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Qwen3Moe;

namespace Qmoe.Tests.Models;

/// <summary>Unsupported Qwen3-MoE and DeepSeek-V3 config values are refused by name, with the field and value.</summary>
public class FamilyBadInputTests
{
    private static JsonObject TinyQwen3() => new()
    {
        ["model_type"] = "qwen3_moe", ["vocab_size"] = 4160, ["hidden_size"] = 192, ["intermediate_size"] = 384,
        ["moe_intermediate_size"] = 96, ["num_hidden_layers"] = 4, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 2,
        ["head_dim"] = 32, ["num_experts"] = 16, ["num_experts_per_tok"] = 4, ["norm_topk_prob"] = true,
        ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(), ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1e6,
        ["rope_scaling"] = null, ["max_position_embeddings"] = 512, ["hidden_act"] = "silu", ["attention_bias"] = false,
        ["use_sliding_window"] = false, ["sliding_window"] = null, ["tie_word_embeddings"] = false, ["eos_token_id"] = 4098,
    };

    private static Qwen3MoeConfig Qwen3(JsonObject c) => Qwen3MoeConfig.From(ConfigReader.FromJson(c, "config.json"), "");
    private static DeepseekV3Config Deepseek(JsonObject c) => DeepseekV3Config.From(ConfigReader.FromJson(c, "config.json"), "");

    [Fact]
    public void ValidConfigsParse()
    {
        var q = TinyQwen3();
        q["mlp_only_layers"] = new JsonArray(0);
        q["decoder_sparse_step"] = 2;
        var qc = Qwen3(q);
        Assert.Equal(new[] { false, true, false, true }, Enumerable.Range(0, 4).Select(qc.IsSparse)); // step 2: layers 1, 3 ((i+1) % 2 == 0)
        var d = TinyDeepseek.Config();
        d["q_lora_rank"] = null;
        d["first_k_dense_replace"] = 1;
        d["moe_layer_freq"] = 2;
        var dc = Deepseek(d);
        Assert.Null(dc.QLoraRank);
        Assert.Equal(new[] { false, false, true, false }, Enumerable.Range(0, 4).Select(dc.IsSparse));
        Assert.Equal(48, dc.QkHeadDim);
        Assert.Equal(1 / Math.Sqrt(48), dc.SoftmaxScale(), 6);
    }

    [Theory]
    [InlineData("attention_bias", "true", "attention_bias = true")]
    [InlineData("use_sliding_window", "true", "use_sliding_window = true")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act = gelu")]
    [InlineData("tie_word_embeddings", "true", "tie_word_embeddings")]
    [InlineData("rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}", "rope_scaling type 'llama3'")]
    [InlineData("quantization_config", "{\"quant_method\":\"awq\",\"bits\":4}", "quant_method 'awq'")]
    [InlineData("num_key_value_heads", "4", "num_key_value_heads")]
    [InlineData("num_experts_per_tok", "17", "num_experts_per_tok")]
    [InlineData("model_type", "\"qwen2_moe\"", "model_type 'qwen2_moe'")]
    public void Qwen3UnsupportedValuesAreRefused(string field, string json, string mentioned)
    {
        var c = TinyQwen3();
        c[field] = JsonNode.Parse(json);
        Assert.Contains(mentioned, Assert.Throws<QmoeException>(() => Qwen3(c)).Message);
    }

    [Theory]
    [InlineData("scoring_func", "\"softmax\"", "scoring_func 'softmax'")]
    [InlineData("topk_method", "\"group_limited_greedy\"", "topk_method 'group_limited_greedy'")]
    [InlineData("rope_scaling", "{\"type\":\"linear\",\"factor\":4.0}", "rope_scaling type 'linear'")]
    [InlineData("quantization_config", "{\"quant_method\":\"gptq\",\"bits\":4}", "quant_method 'gptq'")]
    [InlineData("quantization_config", "{\"quant_method\":\"fp8\",\"fmt\":\"e5m2\",\"weight_block_size\":[128,128]}", "fmt 'e5m2'")]
    [InlineData("quantization_config", "{\"quant_method\":\"fp8\"}", "weight_block_size")]
    [InlineData("attention_bias", "true", "attention_bias = true")]
    [InlineData("n_group", "3", "n_group 3")]
    [InlineData("topk_group", "5", "topk_group 5")]
    [InlineData("q_lora_rank", "0", "q_lora_rank")]
    [InlineData("qk_rope_head_dim", "15", "qk_rope_head_dim 15")]
    [InlineData("model_type", "\"deepseek_v2\"", "model_type 'deepseek_v2'")]
    public void DeepseekUnsupportedValuesAreRefused(string field, string json, string mentioned)
    {
        var c = TinyDeepseek.Config();
        c[field] = JsonNode.Parse(json);
        Assert.Contains(mentioned, Assert.Throws<QmoeException>(() => Deepseek(c)).Message);
    }

    [Fact]
    public void Fp8QuantizationConfigGivesTheBlockSize()
    {
        var c = TinyDeepseek.Config();
        c["quantization_config"] = JsonNode.Parse("{\"activation_scheme\":\"dynamic\",\"fmt\":\"e4m3\",\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]}");
        Assert.Equal((128, 128), Deepseek(c).Fp8Block);
        c["model_type"] = "kimi_k2";
        Assert.Equal("kimi_k2", ConfigReader.FromJson(c, "x").ModelType);
        Assert.Equal(16, Deepseek(c).NumRoutedExperts);
    }
}
