using System.Text.Json.Nodes;
using Qmoe.Models.Switch;

namespace Qmoe.Models.Synth;

/// <summary>Tensor lists and configs of Switch Transformer shapes (HF naming), e.g. google/switch-base-128.</summary>
public static class SwitchShapes
{
    /// <summary>google/switch-base-128's config (fields as in its config.json), optionally cut to <paramref name="layers"/> layers per stack.</summary>
    public static JsonObject Base128(int? layers = null)
    {
        int l = layers ?? 12;
        return new JsonObject
        {
            ["architectures"] = new JsonArray("SwitchTransformersForConditionalGeneration"),
            ["model_type"] = "switch_transformers",
            ["d_model"] = 768, ["d_ff"] = 3072, ["d_kv"] = 64, ["num_heads"] = 12,
            ["num_layers"] = l, ["num_decoder_layers"] = l,
            ["num_sparse_encoder_layers"] = l / 2, ["num_sparse_decoder_layers"] = l / 2,
            ["encoder_sparse_step"] = 2, ["decoder_sparse_step"] = 2,
            ["num_experts"] = 128, ["expert_capacity"] = 64, ["vocab_size"] = 32128,
            ["relative_attention_num_buckets"] = 32, ["relative_attention_max_distance"] = 128,
            ["layer_norm_epsilon"] = 1e-6, ["feed_forward_proj"] = "relu", ["dense_act_fn"] = "relu",
            ["router_bias"] = false, ["router_dtype"] = "float32", ["router_jitter_noise"] = 0.01,
            ["tie_word_embeddings"] = true, ["decoder_start_token_id"] = 0, ["eos_token_id"] = 1, ["pad_token_id"] = 0,
            ["is_encoder_decoder"] = true, ["torch_dtype"] = "bfloat16", ["use_cache"] = true,
        };
    }

    /// <summary>Every tensor of a Switch checkpoint with config <paramref name="config"/>, in HF order.</summary>
    public static List<SyntheticCheckpoint.Spec> Tensors(SwitchConfig c)
    {
        int d = c.DModel, inner = c.InnerDim, ff = c.DFf;
        float Fan(int fanIn) => 1f / MathF.Sqrt(fanIn);
        var list = new List<SyntheticCheckpoint.Spec> { new("shared.weight", [c.VocabSize, d], 1f) };
        foreach (var (stack, n) in new[] { ("encoder", c.NumEncoderLayers), ("decoder", c.NumDecoderLayers) })
        {
            bool dec = stack == "decoder";
            for (int i = 0; i < n; i++)
            {
                string b = $"{stack}.block.{i}";
                foreach (var p in new[] { "q", "k", "v" }) list.Add(new($"{b}.layer.0.SelfAttention.{p}.weight", [inner, d], Fan(d)));
                list.Add(new($"{b}.layer.0.SelfAttention.o.weight", [d, inner], Fan(inner)));
                if (i == 0) list.Add(new($"{b}.layer.0.SelfAttention.relative_attention_bias.weight", [c.RelativeAttentionNumBuckets, c.NumHeads], 0.1f));
                list.Add(new($"{b}.layer.0.layer_norm.weight", [d], 0));
                int ffl = 1;
                if (dec)
                {
                    foreach (var p in new[] { "q", "k", "v" }) list.Add(new($"{b}.layer.1.EncDecAttention.{p}.weight", [inner, d], Fan(d)));
                    list.Add(new($"{b}.layer.1.EncDecAttention.o.weight", [d, inner], Fan(inner)));
                    list.Add(new($"{b}.layer.1.layer_norm.weight", [d], 0));
                    ffl = 2;
                }
                string mlp = $"{b}.layer.{ffl}.mlp";
                bool sparse = dec ? c.IsSparseDecoderLayer(i) : c.IsSparseEncoderLayer(i);
                if (sparse)
                {
                    list.Add(new($"{mlp}.router.classifier.weight", [c.NumExperts, d], Fan(d)));
                    for (int e = 0; e < c.NumExperts; e++)
                    {
                        list.Add(new($"{mlp}.experts.expert_{e}.wi.weight", [ff, d], Fan(d)));
                        list.Add(new($"{mlp}.experts.expert_{e}.wo.weight", [d, ff], Fan(ff)));
                    }
                }
                else
                {
                    list.Add(new($"{mlp}.wi.weight", [ff, d], Fan(d)));
                    list.Add(new($"{mlp}.wo.weight", [d, ff], Fan(ff)));
                }
                list.Add(new($"{b}.layer.{ffl}.layer_norm.weight", [d], 0));
            }
            list.Add(new($"{stack}.final_layer_norm.weight", [d], 0));
        }
        return list;
    }
}
