using System.Text;
using System.Text.Json.Nodes;

namespace Qmoe.Tests;

/// <summary>
/// Mutations of JSON documents for fuzzing: structural ones (a value replaced by another type, a huge or negative
/// number, a deep nest, a key removed or added) applied to the parsed tree, and byte-level damage to the text.
/// </summary>
public static class JsonFuzz
{
    private static readonly string[] Values =
    [
        "null", "true", "-1", "0", "1", "2147483647", "2147483648", "-2147483648", "9223372036854775807", "1e308", "-1e308", "1.5",
        "\"\"", "\"x\"", "[]", "{}", "[1, \"a\"]", "{\"a\": null}", "\"\\u0000\"",
    ];

    public static string Mutate(string json, Random rnd)
    {
        if (rnd.Next(4) == 0) return Bytes(json, rnd);
        var root = JsonNode.Parse(json)!;
        for (int k = rnd.Next(1, 4); k > 0; k--) root = MutateTree(root, rnd);
        return root.ToJsonString();
    }

    private static JsonNode MutateTree(JsonNode root, Random rnd)
    {
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n) { if (n == null) return; nodes.Add(n); if (n is JsonObject o) foreach (var p in o) Walk(p.Value); else if (n is JsonArray a) foreach (var x in a) Walk(x); }
        Walk(root);
        var target = nodes[rnd.Next(nodes.Count)];
        var replacement = rnd.Next(5) switch
        {
            0 => Deep(rnd.Next(1, 200)),
            1 => JsonValue.Create(new string('z', rnd.Next(0, 5000))),
            _ => JsonNode.Parse(Values[rnd.Next(Values.Length)]),
        };
        if (target.Parent is JsonObject parent)
        {
            string key = target.GetPropertyName();
            if (rnd.Next(4) == 0) parent.Remove(key);
            else parent[key] = replacement;
        }
        else if (target.Parent is JsonArray arr)
        {
            int i = target.GetElementIndex();
            if (rnd.Next(4) == 0) arr.RemoveAt(i);
            else arr[i] = replacement;
        }
        else if (target is JsonObject o && rnd.Next(2) == 0) o["extra_" + rnd.Next(100)] = replacement;
        else return replacement ?? JsonValue.Create(0)!;
        return root;
    }

    private static JsonNode Deep(int depth)
    {
        JsonNode n = new JsonArray();
        for (int i = 0; i < depth; i++) n = new JsonArray(n);
        return n;
    }

    private static readonly byte[] Damage = "{}[]\",:0-e\\"u8.ToArray().Concat(new byte[] { 0, 0xff, 0xc3 }).ToArray();

    private static string Bytes(string json, Random rnd)
    {
        var b = Encoding.UTF8.GetBytes(json);
        switch (rnd.Next(3))
        {
            case 0: b[rnd.Next(b.Length)] = Damage[rnd.Next(Damage.Length)]; return Encoding.UTF8.GetString(b);
            case 1: return json[..rnd.Next(json.Length)];
            default: return json.Insert(rnd.Next(json.Length), rnd.Next(8) == 0 ? "\"\\ud800\"" : Values[rnd.Next(Values.Length)]);
        }
    }
}
