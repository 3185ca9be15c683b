using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.Text;

namespace Qmoe.Cli;

/// <summary>
/// <c>tokenize --model DIR (--text S | --file F | --jsonl F) [--special] [--decode] [--json]</c>: ids of each input
/// (one line of space-separated ids per input; JSON <c>{"ids": [[...], ...]}</c>), or with <c>--decode</c> the text
/// of each line of ids (JSON <c>{"texts": [...]}</c>). DIR is a checkpoint or a directory of tokenizer files only.
/// </summary>
internal static class TokenizeVerb
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "checkpoint directory, or a directory holding only tokenizer files", Required = true };
        var text = new Option<string?>("--text") { Description = "one input" };
        var file = new Option<string?>("--file") { Description = "a text file: one input per line" };
        var jsonl = new Option<string?>("--jsonl") { Description = "one JSON string per line (inputs may hold newlines and control characters)" };
        var special = new Option<bool>("--special") { Description = "add the special tokens the tokenizer adds by default (with --decode: keep special tokens)" };
        var decode = new Option<bool>("--decode") { Description = "inputs are ids (space-separated, or JSON arrays with --jsonl): print their text" };
        var json = CommonOptions.Json();
        var cmd = new Command("tokenize", "token ids of text (or text of ids) with a checkpoint's tokenizer") { model, text, file, jsonl, special, decode, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            var inputs = Inputs(p.GetValue(text), p.GetValue(file), p.GetValue(jsonl), p.GetValue(decode));
            var tokenizer = TokenizerLoader.ForDirectory(p.GetValue(model)!);
            bool asJson = p.GetValue(json);
            var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16);
            var results = new JsonArray();
            if (p.GetValue(decode))
            {
                foreach (var (source, ids) in inputs.Select(i => (i.Source, ParseIds(i.Text, i.Source))))
                {
                    foreach (int id in ids)
                        if ((uint)id >= (uint)tokenizer.VocabSize) throw new QmoeException($"{source}: token id {id} is outside the vocabulary [0, {tokenizer.VocabSize})");
                    string decoded = tokenizer.Decode(ids, skipSpecialTokens: !p.GetValue(special));
                    if (asJson) results.Add(decoded); else stdout.WriteLine(decoded);
                }
            }
            else
            {
                foreach (var (_, input) in inputs)
                {
                    int[] ids = tokenizer.Encode(input, p.GetValue(special));
                    if (asJson) results.Add(new JsonArray(ids.Select(i => (JsonNode)i).ToArray()));
                    else stdout.WriteLine(string.Join(' ', ids));
                }
            }
            stdout.Flush();
            human.Flush();
            return asJson ? new JsonObject { [p.GetValue(decode) ? "texts" : "ids"] = results } : null;
        }));
        return cmd;
    }

    /// <summary>The inputs with where each came from (for messages).</summary>
    private static List<(string Source, string Text)> Inputs(string? text, string? file, string? jsonl, bool decode)
    {
        if ((text != null ? 1 : 0) + (file != null ? 1 : 0) + (jsonl != null ? 1 : 0) != 1)
            throw new QmoeException("give exactly one of --text S, --file F or --jsonl F");
        if (text != null) return [("--text", text)];
        string path = (file ?? jsonl)!;
        if (!File.Exists(path)) throw new QmoeException($"{path}: input file not found");
        var inputs = new List<(string, string)>();
        int n = 0;
        foreach (string line in File.ReadLines(path))
        {
            n++;
            string source = $"{path}:{n}";
            if (file != null) { inputs.Add((source, line)); continue; }
            if (line.Length == 0) continue; // a trailing blank line
            try
            {
                var node = JsonNode.Parse(line);
                if (decode && node is JsonArray ids) inputs.Add((source, string.Join(' ', ids.Select(i => i?.GetValue<int>()))));
                else inputs.Add((source, node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>()
                    : throw new QmoeException($"{source}: not a JSON string{(decode ? " or array of ids" : "")}")));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            { throw new QmoeException($"{source}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
        }
        return inputs;
    }

    private static int[] ParseIds(string line, string source)
    {
        var parts = line.Split((char[])[' ', '\t', ','], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i])) throw new QmoeException($"{source}: '{parts[i]}' is not a token id");
        return ids;
    }
}
