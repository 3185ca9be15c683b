namespace Qmoe.Compression;

/// <summary>A progress report of the compression pipeline: which block of how many, and what it is doing.</summary>
public sealed record PipelineProgress(int Block, int Blocks, string Stage, string Message);
