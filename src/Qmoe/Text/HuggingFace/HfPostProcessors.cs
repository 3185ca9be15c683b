using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// A <c>tokenizer.json</c> post-processor for one sequence: the ids it puts around the encoding when special tokens
/// are added (with <c>add_special_tokens=false</c> every supported processor leaves the ids as they are).
/// </summary>
internal interface IHfPostProcessor
{
    /// <summary>The ids with this processor's special tokens added.</summary>
    List<int> AddSpecialTokens(List<int> ids);
    /// <summary>The special token ids that come before / after the sequence (what bos/eos are taken from).</summary>
    (IReadOnlyList<int> Before, IReadOnlyList<int> After) Around { get; }
}

/// <summary>The post-processors of <c>tokenizer.json</c> (Hugging Face tokenizers' semantics), built from JSON.</summary>
internal static class HfPostProcessors
{
    public static IHfPostProcessor? Parse(HfJson json, JsonElement? element, string path)
    {
        if (element is not { } e) return null;
        string type = json.Type(e, path);
        switch (type)
        {
            case "ByteLevel":
                // Only trims offsets, which qmoe does not report.
                return new Template([], []);
            case "Sequence":
            {
                var items = json.Array(json.Required(e, path, "processors"), path + ".processors");
                var list = new List<IHfPostProcessor>();
                int i = 0;
                foreach (var item in items.EnumerateArray())
                {
                    string p = $"{path}.processors[{i++}]";
                    list.Add(Parse(json, item, p) ?? throw json.Error(p, "null processor"));
                }
                return new Sequence(list);
            }
            case "TemplateProcessing":
                return ParseTemplate(json, e, path);
            case "RobertaProcessing":
            case "BertProcessing":
                return new Template([TokenPair(json, json.Required(e, path, "cls"), path + ".cls")], [TokenPair(json, json.Required(e, path, "sep"), path + ".sep")]);
            default:
                throw json.Unsupported(path, $"post_processor type {type}");
        }
    }

    /// <summary>A <c>["token", id]</c> pair's id.</summary>
    private static int TokenPair(HfJson json, JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != 2) throw json.Error(path, "expected [token, id]");
        json.String(e[0], path + "[0]");
        return json.Int(e[1], path + "[1]");
    }

    /// <summary>TemplateProcessing's <c>single</c> template: special tokens (by name from <c>special_tokens</c>)
    /// around one <c>$A</c>, in the list form (<c>[{"SpecialToken": ...}, {"Sequence": ...}]</c>) that
    /// tokenizer.json holds (Hugging Face does not read the string form there either).</summary>
    private static Template ParseTemplate(HfJson json, JsonElement e, string path)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (HfJson.Optional(e, "special_tokens") is { } st)
        {
            json.Object(st, path + ".special_tokens");
            foreach (var p in st.EnumerateObject())
            {
                string name = json.Name(p, path + ".special_tokens");
                string sp = $"{path}.special_tokens[\"{name}\"]";
                var ids = json.Array(json.Required(json.Object(p.Value, sp), sp, "ids"), sp + ".ids");
                specials[name] = ids.EnumerateArray().Select((x, k) => json.Int(x, $"{sp}.ids[{k}]")).ToArray();
            }
        }
        var single = json.Required(e, path, "single");
        var names = new List<(string? Special, bool IsSequence)>();
        int i = 0;
        foreach (var piece in json.Array(single, path + ".single").EnumerateArray())
        {
            string pp = $"{path}.single[{i++}]";
            json.Object(piece, pp);
            if (HfJson.Optional(piece, "SpecialToken") is { } tok)
                names.Add((json.String(json.Required(json.Object(tok, pp + ".SpecialToken"), pp + ".SpecialToken", "id"), pp + ".SpecialToken.id"), false));
            else if (HfJson.Optional(piece, "Sequence") is { } seq)
            {
                string id = json.String(json.Required(json.Object(seq, pp + ".Sequence"), pp + ".Sequence", "id"), pp + ".Sequence.id");
                if (id != "A") throw json.Unsupported(pp + ".Sequence.id", $"sequence {id} in a single template");
                names.Add((null, true));
            }
            else throw json.Error(pp, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        }
        int sequences = names.Count(n => n.IsSequence);
        if (sequences != 1) throw json.Unsupported(path + ".single", $"a single template with {sequences} sequences");
        var before = new List<int>();
        var after = new List<int>();
        bool seen = false;
        foreach (var (special, isSequence) in names)
        {
            if (isSequence) { seen = true; continue; }
            var ids = specials.GetValueOrDefault(special!) ?? throw json.Error(path + ".special_tokens", $"no entry for \"{special}\"");
            (seen ? after : before).AddRange(ids);
        }
        return new Template(before, after);
    }

    private sealed class Template(List<int> before, List<int> after) : IHfPostProcessor
    {
        public (IReadOnlyList<int> Before, IReadOnlyList<int> After) Around => (before, after);

        public List<int> AddSpecialTokens(List<int> ids)
        {
            if (before.Count == 0 && after.Count == 0) return ids;
            var result = new List<int>(before.Count + ids.Count + after.Count);
            result.AddRange(before);
            result.AddRange(ids);
            result.AddRange(after);
            return result;
        }
    }

    private sealed class Sequence(List<IHfPostProcessor> items) : IHfPostProcessor
    {
        public (IReadOnlyList<int> Before, IReadOnlyList<int> After) Around
        {
            get
            {
                var b = new List<int>();
                var a = new List<int>();
                foreach (var p in items) { b.InsertRange(0, p.Around.Before); a.AddRange(p.Around.After); }
                return (b, a);
            }
        }

        public List<int> AddSpecialTokens(List<int> ids)
        {
            foreach (var p in items) ids = p.AddSpecialTokens(ids);
            return ids;
        }
    }
}
