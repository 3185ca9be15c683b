using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Models;
using Qmoe.Models.Moe;
using Qmoe.Quantization;
using Qmoe.Text;
using Qmoe.Text.Templates;

namespace Qmoe.Compression;

/// <summary>Outcome of <see cref="CompressionPipeline.Run(string, string, CalibrationData, CompressionOptions, Action{PipelineProgress}?, CancellationToken)"/> (the JSON of <c>qmoe compress</c>).</summary>
public sealed record CompressionResult(string Out, double Seconds, long PeakRssBytes, double ExpertBitsPerParam, int Fallbacks, CompressionReport Report);

/// <summary>
/// <c>qmoe compress</c>: runs the sequential pass over a checkpoint and assembles the output directory —
/// the compressed format (SPEC §5) or, with fake-quant, a dense HF checkpoint holding the dequantized
/// experts. The output appears atomically (built under a temporary name, renamed when complete); the work
/// directory keeps a checkpoint after every block so an interrupted run resumes to the same bytes.
/// </summary>
public static class CompressionPipeline
{
    /// <summary>Files copied from the input directory when present: every tokenizer file a checkpoint ships (qmoe reads the
    /// first six; the rest keep the directory whole for other tools) and the generation settings.</summary>
    public static readonly string[] TokenizerFiles =
        [TokenizerLoader.TokenizerJson, TokenizerLoader.TokenizerModel, TokenizerLoader.SpieceModel, TokenizerSettings.TokenizerConfigFile,
         ChatTemplate.TemplateFile, TokenizerSettings.GenerationConfigFile,
         "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", TokenizerLoader.TiktokenModel];

    public static CompressionResult Run(string modelDir, string outDir, CalibrationData calib, CompressionOptions options,
        Action<PipelineProgress>? progress = null, CancellationToken ct = default) =>
        Run(modelDir, outDir, calib, options, null, progress, ct)!;

    /// <summary>
    /// <c>compress --target-bits B</c> (issue 16): measures every expert matrix at every candidate type (a probe pass,
    /// or the probe saved at <paramref name="probePath"/> by an earlier run with the same model, calibration and
    /// method), allocates types to meet B expert bits/param (<see cref="BitAllocation"/>), then compresses with that
    /// allocation. The probe is also saved in the output as <c>qmoe_allocation_probe.json</c>.
    /// </summary>
    public static CompressionResult RunToTarget(string modelDir, string outDir, CalibrationData calib, CompressionOptions options,
        double targetBits, string? probePath = null, Action<PipelineProgress>? progress = null, CancellationToken ct = default)
    {
        outDir = Path.GetFullPath(outDir);
        if (Directory.Exists(outDir) || File.Exists(outDir))
            throw new QmoeException($"{outDir}: output already exists; choose another --out or delete it");
        if (!double.IsFinite(targetBits) || targetBits <= 0) throw new QmoeException($"--target-bits {targetBits} must be positive");
        if (options.Proxy == AllocationProxy.NextLayer) ResidualReaders.Check(modelDir);
        string fingerprint = ProbeFingerprint(modelDir, calib, options);
        AllocationProbe probe;
        if (probePath != null && File.Exists(probePath))
        {
            probe = AllocationProbe.Load(probePath);
            if (probe.Fingerprint != fingerprint)
                throw new QmoeException($"{probePath}: the probe was measured on another model, calibration set, method or --proxy, or by an older qmoe (fingerprint {probe.Fingerprint}, this run {fingerprint}); delete it or pass another --probe");
        }
        else
        {
            probe = new AllocationProbe { Fingerprint = fingerprint, PropagatedType = QuantTypeInfo.Of(QuantType.Int2).Name };
            progress?.Invoke(new PipelineProgress(-1, -1, "probe", "probe pass: every expert matrix at ternary, 2, 3 and 4 bits"));
            Run(modelDir, outDir + ".probe", calib, options with { Type = QuantType.Int2, Allocation = null, TernaryStretch = null, Probe = probe, FakeQuant = true },
                null, progress, ct);
            probe.RefineCodeBytes(codedTwoBit: !options.PackTwoBit);
            probe.FixedBytes = probe.Matrices.Select(m => m.Group).Distinct().Count() * AllocationProbe.GroupFixedBytes + AllocationProbe.DictionaryBytes
                + (options.PackTwoBit ? 0 : AllocationProbe.FourLevelDictionaryBytes);
            if (probePath != null) probe.Save(probePath);
        }
        var plan = BitAllocation.Plan(probe, targetBits);
        progress?.Invoke(new PipelineProgress(-1, -1, "allocate",
            $"target {targetBits} bits/param: {string.Join(", ", plan.Counts.Select(kv => $"{kv.Value} × {kv.Key}"))}; predicted {plan.PredictedBits:F4} bits/param"));
        var result = Run(modelDir, outDir, calib, options with { Type = QuantType.Ternary, Allocation = plan.Types, TernaryStretch = plan.Stretch, Probe = null }, plan, progress, ct)!;
        probe.Save(Path.Combine(outDir, AllocationProbeFile));
        return result;
    }

