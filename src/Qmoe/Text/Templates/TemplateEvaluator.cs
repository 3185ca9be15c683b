using System.Text;

namespace Qmoe.Text.Templates;

using static TemplateValues;

/// <summary>Raised by a template's <c>raise_exception(message)</c>: the conversation does not fit the template.</summary>
public sealed class TemplateRaisedException(string message) : QmoeException($"chat template: {message}");

/// <summary>
/// Renders a parsed template against variables. Scoping as jinja2: a for loop's body has its own scope (assignments
/// inside do not leak out, hence <c>namespace()</c>), <c>loop</c> describes the iteration. Work is bounded: at most
/// <see cref="MaxOutputChars"/> of output and <see cref="MaxSteps"/> evaluation steps, so no template can hang.
/// </summary>
public sealed class TemplateEvaluator
{
    public const int MaxOutputChars = 16 << 20;
    public const long MaxSteps = 1_000_000;
    private const int MaxDepth = 64;

    private readonly List<Dictionary<string, object?>> _scopes = new();
    private readonly StringBuilder _out = new();
    private long _steps;
    private int _depth;

    private TemplateEvaluator(Dictionary<string, object?> globals)
    {
        _scopes.Add(new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["raise_exception"] = (TemplateFunction)((a, _) => throw new TemplateRaisedException(a.Count > 0 ? ToText(a[0]) : "raise_exception")),
            ["namespace"] = (TemplateFunction)((a, kw) =>
            {
                var ns = new TemplateNamespace();
                if (a.Count > 0 && a[0] is Dictionary<string, object?> init) foreach (var (k, v) in init) ns[k] = v;
                foreach (var (k, v) in kw) ns[k] = v;
                return ns;
            }),
            ["range"] = (TemplateFunction)((a, _) => Range(a)),
            ["strftime_now"] = (TemplateFunction)((a, _) => Strftime(DateTime.Now, a.Count > 0 ? ToText(a[0]) : "")),
        });
        _scopes.Add(new Dictionary<string, object?>(globals, StringComparer.Ordinal));
    }

    public static string Render(IReadOnlyList<Node> template, Dictionary<string, object?> variables)
    {
        var e = new TemplateEvaluator(variables);
        e.Run(template);
        return e._out.ToString();
    }

    private void Run(IReadOnlyList<Node> nodes)
    {
        foreach (var n in nodes)
        {
            Tick();
            switch (n)
            {
                case TextNode t: Write(t.Text); break;
                case OutputNode o: Write(ToText(Eval(o.Value))); break;
                case IfNode i:
                    {
                        var branch = i.Branches.FirstOrDefault(b => Truthy(Eval(b.Condition)));
                        var body = branch.Body ?? i.Else;
                        if (body != null) Run(body);
                        break;
                    }
                case ForNode f: RunFor(f); break;
                case SetNode s:
                    {
                        var v = Eval(s.Value);
                        if (s.Attribute == null) _scopes[^1][s.Name] = v;
                        else if (Lookup(s.Name) is TemplateNamespace ns) ns[s.Attribute] = v;
                        else throw new QmoeException($"chat template: cannot set '{s.Name}.{s.Attribute}': '{s.Name}' is not a namespace");
                        break;
                    }
                case MacroNode m: _scopes[^1][m.Name] = Macro(m); break;
            }
        }
    }

    private void RunFor(ForNode f)
    {
        var items = Iterate(Eval(f.Items));
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        _scopes.Add(scope);
        try
        {
            var selected = new List<object?>();
            foreach (var item in items)
            {
                Tick();
                Bind(scope, f.Targets, item);
                if (f.Filter == null || Truthy(Eval(f.Filter))) selected.Add(item);
            }
            for (int i = 0; i < selected.Count; i++)
            {
                Tick();
                scope.Clear();
                Bind(scope, f.Targets, selected[i]);
                scope["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["index"] = (long)i + 1, ["index0"] = (long)i, ["first"] = i == 0, ["last"] = i == selected.Count - 1,
                    ["length"] = (long)selected.Count, ["revindex"] = (long)(selected.Count - i), ["revindex0"] = (long)(selected.Count - i - 1),
                    ["previtem"] = i > 0 ? selected[i - 1] : new Undefined("previtem"),
                    ["nextitem"] = i + 1 < selected.Count ? selected[i + 1] : new Undefined("nextitem"),
                };
                Run(f.Body);
            }
            if (selected.Count == 0 && f.Else != null) Run(f.Else);
        }
        finally { _scopes.RemoveAt(_scopes.Count - 1); }
    }

    private static void Bind(Dictionary<string, object?> scope, IReadOnlyList<string> targets, object? item)
    {
        if (targets.Count == 1) { scope[targets[0]] = item; return; }
        var parts = item as List<object?> ?? throw new QmoeException($"chat template: cannot unpack a {TypeName(item)} into {targets.Count} names");
        if (parts.Count != targets.Count) throw new QmoeException($"chat template: cannot unpack {parts.Count} values into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++) scope[targets[i]] = parts[i];
    }

    private TemplateFunction Macro(MacroNode m) => (args, kwargs) =>
    {
        if (++_depth > MaxDepth) throw new QmoeException($"chat template: macro '{m.Name}' nests deeper than {MaxDepth}");
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (int i = 0; i < m.Parameters.Count; i++)
        {
            var (name, dflt) = m.Parameters[i];
            scope[name] = i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : dflt != null ? Eval(dflt) : new Undefined(name);
        }
        int mark = _out.Length;
        _scopes.Add(scope);
        try { Run(m.Body); }
        finally { _scopes.RemoveAt(_scopes.Count - 1); _depth--; }
        string result = _out.ToString(mark, _out.Length - mark);
        _out.Length = mark;
        return result;
    };

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out var v)) return v;
        return new Undefined(name);
    }

    private object? Eval(Expr e)
    {
        Tick();
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return Lookup(n.Name);
            case AttributeExpr a: return TemplateFilters.Attribute(Eval(a.Target), a.Name);
            case IndexExpr ix: return Index(Eval(ix.Target), Eval(ix.Index));
            case SliceExpr s: return Slice(Eval(s.Target), s.Start == null ? null : Eval(s.Start), s.Stop == null ? null : Eval(s.Stop), s.Step == null ? null : Eval(s.Step));
            case CallExpr c:
                {
                    var f = Eval(c.Target) as TemplateFunction ?? throw new QmoeException($"chat template: {Describe(c.Target)} is not callable");
                    return f(c.Args.Select(Eval).ToList(), c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)));
                }
            case FilterExpr f:
                return TemplateFilters.Filter(f.Name, Eval(f.Target), f.Args.Select(Eval).ToList(),
                    f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)), TemplateFilters.Test);
            case TestExpr t:
                {
                    var v = t.Name == "defined" || t.Name == "undefined" ? EvalLenient(t.Target) : Eval(t.Target);
                    return TemplateFilters.Test(t.Name, v, t.Args.Select(Eval).ToList()) != t.Negated;
                }
            case UnaryExpr u:
                {
                    var v = Eval(u.Operand);
                    return u.Operator == "not" ? !Truthy(v) : v is long l ? -l : (object)(-ToDouble(v));
                }
            case BinaryExpr b: return Binary(b);
            case ConditionalExpr c: return Truthy(Eval(c.Condition)) ? Eval(c.Then) : c.Else == null ? new Undefined("else") : Eval(c.Else);
            case ListExpr l: return l.Items.Select(Eval).ToList();
            case DictExpr d: return d.Items.ToDictionary(p => ToText(Eval(p.Key)), p => Eval(p.Value), StringComparer.Ordinal);
            default: throw new QmoeException($"chat template: cannot evaluate {e.GetType().Name}");
        }
    }

    /// <summary>For <c>is defined</c>: an attribute of an undefined value is undefined rather than an error.</summary>
    private object? EvalLenient(Expr e) => e switch
    {
        AttributeExpr a => EvalLenient(a.Target) is var t && t is Undefined ? t : TemplateFilters.Attribute(t, a.Name),
        IndexExpr ix => EvalLenient(ix.Target) is var t && t is Undefined ? t : Index(t, Eval(ix.Index)),
        _ => Eval(e),
    };

    private object? Binary(BinaryExpr b)
    {
        if (b.Operator == "and") { var l = Eval(b.Left); return Truthy(l) ? Eval(b.Right) : l; }
        if (b.Operator == "or") { var l = Eval(b.Left); return Truthy(l) ? l : Eval(b.Right); }
        var x = Eval(b.Left);
        var y = Eval(b.Right);
        switch (b.Operator)
        {
            case "==": return AreEqual(x, y);
            case "!=": return !AreEqual(x, y);
            case "<": return Compare(x, y) < 0;
            case ">": return Compare(x, y) > 0;
            case "<=": return Compare(x, y) <= 0;
            case ">=": return Compare(x, y) >= 0;
            case "in": return Contains(y, x);
            case "not in": return !Contains(y, x);
            case "~": return Limit(ToText(x) + ToText(y));
            case "+":
                if (x is string xs && y is string ys) return Limit(xs + ys);
                if (x is List<object?> xl && y is List<object?> yl) return xl.Concat(yl).ToList();
                break;
            case "*":
                if (x is string s && y is long n) return Limit(n <= 0 ? "" : n * s.Length > MaxOutputChars ? throw TooLong() : string.Concat(Enumerable.Repeat(s, (int)n)));
                break;
        }
        if (x is Undefined || y is Undefined || !IsNumber(x) || !IsNumber(y))
            throw new QmoeException($"chat template: unsupported operands for '{b.Operator}': {TypeName(x)} and {TypeName(y)}");
        if (x is long a && y is long c && b.Operator is "+" or "-" or "*" or "//" or "%" or "**")
        {
            try
            {
                return b.Operator switch
                {
                    "+" => checked(a + c),
                    "-" => checked(a - c),
                    "*" => checked(a * c),
                    "//" => c == 0 ? throw DivZero() : FloorDiv(a, c),
                    "%" => c == 0 ? throw DivZero() : a - c * FloorDiv(a, c),
                    _ => c < 0 ? Math.Pow(a, c) : (object)checked((long)Math.Pow(a, c)),
                };
            }
            catch (OverflowException) { throw new QmoeException($"chat template: integer overflow in '{b.Operator}'"); }
        }
        double p = ToDouble(x), q = ToDouble(y);
        return b.Operator switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw DivZero() : p / q,
            "//" => q == 0 ? throw DivZero() : Math.Floor(p / q),
            "%" => q == 0 ? throw DivZero() : p - q * Math.Floor(p / q),
            "**" => Math.Pow(p, q),
            _ => throw new QmoeException($"chat template: unsupported operator '{b.Operator}'"),
        };
    }

    private static long FloorDiv(long a, long c) => a / c - ((a % c != 0) && ((a < 0) != (c < 0)) ? 1 : 0);
    private static QmoeException DivZero() => new("chat template: division by zero");

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw new QmoeException($"chat template: 'in <string>' needs a string, got {TypeName(item)}"),
        List<object?> l => l.Any(x => AreEqual(x, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Undefined => false,
        _ => throw new QmoeException($"chat template: 'in' needs a container, got {TypeName(container)}"),
    };

    private static object? Index(object? target, object? index)
    {
        switch (target)
        {
            case List<object?> l when index is long i:
                { long k = i < 0 ? l.Count + i : i; return k >= 0 && k < l.Count ? l[(int)k] : new Undefined($"[{i}]"); }
            case string s when index is long i:
                { long k = i < 0 ? s.Length + i : i; return k >= 0 && k < s.Length ? s[(int)k].ToString() : new Undefined($"[{i}]"); }
            case Dictionary<string, object?> d when index is string key:
                return d.TryGetValue(key, out var v) ? v : new Undefined(key);
            case Dictionary<string, object?>:
                return new Undefined(ToText(index));
            case Undefined u: return new Undefined(u.Name + "[" + ToText(index) + "]");
        }
        if (index is string name) return TemplateFilters.Attribute(target, name);
        throw new QmoeException($"chat template: cannot index a {TypeName(target)} with a {TypeName(index)}");
    }

    /// <summary>Python slicing <c>x[start:stop:step]</c> of a list or string.</summary>
    private static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long st = step is long sv ? sv : 1;
        if (st == 0) throw new QmoeException("chat template: slice step cannot be zero");
        int n = target switch { List<object?> l => l.Count, string s => s.Length, _ => throw new QmoeException($"chat template: cannot slice a {TypeName(target)}") };
        long Norm(object? v, long dflt)
        {
            if (v is not long x) return dflt;
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1), b = Norm(stop, st > 0 ? n : -1);
        var idx = new List<int>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) idx.Add((int)i);
        return target is string str ? string.Concat(idx.Select(i => str[i])) : idx.Select(i => ((List<object?>)target!)[i]).ToList();
    }

    private static List<object?> Range(List<object?> a)
    {
        long start = 0, stop, step = 1;
        if (a.Count == 1) stop = a[0] is long s ? s : 0;
        else { start = a.Count > 0 && a[0] is long x ? x : 0; stop = a.Count > 1 && a[1] is long y ? y : 0; step = a.Count > 2 && a[2] is long z ? z : 1; }
        if (step == 0) throw new QmoeException("chat template: range step cannot be zero");
        long count = Math.Max(0, (stop - start + step - Math.Sign(step)) / step);
        if (count > 100_000) throw new QmoeException($"chat template: range of {count} items is too long");
        var r = new List<object?>();
        for (long i = 0; i < count; i++) r.Add(start + i * step);
        return r;
    }

    /// <summary>Python's strftime for the codes chat templates use (%d %m %Y %y %B %b %A %a %H %M %S %j %p %%).</summary>
    public static string Strftime(DateTime t, string format)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { sb.Append(format[i]); continue; }
            char k = format[++i];
            sb.Append(k switch
            {
                'd' => t.ToString("dd", c), 'm' => t.ToString("MM", c), 'Y' => t.ToString("yyyy", c), 'y' => t.ToString("yy", c),
                'B' => t.ToString("MMMM", c), 'b' => t.ToString("MMM", c), 'A' => t.ToString("dddd", c), 'a' => t.ToString("ddd", c),
                'H' => t.ToString("HH", c), 'M' => t.ToString("mm", c), 'S' => t.ToString("ss", c), 'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", c), '%' => "%", _ => "%" + k,
            });
        }
        return sb.ToString();
    }

    private static string Describe(Expr e) => e switch { NameExpr n => $"'{n.Name}'", AttributeExpr a => $"'{a.Name}'", _ => "the expression" };

    private void Write(string s)
    {
        if (_out.Length + (long)s.Length > MaxOutputChars) throw TooLong();
        _out.Append(s);
    }

    private static string Limit(string s) => s.Length > MaxOutputChars ? throw TooLong() : s;
    private static QmoeException TooLong() => new($"chat template: output longer than {MaxOutputChars} characters");

    private void Tick()
    {
        if (++_steps > MaxSteps) throw new QmoeException($"chat template: more than {MaxSteps} evaluation steps");
    }
}
