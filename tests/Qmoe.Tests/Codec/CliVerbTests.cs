using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;

namespace Qmoe.Tests.Codec;

/// <summary>The <c>inspect</c>, <c>verify</c>, <c>bench matvec</c> and <c>bench serve</c> verbs, run as the CLI process.</summary>
public class CliVerbTests
{
    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Qmoe.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    /// <summary><c>bench matvec --json</c> names each case's instruction set and row loop, and times both kernels.</summary>
    [Fact]
    public void BenchMatvecJsonNamesThePathAndRowLoop()
    {
        var (code, stdout, stderr) = Cli("bench", "matvec", "--experts", "2", "--sweeps", "1", "--threads", "1", "--json");
        Assert.True(code == 0, stderr);
        var j = JsonNode.Parse(stdout)!.AsObject();
        var best = Qmoe.Kernels.KernelIsas.Best;
        Assert.Equal(Qmoe.Kernels.KernelIsas.Name(best), (string?)j["isa"]);
        var results = j["results"]!.AsArray().Select(r => r!.AsObject()).ToDictionary(r => (string)r["case"]!);
        Assert.Equal(["wi", "wo"], results.Keys.Order());
        bool positions = best == Qmoe.Kernels.KernelIsa.Avx512 && Qmoe.Kernels.PositionRows.IsSupported;
        string windows = best >= Qmoe.Kernels.KernelIsa.Avx2 ? "windows" : "nonzero slots";
        Assert.Equal(positions ? "position windows" : windows, (string?)results["wi"]["row_loop"]); // 768 columns
        Assert.Equal(windows, (string?)results["wo"]["row_loop"]); // 3,072 columns
        foreach (var r in results.Values)
        {
            Assert.True((double)r["compressed_ms"]! > 0 && (double)r["dense_bf16_ms"]! > 0);
            Assert.Equal((double)r["dense_bf16_ms"]! / (double)r["compressed_ms"]!, (double)r["speedup_vs_bf16"]!, 9);
        }
    }

    /// <summary><c>bench serve --json</c> on the embedded model: a short load test on loopback that names the
    /// instruction set, loses no request and matches every output to its sequential twin.</summary>
    [Fact]
    public void BenchServeJsonNamesThePathAndMatchesEveryRequest()
    {
        var (code, stdout, stderr) = Cli("bench", "serve", "--model", Paths.TinyModel, "--clients", "2", "--requests", "2",
            "--max-tokens", "3", "--rounds", "1", "--json");
        Assert.True(code == 0, stderr);
        var j = JsonNode.Parse(stdout)!.AsObject();
        Assert.Equal(Qmoe.Kernels.KernelIsas.Name(Qmoe.Kernels.KernelIsas.Best), (string?)j["isa"]);
        Assert.Equal(4, (int)j["requests"]!);
        Assert.Equal(0, (int)j["errors"]!);
        Assert.Equal(0, (int)j["mismatches"]!);
        Assert.True((int)j["tokens"]! > 0 && (double)j["speedup"]! > 0);
        Assert.Single(j["round_speedups"]!.AsArray());
    }

    [Fact]
    public void InspectJsonCountsEveryByte()
    {
        using var tmp = Paths.Temp();
        SmallModel.Write(tmp.Path);
        var (code, stdout, _) = Cli("inspect", tmp.Path, "--json");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!.AsObject();
        foreach (var key in new[] { "expert_bits_per_param", "code_bits_per_param", "total_bits_per_param", "entropy_bits_per_param", "expert_zero_fraction", "tensors" })
            Assert.True(j.ContainsKey(key), key);
        long fileBytes = new FileInfo(Path.Combine(tmp.Path, "model.safetensors")).Length;
        long expertParams = 2 * 3 * 9 * 37, plainParams = 12;
        Assert.Equal(8.0 * fileBytes / (expertParams + plainParams), (double)j["total_bits_per_param"]!, 9);
        using var f = SafeTensorsFile.Open(Path.Combine(tmp.Path, "model.safetensors"));
        long expertBytes = f.Tensors.Values.Where(t => t.Name != "shared.weight").Sum(t => t.ByteLength);
        Assert.Equal(8.0 * expertBytes / expertParams, (double)j["expert_bits_per_param"]!, 9);
        long codes = f.Tensors.Values.Where(t => t.Name.EndsWith(".codes")).Sum(t => t.ElementCount);
        Assert.Equal(16.0 * codes / expertParams, (double)j["code_bits_per_param"]!, 9);
        Assert.Equal(2, j["tensors"]!.AsArray().Count);
        Assert.InRange((double)j["expert_zero_fraction"]!, 0.75, 0.95);
    }

    [Fact]
    public void VerifyExitsNonZeroNamingTheCorruptTensor()
    {
        using var tmp = Paths.Temp();
        SmallModel.Write(tmp.Path);
        Assert.Equal(0, Cli("verify", tmp.Path).Code);
        string file = Path.Combine(tmp.Path, "model.safetensors");
        long offset;
        using (var f = SafeTensorsFile.Open(file)) offset = f.Info("a.experts.wi.codes").Offset + 1;
        var bytes = File.ReadAllBytes(file);
        bytes[offset] ^= 1;
        File.WriteAllBytes(file, bytes);
        var (code, stdout, stderr) = Cli("verify", tmp.Path, "--json");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("'a.experts.wi.codes'", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