    /// <summary>The probe saved beside a <c>--target-bits</c> output.</summary>
    public const string AllocationProbeFile = "qmoe_allocation_probe.json";

    /// <summary>What a probe depends on: the model's config and weight files, the calibration data and the quantizer settings.</summary>
    private static string ProbeFingerprint(string modelDir, CalibrationData calib, CompressionOptions o)
    {
        var h = new System.IO.Hashing.XxHash64();
        void Add(string s) => h.Append(System.Text.Encoding.UTF8.GetBytes(s + "\n"));
        Add(File.ReadAllText(Path.Combine(modelDir, "config.json")));
        foreach (var f in Directory.EnumerateFiles(modelDir, "*.safetensors").Order(StringComparer.Ordinal))
            Add($"{Path.GetFileName(f)} {new FileInfo(f).Length}");
        Add($"{o.Method} {o.Damp} {o.BlockSize} {o.ActOrder} {o.Premask} {o.TokenCapFactor} {o.ChunkSequences} {o.ChunkTokens}");
        Add(string.Join(",", Precision.Candidates.Select(c => c.Name)));
        Add("error: gate-weighted"); // probes measured before the gate weighting are not reused
        Add(o.PackTwoBit ? "2-bit: packed" : "2-bit: coded"); // nor those that priced 2-bit experts otherwise
        if (o.Proxy != AllocationProxy.Output) Add($"proxy: {o.Proxy}"); // (the default adds nothing: older probes stay valid)
        Add(calib.Fingerprint().ToString("x16"));
        return h.GetCurrentHashAsUInt64().ToString("x16");
    }

