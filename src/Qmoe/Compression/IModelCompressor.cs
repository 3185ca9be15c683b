using Qmoe.IO;

namespace Qmoe.Compression;

/// <summary>
/// One model family's sequential pass (SPEC §4) as <see cref="CompressionPipeline"/> drives it: the pipeline
/// handles options, resume identity, output assembly and the report; the family runs its layers on the
/// calibration data and leaves one finished layer file per sparse layer in the work directory.
/// </summary>
public interface IModelCompressor : IDisposable
{
    /// <summary>The checkpoint being compressed (memory-mapped).</summary>
    TensorStore Store { get; }
    IExpertLayout Layout { get; }
    /// <summary>Experts per sparse layer.</summary>
    int NumExperts { get; }
    /// <summary>Sparse layers' tensor prefixes in processing order (the layer files the run produces).</summary>
    IEnumerable<string> SparsePrefixes { get; }
    /// <summary>Runs (or resumes) every layer; returns the sparse layers' reports.</summary>
    List<LayerReport> Run(CalibrationData calib, string fingerprint, Dictionary<string, double> stageSeconds, CancellationToken ct);
}
