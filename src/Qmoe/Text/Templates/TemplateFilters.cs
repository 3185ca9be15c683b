namespace Qmoe.Text.Templates;

using static TemplateValues;

/// <summary>The filters (<c>x|name(args)</c>), tests (<c>x is name</c>) and methods (<c>x.items()</c>) templates may use:
/// those of jinja2 and transformers that chat templates use.</summary>
public static class TemplateFilters
{
    public static object? Filter(string name, object? v, List<object?> a, Dictionary<string, object?> kw, Func<string, object?, List<object?>, bool> test)
    {
        object? Arg(int i, string key, object? fallback = null) => i < a.Count ? a[i] : kw.TryGetValue(key, out var x) ? x : fallback;
        switch (name)
        {
            case "trim": return Str(v, name).Trim();
            case "lower": return Str(v, name).ToLowerInvariant();
            case "upper": return Str(v, name).ToUpperInvariant();
            case "capitalize": { var s = Str(v, name); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "title": return Title(Str(v, name));
            case "string": return ToText(v);
            case "int": return v switch { long l => l, double d => (long)d, bool b => b ? 1L : 0L, string s when long.TryParse(s.Trim(), out long l) => l, _ => 0L };
            case "float": return v switch { long l => (double)l, double d => d, string s when double.TryParse(s.Trim(), System.Globalization.CultureInfo.InvariantCulture, out double d) => d, _ => 0.0 };
            case "abs": return v is long l2 ? Math.Abs(l2) : Math.Abs(ToDouble(v));
            case "length" or "count":
                return v switch
                {
                    string s => (long)s.Length,
                    List<object?> l => (long)l.Count,
                    Dictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new QmoeException($"chat template: {TypeName(v)} has no length"),
                };
            case "list": return new List<object?>(Iterate(v));
            case "first": { var l = Iterate(v); return l.Count > 0 ? l[0] : new Undefined("first"); }
            case "last": { var l = Iterate(v); return l.Count > 0 ? l[^1] : new Undefined("last"); }
            case "reverse": return v is string rs ? new string(rs.Reverse().ToArray()) : Enumerable.Reverse(Iterate(v)).ToList();
            case "join":
                {
                    var sep = ToText(Arg(0, "d", ""));
                    var attr = Arg(1, "attribute");
                    return string.Join(sep, Iterate(v).Select(x => ToText(attr != null ? Attribute(x, ToText(attr)) : x)));
                }
            case "default" or "d":
                {
                    bool boolean = Truthy(Arg(1, "boolean", false));
                    return v is Undefined || (boolean && !Truthy(v)) ? Arg(0, "default_value", "") : v;
                }
            case "replace":
                return Str(v, name).Replace(Str(Arg(0, "old"), name), Str(Arg(1, "new"), name));
            case "tojson":
                return ToJson(v, Arg(0, "indent") is long n ? (int)n : null);
            case "items":
                return v is Dictionary<string, object?> dict ? dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                    : throw new QmoeException($"chat template: items of a {TypeName(v)}");
            case "selectattr" or "rejectattr":
                {
                    bool keep = name == "selectattr";
                    string attr = ToText(Arg(0, "attribute"));
                    string? t = a.Count > 1 ? ToText(a[1]) : null;
                    return Iterate(v).Where(x =>
                    {
                        var av = Attribute(x, attr);
                        bool pass = t == null ? Truthy(av) : test(t, av, a.Skip(2).ToList());
                        return pass == keep;
                    }).ToList();
                }
            case "select" or "reject":
                {
                    bool keep = name == "select";
                    string? t = a.Count > 0 ? ToText(a[0]) : null;
                    return Iterate(v).Where(x => (t == null ? Truthy(x) : test(t, x, a.Skip(1).ToList())) == keep).ToList();
                }
            case "map":
                {
                    if (kw.TryGetValue("attribute", out var attr))
                        return Iterate(v).Select(x => Attribute(x, ToText(attr)) is Undefined && kw.TryGetValue("default", out var dv) ? dv : Attribute(x, ToText(attr))).ToList();
                    string f = ToText(Arg(0, "name"));
                    return Iterate(v).Select(x => Filter(f, x, a.Skip(1).ToList(), new(), test)).ToList();
                }
            case "indent":
                {
                    long width = Arg(0, "width", 4L) is long w ? w : 4;
                    bool first = Truthy(Arg(1, "first", false));
                    var lines = Str(v, name).Split('\n');
                    string pad = new(' ', (int)Math.Clamp(width, 0, 1000));
                    for (int i = first ? 0 : 1; i < lines.Length; i++) if (lines[i].Length > 0) lines[i] = pad + lines[i];
                    return string.Join('\n', lines);
                }
            default: throw new QmoeException($"chat template: unsupported filter '{name}'");
        }
    }