    /// <summary>One pass; with <see cref="CompressionOptions.Probe"/> set nothing is written and the result is null.</summary>
    private static CompressionResult? Run(string modelDir, string outDir, CalibrationData calib, CompressionOptions options,
        AllocationPlan? plan, Action<PipelineProgress>? progress, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        outDir = Path.GetFullPath(outDir);
        if (Directory.Exists(outDir) || File.Exists(outDir))
            throw new QmoeException($"{outDir}: output already exists; choose another --out or delete it");
        DeleteStaleTemporaries(outDir);
        if (!options.FakeQuant && !options.AllTernary && options.FormatVersion == CompressedFormat.Version1)
            throw new QmoeException(options.Allocation != null ? "--target-bits: n-bit experts are stored in format_version 2 only"
                : $"--bits {QuantTypeInfo.Of(options.Type).Name}: n-bit experts are stored in format_version 2 only");
        if (calib.Samples == 0) throw new QmoeException("no calibration samples");
        var config = ConfigReader.Load(modelDir);
        var family = ModelFamilies.For(config);
        var summary = family.Validate(config);
        if (summary.SparseLayers == 0 || summary.NumExperts == 0)
            throw new QmoeException($"{config.Path}: the model has no experts to compress (no sparse layers)");
        if (options.Premask && family.Calibration != CalibrationKind.SpanCorruption)
            throw new QmoeException("--premask applies to span-corrupted (encoder-decoder) calibration data, not to a decoder-only model");

        var work = new CompressionWorkDir(outDir);
        bool resumed = options.Resume && Directory.Exists(work.Path);
        if (Directory.Exists(work.Path) && !options.Resume)
            throw new QmoeException($"{work.Path}: an interrupted run's checkpoint exists; pass --resume to continue it, or delete it to start over");
        var stageSeconds = new Dictionary<string, double>();
        var budget = new MemoryBudget(options.MemoryBudgetBytes, work.SpillDirectory);
        using var compressor = new SequentialCompressor(family.OpenForCompression(modelDir), options, budget, work, progress);
        var model = compressor.Model;
        // Before any work, the working set must fit in the budget; it is reserved, activations get the rest.
        var (workingSet, what) = WorkingSet.Of(model, WorkingSet.ChunkTokens(calib, options), options.BlockSize);
        if (!budget.TryReserve(WorkingSet.RuntimeBytes) || !budget.ReserveWorkingSet(workingSet))
        {
            double needed = (double)(workingSet + WorkingSet.RuntimeBytes) / (1L << 30);
            throw new QmoeException($"--memory-budget {options.MemoryBudgetBytes / (double)(1L << 30):F2} GiB is below the working set " +
                $"({needed:F2} GiB: {what}, and {WorkingSet.RuntimeBytes >> 20} MiB for the runtime); raise it to at least {Math.Ceiling(100 * needed) / 100:F2}");
        }
        budget.Track(model.Store);
        Directory.CreateDirectory(work.Path);
        ResidentSet.PeakAndReset();
        var store = model.Store;
        string fingerprint = Fingerprint(store, config, options, calib);
        string tmpOut = $"{outDir}.tmp-{Environment.ProcessId}";
        try
        {
            var layers = compressor.Run(calib, fingerprint, stageSeconds, ct);
            if (options.Probe != null)
            {
                work.Delete();
                return null;
            }

            progress?.Invoke(new PipelineProgress(-1, -1, "write", $"writing {outDir}"));
            var sw = Stopwatch.StartNew();
            if (Directory.Exists(tmpOut)) Directory.Delete(tmpOut, true);
            Directory.CreateDirectory(tmpOut);
            var prefixes = compressor.SparsePrefixes.ToList();
            double bits = options.FakeQuant
                ? WriteFakeQuant(store, model.Layout, prefixes, work, tmpOut, model.NumExperts, options)
                : WriteCompressed(store, model.Layout, prefixes, work, tmpOut, config, options, calib, model.NumExperts);
            foreach (var f in TokenizerFiles)
                if (File.Exists(Path.Combine(modelDir, f))) File.Copy(Path.Combine(modelDir, f), Path.Combine(tmpOut, f));
            stageSeconds["write"] = sw.Elapsed.TotalSeconds;
            stageSeconds["quantize"] = layers.Sum(l => l.Seconds); // part of the encoder/decoder time
            budget.Lap("write");

            long peak = ResidentSet.Peak();
            var report = new CompressionReport
            {
                Model = Path.GetFullPath(modelDir), Out = outDir,
                Format = options.FakeQuant ? "fake-quant" : $"qmoe-v{options.FormatVersion}",
                Method = options.Method.ToString().ToLowerInvariant(),
                Bits = options.Allocation != null ? "mixed" : QuantTypeInfo.Of(options.Type).Name,
                Damp = options.EffectiveDamp,
                Calibration = calib.Source, Samples = calib.Samples, Premask = options.Premask,
                TokenCapFactor = options.TokenCapFactor,
                Seconds = total.Elapsed.TotalSeconds, StageSeconds = stageSeconds,
                PeakRssBytes = peak, MemoryBudgetBytes = options.MemoryBudgetBytes,
                StagePeakRssBytes = budget.StagePeaks, WorkingSetBytes = workingSet,
                ExpertBitsPerParam = bits, Resumed = resumed,
                Fallbacks = layers.SelectMany(l => l.Fallbacks).ToList(),
                Capped = layers.SelectMany(l => l.Caps).ToList(),
                Layers = layers.SelectMany(l => l.Matrices).ToList(),
                Allocation = plan == null ? null : AllocationReport.Of(plan, bits),
            };
            AtomicFile.WriteAllText(Path.Combine(tmpOut, "qmoe_report.json"), JsonSerializer.Serialize(report, ReportJson.Options));
            Directory.Move(tmpOut, outDir);
            work.Delete();
            return new CompressionResult(outDir, report.Seconds, peak, bits, report.Fallbacks.Count, report);
        }
        catch
        {
            try { if (Directory.Exists(tmpOut)) Directory.Delete(tmpOut, true); } catch (IOException) { }
            throw;
        }
        finally { work.DeleteSpill(); }
    }

