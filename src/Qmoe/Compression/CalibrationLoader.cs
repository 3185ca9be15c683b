using Qmoe.Models.Switch;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Compression;

/// <summary>Builds the pipeline's calibration samples from plain text (span-corrupted with a fixed seed) or a token file split.</summary>
public static class CalibrationLoader
{
    public static CalibrationData Load(string modelDir, string? textFile, string? tokenFile, string? split, int samples, bool premask)
    {
        if ((textFile == null) == (tokenFile == null))
            throw new QmoeException("give exactly one of --calib-text FILE or --calib F.safetensors --split S");
        var cfg = SwitchConfig.Load(modelDir);
        var tokenizer = ModelLoader.LoadTokenizer(modelDir, cfg.VocabSize);
        CalibrationSet set;
        string source;
        if (tokenFile != null)
        {
            if (split == null) throw new QmoeException("--calib needs --split");
            set = CalibrationSet.FromTokenFile(tokenFile, split, samples, cfg.VocabSize);
            source = $"{Path.GetFileName(tokenFile)}:{split}";
        }
        else
        {
            if (!File.Exists(textFile)) throw new QmoeException($"{textFile}: calibration text not found");
            set = CalibrationSet.FromText(textFile!, tokenizer, samples);
            source = $"{Path.GetFileName(textFile)} (span corruption, seed {CalibrationSet.DefaultSeed})";
        }
        var enc = Rows(set.InputIds, set.InputLength);
        var dec = Rows(set.DecoderInputIds(), set.LabelLength);
        var data = new CalibrationData(enc, dec, source);
        if (!premask) return data;
        return data with
        {
            EncoderHessianMask = Rows(PreMask.Encoder(set.InputIds, tokenizer.PieceCount), set.InputLength),
            DecoderHessianMask = Rows(PreMask.Decoder(set.Labels, tokenizer.PieceCount), set.LabelLength),
        };
    }

    private static T[][] Rows<T>(T[] flat, int length) =>
        Enumerable.Range(0, flat.Length / length).Select(i => flat[(i * length)..((i + 1) * length)]).ToArray();
}
