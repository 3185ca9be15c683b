using Qmoe.IO;
using Qmoe.Models.Layers;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// DeepSeek multi-head latent attention (HF <c>DeepseekV3Attention</c>), x [n, hidden] → [n, hidden]:
/// q = q_b_proj(q_a_layernorm(q_a_proj x)) (or q_proj x), per head [q_nope | q_rope];
/// kv_a_proj_with_mqa x = [c_kv (kv_lora_rank) | k_rope (one head shared by all)];
/// kv_b_proj(kv_a_layernorm c_kv) per head [k_nope | v]; RoPE on q_rope and k_rope only;
/// key = [k_nope | k_rope'], query = [q_nope | q_rope'], causal softmax with <see cref="DeepseekV3Config.SoftmaxScale"/>;
/// o_proj over the heads' values. The KV cache holds the per-head keys [H·(nope+rope)] and values [H·v] after kv_b_proj.
/// q_a_layernorm / kv_a_layernorm use eps 1e-6 (HF builds them without the config's eps).
/// </summary>
public sealed class MlaAttention
{
    private const float LatentNormEps = 1e-6f;
    private readonly DeepseekV3Config _cfg;
    private readonly Matrix? _qA, _qB, _q;
    private readonly RmsNorm? _qANorm;
    private readonly Matrix _kvA, _kvB, _o;
    private readonly RmsNorm _kvANorm;
    private readonly RotaryEmbedding _rope;
    private readonly float _scale;

    public MlaAttention(TensorStore store, DeepseekV3Config cfg, string prefix, RotaryEmbedding rope)
    {
        _cfg = cfg; _rope = rope; _scale = cfg.SoftmaxScale();
        int d = cfg.HiddenSize, H = cfg.NumHeads, r = cfg.KvLoraRank;
        if (cfg.QLoraRank is int qr)
        {
            _qA = Matrix.View(store, $"{prefix}.q_a_proj.weight", qr, d);
            _qANorm = new RmsNorm(store.ReadFloat32($"{prefix}.q_a_layernorm.weight", qr), LatentNormEps);
            _qB = Matrix.View(store, $"{prefix}.q_b_proj.weight", H * cfg.QkHeadDim, qr);
        }
        else _q = Matrix.View(store, $"{prefix}.q_proj.weight", H * cfg.QkHeadDim, d);
        _kvA = Matrix.View(store, $"{prefix}.kv_a_proj_with_mqa.weight", r + cfg.QkRopeHeadDim, d);
        _kvANorm = new RmsNorm(store.ReadFloat32($"{prefix}.kv_a_layernorm.weight", r), LatentNormEps);
        _kvB = Matrix.View(store, $"{prefix}.kv_b_proj.weight", H * (cfg.QkNopeHeadDim + cfg.VHeadDim), r);
        _o = Matrix.View(store, $"{prefix}.o_proj.weight", d, H * cfg.VHeadDim);
    }

    public KvCache NewCache(int capacity) => new(_cfg.NumHeads * _cfg.QkHeadDim, _cfg.NumHeads * _cfg.VHeadDim, capacity);

    /// <summary>x: the normed input [batch.Tokens, hidden]; returns o_proj(attention) [batch.Tokens, hidden].</summary>
    public float[] Forward(float[] x, SequenceBatch batch, KvCache[] caches)
    {
        var c = _cfg;
        int n = batch.Tokens, H = c.NumHeads, nope = c.QkNopeHeadDim, rot = c.QkRopeHeadDim, vd = c.VHeadDim;
        int qk = c.QkHeadDim, r = c.KvLoraRank;
        float[] q;
        if (_qA != null)
        {
            var qa = Linear.Forward(x, n, _qA);
            _qANorm!.Forward(qa, n, qa);
            q = Linear.Forward(qa, n, _qB!);
        }
        else q = Linear.Forward(x, n, _q!);

        var kvA = Linear.Forward(x, n, _kvA);               // [n, r + rot]
        var latent = new float[n * r];
        var kRope = new float[n * rot];
        for (int t = 0; t < n; t++)
        {
            kvA.AsSpan(t * (r + rot), r).CopyTo(latent.AsSpan(t * r, r));
            kvA.AsSpan(t * (r + rot) + r, rot).CopyTo(kRope.AsSpan(t * rot, rot));
        }
        _kvANorm.Forward(latent, n, latent);
        var kvB = Linear.Forward(latent, n, _kvB);          // [n, H·(nope + v)]

        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            int off = batch.Offsets[s], len = batch.Lengths[s], pos0 = caches[s].Length;
            _rope.Apply(q.AsSpan(off * H * qk, len * H * qk), len, H, qk, nope, pos0);
            _rope.Apply(kRope.AsSpan(off * rot, len * rot), len, 1, rot, 0, pos0);
            var k = new float[len * H * qk];
            var v = new float[len * H * vd];
            for (int t = 0; t < len; t++)
            {
                var kv = kvB.AsSpan((off + t) * H * (nope + vd), H * (nope + vd));
                var shared = kRope.AsSpan((off + t) * rot, rot);
                for (int h = 0; h < H; h++)
                {
                    var kh = k.AsSpan((t * H + h) * qk, qk);
                    kv.Slice(h * (nope + vd), nope).CopyTo(kh);
                    shared.CopyTo(kh[nope..]);
                    kv.Slice(h * (nope + vd) + nope, vd).CopyTo(v.AsSpan((t * H + h) * vd, vd));
                }
            }
            seqs[s] = caches[s].Extend(off, k, v, len);
        }
        var a = new float[n * H * vd];
        Attention.Forward(q, seqs, H, H, qk, vd, _scale, causal: true, null, a);
        return Linear.Forward(a, n, _o);
    }
}
