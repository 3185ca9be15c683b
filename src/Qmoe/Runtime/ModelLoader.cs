using Qmoe.Codec;
using Qmoe.Compression;
using Qmoe.Models;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Switch;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>
/// Opens a model directory as the right family from its config.json: a Hugging Face checkpoint, or a compressed
/// directory whose experts run from their codes through the fused kernels (nothing is decompressed at load).
/// </summary>
public static class ModelLoader
{
    public static IRunnableModel Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: model directory not found");
        var config = ConfigReader.Load(dir);
        switch (config.ModelType)
        {
            case "switch_transformers":
                var cfg = SwitchConfig.From(config);
                var tokenizer = TokenizerLoader.LoadT5(dir, cfg.VocabSize);
                if (!CompressedModel.IsCompressed(dir)) return new SwitchRunnable(SwitchModel.Load(dir), tokenizer);
                return WithCompressedExperts(dir, new SwitchExpertLayout(cfg.DModel, cfg.DFf), (experts, factory) =>
                    new SwitchRunnable(SwitchModel.Load(dir, block => factory(block.MlpPrefix, cfg.NumExperts)), tokenizer, experts));
            case "mixtral":
                var mcfg = MixtralConfig.From(config);
                var mtok = TokenizerLoader.Load(dir, config.ModelType, mcfg.VocabSize);
                if (!CompressedModel.IsCompressed(dir)) return new MixtralRunnable(MixtralModel.Load(dir), mtok);
                return WithCompressedExperts(dir, new MixtralExpertLayout(mcfg.HiddenSize, mcfg.IntermediateSize), (experts, factory) =>
                    new MixtralRunnable(MixtralModel.Load(dir, layer => factory(layer.MoePrefix, mcfg.NumExperts)), mtok, experts));
            default:
                throw new QmoeException($"{config.Path}: model_type '{config.ModelType}' is not supported (switch_transformers, mixtral)");
        }
    }

    /// <summary>
    /// Opens the compressed experts of <paramref name="dir"/> and builds the model with a factory that gives each
    /// sparse layer (by tensor prefix) its experts running from the codes; the model owns the store.
    /// </summary>
    private static IRunnableModel WithCompressedExperts(string dir, IExpertLayout layout,
        Func<CompressedExperts, Func<string, int, Models.Moe.IExperts>, IRunnableModel> build)
    {
        var experts = new CompressedExperts(dir);
        try
        {
            return build(experts, (prefix, count) => layout.CreateExperts(count, (e, kind) => experts.Weight(prefix, kind, e)));
        }
        catch { experts.Dispose(); throw; }
    }
}
