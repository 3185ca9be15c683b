using Qmoe.Codec;
using Qmoe.Models;

namespace Qmoe.Runtime;

/// <summary>
/// Opens a model directory as its family (<see cref="ModelFamilies"/>, by config.json's model_type): a Hugging Face checkpoint, or a compressed
/// directory whose experts run from their codes through the fused kernels (nothing is decompressed at load).
/// </summary>
public static class ModelLoader
{
    /// <param name="dir">a Hugging Face checkpoint or compressed model directory</param>
    /// <param name="kernel">for compressed models: builds the expert kernel from the decode table (e.g. on a GPU); null = the CPU kernel</param>
    public static IRunnableModel Open(string dir, Func<Kernels.DecodeTable, Kernels.ICompressedMatVec>? kernel = null)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: model directory not found");
        var config = ConfigReader.Load(dir);
        var family = ModelFamilies.For(config);
        family.Validate(config);
        if (!CompressedModel.IsCompressed(dir)) return family.Open(dir, config);
        // Every sparse layer (by tensor prefix) gets its experts running from the codes; the model owns the store.
        var layout = family.ExpertLayout(config);
        var experts = new CompressedExperts(dir, kernel);
        try
        {
            return family.Open(dir, config, (prefix, count) => layout.CreateExperts(count, (e, kind) => experts.Weight(prefix, kind, e)), experts);
        }
        catch { experts.Dispose(); throw; }
    }
}
