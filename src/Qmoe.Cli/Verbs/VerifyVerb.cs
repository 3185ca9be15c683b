using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Codec;

namespace Qmoe.Cli;

/// <summary><c>verify DIR [--json]</c>: full integrity check (hashes, offsets, decodability); exit 1 naming the first bad tensor.</summary>
internal static class VerifyVerb
{
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "compressed model directory" };
        var json = new Option<bool>("--json") { Description = "print one JSON object on stdout" };
        var cmd = new Command("verify", "check every checksum, offset and code of a compressed model");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(r => CliRunner.Run(r.GetValue(json), human =>
        {
            string path = r.GetValue(dir)!;
            using var model = CompressedModel.Open(path);
            int tensors = CompressedModelVerifier.Verify(model);
            human.WriteLine($"{path}: ok ({tensors} tensors, {model.Groups.Count} expert groups, format v{model.FormatVersion})");
            return new JsonObject { ["ok"] = true, ["tensors"] = tensors, ["expert_groups"] = model.Groups.Count, ["format_version"] = model.FormatVersion };
        }));
        return cmd;
    }
}