    /// <summary>
    /// Removes <c>OUT.tmp-PID</c> directories left by earlier runs that were killed while writing (their process no
    /// longer exists), so a failed or killed write never leaves a half-written model behind for long.
    /// </summary>
    public static void DeleteStaleTemporaries(string outDir)
    {
        string? parent = Path.GetDirectoryName(outDir);
        if (parent == null || !Directory.Exists(parent)) return;
        string prefix = Path.GetFileName(outDir) + ".tmp-";
        foreach (var dir in Directory.EnumerateDirectories(parent, prefix + "*"))
        {
            if (!int.TryParse(Path.GetFileName(dir)[prefix.Length..], out int pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsRunning(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Peak resident set size of this process so far (VmHWM, over every stage).</summary>
    public static long PeakRss() => ResidentSet.Peak();

    /// <summary>Identity of a run for resuming: model tensors, config, result-affecting settings, calibration ids.</summary>
    private static string Fingerprint(TensorStore store, ConfigReader config, CompressionOptions o, CalibrationData calib)
    {
        var h = new System.IO.Hashing.XxHash64();
        void Add(string s) => h.Append(System.Text.Encoding.UTF8.GetBytes(s + "\n"));
        Add(config.Json.ToJsonString());
        foreach (var name in store.Names.OrderBy(n => n, StringComparer.Ordinal))
        {
            var t = store.Info(name);
            Add($"{name} {t.DType} {t.ShapeText} {t.Offset}");
        }
        Add($"{o.Type} {o.Method} {o.EffectiveDamp} {o.BlockSize} {o.ActOrder} {o.Premask} {o.FakeQuant} {o.TokenCapFactor} {o.ChunkSequences} {o.ChunkTokens} {o.FormatVersion}");
        if (o.Allocation != null)
            foreach (var (name, type) in o.Allocation.OrderBy(kv => kv.Key, StringComparer.Ordinal)) Add($"{name} {type} {o.StretchOf(name)}");
        if (o.Probe != null) Add("probe");
        Add(calib.Fingerprint().ToString("x16"));
        return h.GetCurrentHashAsUInt64().ToString("x16");
    }

    private static double WriteCompressed(TensorStore store, IExpertLayout layout, List<string> prefixes, CompressionWorkDir work,
        string outDir, ConfigReader config, CompressionOptions o, CalibrationData calib, int experts)
    {
        var expertNames = ExpertWeightNames(layout, prefixes, experts);
        var settings = new JsonObject
        {
            ["bits"] = o.Allocation != null ? "mixed" : QuantTypeInfo.Of(o.Type).Name,
            ["method"] = o.Method.ToString().ToLowerInvariant(),
            ["damp"] = o.EffectiveDamp,
            ["calibration"] = new JsonObject { ["source"] = calib.Source, ["samples"] = calib.Samples, ["premask"] = o.Premask },
        };
        using (var writer = new CompressedModelWriter(outDir, config.Json, settings, DictionaryChoice.Fitted, o.FormatVersion,
            dictionaryStorage: o.DictionaryStorage, shardBytes: o.ShardBytes, codeTwoBit: !o.PackTwoBit))
        {
            foreach (var f in store.Files)
                foreach (var name in f.Names)
                {
                    if (expertNames.ContainsKey(name) || IsExpertScale(expertNames, name)) continue;
                    var t = f.Info(name);
                    var file = f;
                    // Copied from the mapping; the pages of the tensors copied before leave the resident set first.
                    writer.AddTensor(new PlainTensor(name, t.DType, t.Shape, () => { file.DropResident(); return file.Bytes(t); }));
                }
            // One expert at a time, packed trits straight from the layer files (read, not mapped: nothing stays resident).
            foreach (var prefix in prefixes)
            {
                using var layer = SafeTensorsFile.Open(work.LayerFile(prefix));
                foreach (var kind in layout.Kinds)
                {
                    var (rows, cols) = layout.Shape(kind);
                    var types = Enumerable.Range(0, experts).Select(e => o.TypeOf(layout.WeightName(prefix, e, kind))).ToArray();
                    if (types.Any(t => t != QuantType.Ternary)) // n-bit or mixed: the group in memory (one group at a time)
                    {
                        var matrices = new List<StoredExpert>(experts);
                        for (int e = 0; e < experts; e++)
                            matrices.Add(types[e] == QuantType.Ternary
                                ? StoredExpert.Of(new TernaryMatrix(rows, cols, TritPacking.Unpack(layer.Bytes($"{e}.{kind}.trits"), (long)rows * cols),
                                    layer.Span<ushort>($"{e}.{kind}.scales", DType.BF16).ToArray()))
                                : StoredExpert.Of(new PackedNBitMatrix(PackedNBitMatrix.BitsOf(types[e]), rows, cols, layer.Bytes($"{e}.{kind}.packed").ToArray(),
                                    layer.Span<float>($"{e}.{kind}.row_scales", DType.F32).ToArray(), layer.Bytes($"{e}.{kind}.row_zeros").ToArray())));
                        writer.AddExpertGroup(prefix, kind, matrices);
                        continue;
                    }
                    var packed = new byte[TritPacking.PackedLength((long)rows * cols)];
                    var scales = new byte[4L * rows];
                    writer.BeginExpertGroup(prefix, kind, experts, rows, cols);
                    for (int e = 0; e < experts; e++)
                    {
                        layer.ReadUnmapped(layer.Info($"{e}.{kind}.trits"), packed);
                        var st = layer.Info($"{e}.{kind}.scales");
                        if (st.DType != DType.BF16 || st.ByteLength != scales.Length) throw new QmoeException($"{layer.Path}: tensor '{st.Name}' is not BF16 [{rows}, 2]");
                        layer.ReadUnmapped(st, scales);
                        writer.AddExpert(packed, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(scales));
                    }
                }
            }
            writer.Complete();
            return writer.ExpertBitsPerParam;
        }
    }

    /// <summary>
    /// Writes the input checkpoint with each expert matrix replaced by its dequantized copy. Returns the bits per
    /// expert parameter the quantized weights would need in a plain fixed-width code: the type's bits plus two
    /// 16-bit grid parameters per row (mixed: averaged over the matrices by parameters).
    /// </summary>
    private static double WriteFakeQuant(TensorStore store, IExpertLayout layout, List<string> prefixes, CompressionWorkDir work,
        string outDir, int experts, CompressionOptions options)
    {
        var expertNames = ExpertWeightNames(layout, prefixes, experts);
        var layers = prefixes.ToDictionary(p => p, p => SafeTensorsFile.Open(work.LayerFile(p)));
        try
        {
            var order = store.Files.SelectMany(f => f.Names.Select(n => (File: f, Name: n)))
                .Where(t => !IsExpertScale(expertNames, t.Name)).ToList();
            TensorInfo Source(string name, out SafeTensorsFile file)
            {
                if (expertNames.TryGetValue(name, out var src)) { file = layers[src.Prefix]; return file.Info(src.Tensor); }
                file = store.FileOf(name);
                return file.Info(name);
            }
            using var w = new SafeTensorsWriter(Path.Combine(outDir, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var (_, name) in order)
            {
                var t = Source(name, out _);
                w.Declare(name, t.DType, expertNames.ContainsKey(name) ? store.Info(name).Shape : t.Shape);
            }
            foreach (var (_, name) in order)
            {
                var t = Source(name, out var file);
                w.Write(file.Bytes(t));
                file.DropResident(); // the copied pages leave the resident set
            }
            w.Complete();
        }
        finally { foreach (var l in layers.Values) l.Dispose(); }
        File.Copy(Path.Combine(store.Directory, "config.json"), Path.Combine(outDir, "config.json"));
        double bits = 0;
        long weights = 0;
        foreach (var p in prefixes)
            for (int e = 0; e < experts; e++)
                foreach (var k in layout.Kinds)
                {
                    var (rows, cols) = layout.Shape(k);
                    bits += (QuantTypeInfo.Of(options.TypeOf(layout.WeightName(p, e, k))).Bits * cols + 32.0) * rows;
                    weights += (long)rows * cols;
                }
        return bits / weights;
    }

    /// <summary>An FP8 checkpoint's block scales of an expert weight (<c>{weight}_scale_inv</c>): dropped with the weight they scale.</summary>
    private static bool IsExpertScale(Dictionary<string, (string Prefix, string Tensor)> expertNames, string name) =>
        name.EndsWith("_scale_inv", StringComparison.Ordinal) && expertNames.ContainsKey(name[..^"_scale_inv".Length]);

    /// <summary>HF expert weight name → (layer prefix, tensor in the layer file).</summary>
    private static Dictionary<string, (string Prefix, string Tensor)> ExpertWeightNames(IExpertLayout layout, List<string> prefixes, int experts)
    {
        var map = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var p in prefixes)
            for (int e = 0; e < experts; e++)
                foreach (var kind in layout.Kinds)
                    map[layout.WeightName(p, e, kind)] = (p, $"{e}.{kind}.weight");
        return map;
    }
}
