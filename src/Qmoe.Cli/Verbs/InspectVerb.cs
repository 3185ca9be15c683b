using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Spectre.Console;

namespace Qmoe.Cli;

/// <summary><c>inspect DIR [--json]</c>: size and content statistics of a compressed model (SPEC §1).</summary>
internal static class InspectVerb
{
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "compressed model directory" };
        var json = new Option<bool>("--json") { Description = "print one JSON object on stdout" };
        var cmd = new Command("inspect", "bits per parameter (every byte counted), code bits, entropy bound and zero fraction of a compressed model");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(r => CliRunner.Run(r.GetValue(json), human => Run(r.GetValue(dir)!, human, r.GetValue(json))));
        return cmd;
    }

    private static JsonObject Run(string dir, TextWriter human, bool json)
    {
        using var model = CompressedModel.Open(dir);
        var s = ModelStatistics.Compute(model);
        var tensors = new JsonArray();
        foreach (var g in s.Groups)
            tensors.Add(new JsonObject
            {
                ["name"] = g.Name,
                ["experts"] = g.Experts,
                ["rows"] = g.Rows,
                ["cols"] = g.Cols,
                ["params"] = g.Parameters,
                ["bytes"] = g.Bytes,
                ["bits_per_param"] = g.BitsPerParam,
                ["code_bits_per_param"] = g.CodeBitsPerParam,
                ["offset_bits_per_param"] = 8.0 * g.OffsetBytes / g.Parameters,
                ["scale_bits_per_param"] = 8.0 * g.ScaleBytes / g.Parameters,
                ["entropy_bits_per_param"] = g.Trits.EntropyBits,
                ["zero_fraction"] = g.Trits.ZeroFraction,
            });
        var types = ExpertTypeStatistics.Compute(model);
        var typeList = new JsonArray();
        foreach (var t in types)
        {
            var o = new JsonObject { ["type"] = t.Type, ["matrices"] = t.Matrices, ["params"] = t.Parameters, ["bits_per_param"] = t.BitsPerParam };
            if (t.SymbolCounts != null)
            {
                o["code_bits_per_param"] = t.CodeBitsPerParam;
                o["entropy_bits_per_param"] = t.EntropyBits;
            }
            typeList.Add(o);
        }
        var result = new JsonObject
        {
            ["expert_bits_per_param"] = s.ExpertBitsPerParam,
            ["code_bits_per_param"] = s.CodeBitsPerParam,
            ["total_bits_per_param"] = s.TotalBitsPerParam,
            ["entropy_bits_per_param"] = s.EntropyBitsPerParam,
            ["expert_zero_fraction"] = s.ZeroFraction,
            ["format_version"] = model.FormatVersion,
            ["dictionary"] = model.Dictionary.Source,
            ["expert_params"] = s.ExpertParameters,
            ["expert_bytes"] = s.ExpertBytes,
            ["dictionary_bytes"] = s.DictionaryBytes,
            ["non_expert_params"] = s.PlainParameters,
            ["non_expert_bytes"] = s.PlainBytes,
            ["file_bytes"] = s.FileBytes,
            ["tensors"] = tensors,
            ["expert_types"] = typeList,
        };
        WriteTable(model, s, human);
        foreach (var t in types)
            human.WriteLine($"  type {t.Type,-7}: {t.Matrices} expert matrices, {t.Parameters:N0} params, {t.BitsPerParam:F4} bits/param " + (t.SymbolCounts == null ? "(codes)"
                : $"(codes + row grids); codes {t.CodeBitsPerParam:F4} vs entropy bound {t.EntropyBits:F4} given each row's zero point"));
        return result;
    }

    private static void WriteTable(CompressedModel model, ModelStatistics s, TextWriter human)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human), Ansi = AnsiSupport.No });
        console.Profile.Width = 200; // never wrap tensor names, also when piped
        var table = new Table().Title($"{model.Directory} (format v{model.FormatVersion}, dictionary {model.Dictionary.Source})");
        foreach (var c in new[] { "tensor", "experts", "rows x cols", "bits/param", "code", "offsets", "scales", "entropy", "zeros" })
            table.AddColumn(new TableColumn(c).RightAligned());
        foreach (var g in s.Groups)
            table.AddRow(g.Name, g.Experts.ToString(), $"{g.Rows} x {g.Cols}", $"{g.BitsPerParam:F4}", $"{g.CodeBitsPerParam:F4}",
                $"{8.0 * g.OffsetBytes / g.Parameters:F4}", $"{8.0 * g.ScaleBytes / g.Parameters:F4}", $"{g.Trits.EntropyBits:F4}", $"{g.Trits.ZeroFraction:P2}");
        console.Write(table);
        human.WriteLine($"experts:  {s.ExpertParameters:N0} params, {s.ExpertBytes:N0} bytes (dictionary {s.DictionaryBytes:N0}) = {s.ExpertBitsPerParam:F4} bits/param");
        if (s.Trits.Count > 0) // a model without ternary experts (uniform n-bit) has no trit stream
            human.WriteLine($"  code {s.CodeBitsPerParam:F4} bits/param vs entropy bound {s.EntropyBitsPerParam:F4} ({s.CodeBitsPerParam / s.EntropyBitsPerParam:F3}x), zero fraction {s.ZeroFraction:P2}");
        human.WriteLine($"total:    {s.ExpertParameters + s.PlainParameters:N0} params, {s.FileBytes:N0} bytes (non-expert tensors {s.PlainBytes:N0}) = {s.TotalBitsPerParam:F4} bits/param");
    }
}
