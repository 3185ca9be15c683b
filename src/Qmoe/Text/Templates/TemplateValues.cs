using System.Globalization;
using System.Text;

namespace Qmoe.Text.Templates;

/// <summary>An undefined variable or missing attribute: prints as "", is falsy, fails in arithmetic (jinja2's Undefined).</summary>
public sealed class Undefined(string name)
{
    public string Name { get; } = name;
    public override string ToString() => "";
}

/// <summary>A <c>namespace(...)</c> object: attributes assignable from inside loops.</summary>
public sealed class TemplateNamespace : Dictionary<string, object?>
{
    public TemplateNamespace() : base(StringComparer.Ordinal) { }
}

/// <summary>A callable value (global function, macro, bound method).</summary>
public delegate object? TemplateFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>
/// Value semantics of the template language, following Python/jinja2: values are null (none), <see cref="Undefined"/>,
/// bool, long, double, string, <c>List&lt;object?&gt;</c>, <c>Dictionary&lt;string, object?&gt;</c> (insertion-ordered)
/// and <see cref="TemplateFunction"/>.
/// </summary>
public static class TemplateValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>str(v) as Python prints it (what <c>{{ v }}</c> writes).</summary>
    public static string ToText(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatDouble(d),
        _ => Repr(v),
    };

    /// <summary>repr(v) as Python prints it (elements of a printed list or dict).</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case string s: return "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'";
            case List<object?> l: return "[" + string.Join(", ", l.Select(Repr)) + "]";
            case Dictionary<string, object?> d: return "{" + string.Join(", ", d.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}";
            case TemplateFunction: return "<function>";
            default: return ToText(v);
        }
    }

    private static string FormatDouble(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        return r.Contains('.') || r.Contains('E') ? r : r + ".0";
    }

    public static bool IsNumber(object? v) => v is long or double || v is bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new QmoeException($"chat template: {TypeName(v)} is not a number"),
    };

    public static bool AreEqual(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a == null || b == null) return a == null && b == null;
        if (IsNumber(a) && IsNumber(b))
            return a is long or bool && b is long or bool ? ToDouble(a) == ToDouble(b) && (long)ToDouble(a) == (long)ToDouble(b) : ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
            (Dictionary<string, object?> x, Dictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var o) && AreEqual(p.Value, o)),
            _ => ReferenceEquals(a, b),
        };
    }

    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string x && b is string y) return string.CompareOrdinal(x, y);
        throw new QmoeException($"chat template: cannot compare {TypeName(a)} with {TypeName(b)}");
    }

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined u => $"undefined '{u.Name}'",
        bool => "bool",
        long => "int",
        double => "float",
        string => "string",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        _ => "function",
    };

    /// <summary>Items to iterate: a list's elements, a dict's keys, a string's characters.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => l,
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        Undefined => new List<object?>(),
        _ => throw new QmoeException($"chat template: {TypeName(v)} is not iterable"),
    };

    /// <summary>JSON text of v as transformers' tojson writes it (json.dumps: ", " and ": " separators, non-ASCII kept).</summary>
    public static string ToJson(object? v, int? indent = null)
    {
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth)
    {
        string Nl(int d) => indent is int n ? "\n" + new string(' ', n * d) : "";
        string itemSep = indent != null ? "," : ", ";
        switch (v)
        {
            case null or Undefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FormatDouble(d) switch { "inf" => "Infinity", "-inf" => "-Infinity", "nan" => "NaN", var t => t }); break;
            case string s: WriteJsonString(sb, s); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    sb.Append(Nl(depth + 1));
                    WriteJson(sb, list[i], indent, depth + 1);
                }
                sb.Append(Nl(depth)).Append(']');
                break;
            case Dictionary<string, object?> dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in dict)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    sb.Append(Nl(depth + 1));
                    WriteJsonString(sb, k);
                    sb.Append(": ");
                    WriteJson(sb, x, indent, depth + 1);
                }
                sb.Append(Nl(depth)).Append('}');
                break;
            default: throw new QmoeException($"chat template: tojson cannot write a {TypeName(v)}");
        }
    }

    private static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>A JSON document (System.Text.Json) as template values.</summary>
    public static object? FromJson(System.Text.Json.Nodes.JsonNode? node) => node switch
    {
        null => null,
        System.Text.Json.Nodes.JsonObject o => o.ToDictionary(p => p.Key, p => FromJson(p.Value), StringComparer.Ordinal),
        System.Text.Json.Nodes.JsonArray a => a.Select(FromJson).ToList(),
        System.Text.Json.Nodes.JsonValue v => v.GetValueKind() switch
        {
            System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
            System.Text.Json.JsonValueKind.True => true,
            System.Text.Json.JsonValueKind.False => false,
            System.Text.Json.JsonValueKind.Number => v.TryGetValue<long>(out long l) ? l : v.GetValue<double>(),
            _ => null,
        },
        _ => null,
    };
}