    public static bool Test(string name, object? v, List<object?> a) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v == null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is Dictionary<string, object?>,
        "sequence" => v is List<object?> or string or Dictionary<string, object?>,
        "iterable" => v is List<object?> or string or Dictionary<string, object?>,
        "callable" => v is TemplateFunction,
        "odd" => v is long l && l % 2 != 0,
        "even" => v is long l && l % 2 == 0,
        "divisibleby" => v is long l && a.Count > 0 && a[0] is long d && d != 0 && l % d == 0,
        "equalto" or "eq" or "==" or "sameas" => a.Count > 0 && AreEqual(v, a[0]),
        "ne" or "!=" => a.Count > 0 && !AreEqual(v, a[0]),
        "lt" or "lessthan" or "<" => a.Count > 0 && Compare(v, a[0]) < 0,
        "gt" or "greaterthan" or ">" => a.Count > 0 && Compare(v, a[0]) > 0,
        "le" or "<=" => a.Count > 0 && Compare(v, a[0]) <= 0,
        "ge" or ">=" => a.Count > 0 && Compare(v, a[0]) >= 0,
        "in" => a.Count > 0 && TemplateEvaluator.Contains(a[0], v),
        "lower" => v is string s && s == s.ToLowerInvariant(),
        "upper" => v is string s && s == s.ToUpperInvariant(),
        _ => throw new QmoeException($"chat template: unsupported test '{name}'"),
    };

    /// <summary><c>x.name</c>: a dict's item (or a method of the value), else undefined.</summary>
    public static object? Attribute(object? v, string name)
    {
        if (v is Dictionary<string, object?> d && d.TryGetValue(name, out var x)) return x;
        return (object?)Method(v, name) ?? new Undefined(name);
    }

    private static TemplateFunction? Method(object? v, string name)
    {
        switch (v)
        {
            case Dictionary<string, object?> d:
                return name switch
                {
                    "items" => (_, _) => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    "keys" => (_, _) => d.Keys.Cast<object?>().ToList(),
                    "values" => (_, _) => d.Values.ToList(),
                    "get" => (a, _) => a.Count > 0 && d.TryGetValue(ToText(a[0]), out var x) ? x : a.Count > 1 ? a[1] : null,
                    _ => null,
                };
            case string s:
                return name switch
                {
                    "strip" => (a, _) => a.Count > 0 && a[0] is string c ? s.Trim(c.ToCharArray()) : s.Trim(),
                    "lstrip" => (a, _) => a.Count > 0 && a[0] is string c ? s.TrimStart(c.ToCharArray()) : s.TrimStart(),
                    "rstrip" => (a, _) => a.Count > 0 && a[0] is string c ? s.TrimEnd(c.ToCharArray()) : s.TrimEnd(),
                    "upper" => (_, _) => s.ToUpperInvariant(),
                    "lower" => (_, _) => s.ToLowerInvariant(),
                    "title" => (_, _) => Title(s),
                    "startswith" => (a, _) => a.Count > 0 && s.StartsWith(Str(a[0], name), StringComparison.Ordinal),
                    "endswith" => (a, _) => a.Count > 0 && s.EndsWith(Str(a[0], name), StringComparison.Ordinal),
                    "replace" => (a, _) => a.Count > 1 ? s.Replace(Str(a[0], name), Str(a[1], name)) : s,
                    "split" => (a, _) => (a.Count > 0 && a[0] is string sep
                        ? s.Split(sep) : s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).Select(x => (object?)x).ToList(),
                    _ => null,
                };
            default: return null;
        }
    }

    private static string Str(object? v, string what) =>
        v as string ?? (v is Undefined ? "" : throw new QmoeException($"chat template: {what} needs a string, got {TypeName(v)}"));

    private static string Title(string s)
    {
        var c = s.ToCharArray();
        for (int i = 0; i < c.Length; i++) c[i] = i == 0 || !char.IsLetter(c[i - 1]) ? char.ToUpperInvariant(c[i]) : char.ToLowerInvariant(c[i]);
        return new string(c);
    }
}
