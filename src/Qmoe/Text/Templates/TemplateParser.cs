namespace Qmoe.Text.Templates;

/// <summary>
/// Parses template segments into a syntax tree. Expression precedence as in jinja2, lowest first:
/// conditional (<c>a if c else b</c>), <c>or</c>, <c>and</c>, <c>not</c>, comparisons (<c>== != &lt; &gt; &lt;= &gt;= in, not in</c>),
/// <c>+ -</c>, <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>-</c>, then postfix (<c>.a [i] [a:b] (args)</c>), filters
/// (<c>|f</c>) and tests (<c>is [not] t</c>), which bind tightest: <c>not x is defined</c> is <c>not (x is defined)</c>.
/// </summary>
public sealed class TemplateParser
{
    private readonly List<TemplateSegment> _segments;
    private int _seg;
    private List<TemplateToken> _tokens = new();
    private int _pos;

    private TemplateParser(List<TemplateSegment> segments) { _segments = segments; }

    public static IReadOnlyList<Node> Parse(string source)
    {
        var p = new TemplateParser(TemplateLexer.Split(source));
        var body = p.ParseBody(out var end);
        if (end != null) throw new QmoeException($"chat template: unexpected '{{% {end} %}}'");
        return body;
    }

    /// <summary>Parses nodes until a statement whose keyword is in <paramref name="stops"/> (returned in <paramref name="end"/>,
    /// its tokens current) or the end of the source (end = null).</summary>
    private List<Node> ParseBody(out string? end, params string[] stops)
    {
        var nodes = new List<Node>();
        while (_seg < _segments.Count)
        {
            var s = _segments[_seg++];
            switch (s.Kind)
            {
                case SegmentKind.Text: nodes.Add(new TextNode(s.Content)); break;
                case SegmentKind.Output:
                    Begin(s);
                    nodes.Add(new OutputNode(ParseExpression()));
                    ExpectEnd();
                    break;
                case SegmentKind.Statement:
                    Begin(s);
                    var keyword = Next();
                    if (keyword.Kind != TokenKind.Name) throw Error($"expected a statement keyword in '{{% {s.Content.Trim()} %}}'");
                    if (stops.Contains(keyword.Text)) { end = keyword.Text; return nodes; }
                    nodes.Add(keyword.Text switch
                    {
                        "if" => ParseIf(),
                        "for" => ParseFor(),
                        "set" => ParseSet(),
                        "macro" => ParseMacro(),
                        _ => throw Error($"unsupported statement '{keyword.Text}'"),
                    });
                    break;
            }
        }
        if (stops.Length > 0) throw Error($"missing '{{% {stops[^1]} %}}'");
        end = null;
        return nodes;
    }

    private void Begin(TemplateSegment s) { _tokens = TemplateTokenizer.Tokenize(s.Content); _pos = 0; }

    private IfNode ParseIf()
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var cond = ParseExpression();
        ExpectEnd();
        while (true)
        {
            var body = ParseBody(out var end, "elif", "else", "endif");
            branches.Add((cond, body));
            if (end == "elif") { cond = ParseExpression(); ExpectEnd(); continue; }
            if (end == "else")
            {
                ExpectEnd();
                var elseBody = ParseBody(out _, "endif");
                ExpectEnd();
                return new IfNode(branches, elseBody);
            }
            ExpectEnd();
            return new IfNode(branches, null);
        }
    }

    private ForNode ParseFor()
    {
        var targets = new List<string> { ExpectName() };
        while (Accept(",")) targets.Add(ExpectName());
        if (!Next().IsName("in")) throw Error("expected 'in' in a for statement");
        var items = ParseOr(allowConditional: false);
        Expr? filter = null;
        if (Peek.IsName("if")) { _pos++; filter = ParseOr(allowConditional: false); }
        ExpectEnd();
        var body = ParseBody(out var end, "else", "endfor");
        List<Node>? elseBody = null;
        ExpectEnd();
        if (end == "else") { elseBody = ParseBody(out _, "endfor"); ExpectEnd(); }
        return new ForNode(targets, items, filter, body, elseBody);
    }

    private SetNode ParseSet()
    {
        string name = ExpectName();
        string? attr = Accept(".") ? ExpectName() : null;
        if (!Accept("=")) throw Error("only '{% set name = value %}' is supported");
        var value = ParseExpression();
        ExpectEnd();
        return new SetNode(name, attr, value);
    }

    private MacroNode ParseMacro()
    {
        string name = ExpectName();
        Expect("(");
        var parameters = new List<(string, Expr?)>();
        while (!Accept(")"))
        {
            string p = ExpectName();
            parameters.Add((p, Accept("=") ? ParseExpression() : null));
            if (!Peek.Is(")")) Expect(",");
        }
        ExpectEnd();
        var body = ParseBody(out _, "endmacro");
        ExpectEnd();
        return new MacroNode(name, parameters, body);
    }

    // ---- expressions ----

    private Expr ParseExpression() => ParseOr(allowConditional: true);

    private Expr ParseOr(bool allowConditional)
    {
        var e = ParseBinary(0);
        if (allowConditional && Peek.IsName("if"))
        {
            _pos++;
            var cond = ParseOr(false);
            Expr? otherwise = null;
            if (Peek.IsName("else")) { _pos++; otherwise = ParseOr(true); }
            return new ConditionalExpr(cond, e, otherwise);
        }
        return e;
    }

    private static readonly string[][] Levels =
    [
        ["or"], ["and"], ["not"], ["==", "!=", "<", ">", "<=", ">=", "in", "not in"], ["+", "-"], ["~"], ["*", "/", "//", "%"], ["**"],
    ];

    private Expr ParseBinary(int level)
    {
        if (level == Levels.Length) return ParseUnary();
        if (level == 2) // not
        {
            if (Peek.IsName("not")) { _pos++; return new UnaryExpr("not", ParseBinary(level)); }
            return ParseBinary(level + 1);
        }
        var left = ParseBinary(level + 1);
        while (true)
        {
            string? op = MatchOperator(Levels[level]);
            if (op == null) return left;
            var right = ParseBinary(level + 1);
            left = new BinaryExpr(op, left, right);
        }
    }

    private string? MatchOperator(string[] ops)
    {
        var t = Peek;
        foreach (var op in ops)
        {
            if (op == "not in")
            {
                if (t.IsName("not") && _pos + 1 < _tokens.Count && _tokens[_pos + 1].IsName("in")) { _pos += 2; return op; }
                continue;
            }
            if ((char.IsLetter(op[0]) ? t.IsName(op) : t.Is(op))) { _pos++; return op; }
        }
        return null;
    }

    private Expr ParseUnary()
    {
        if (Peek.Is("-")) { _pos++; return new UnaryExpr("-", ParseUnary()); }
        if (Peek.Is("+")) { _pos++; return ParseUnary(); }
        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.String:
                string s = (string)t.Value!;
                while (Peek.Kind == TokenKind.String) s += (string)Next().Value!; // adjacent literals concatenate
                return new LiteralExpr(s);
            case TokenKind.Integer:
            case TokenKind.Float: return new LiteralExpr(t.Value);
            case TokenKind.Name:
                return t.Text switch
                {
                    "true" or "True" => new LiteralExpr(true),
                    "false" or "False" => new LiteralExpr(false),
                    "none" or "None" => new LiteralExpr(null),
                    _ => new NameExpr(t.Text),
                };
        }
        if (t.Is("("))
        {
            var first = ParseExpression();
            if (Accept(")")) return first;
            var items = new List<Expr> { first };
            while (Accept(",") && !Peek.Is(")")) items.Add(ParseExpression());
            Expect(")");
            return new ListExpr(items); // a tuple behaves as a list here
        }
        if (t.Is("["))
        {
            var items = new List<Expr>();
            while (!Accept("]"))
            {
                items.Add(ParseExpression());
                if (!Peek.Is("]")) Expect(",");
            }
            return new ListExpr(items);
        }
        if (t.Is("{"))
        {
            var items = new List<(Expr, Expr)>();
            while (!Accept("}"))
            {
                var k = ParseExpression();
                Expect(":");
                items.Add((k, ParseExpression()));
                if (!Peek.Is("}")) Expect(",");
            }
            return new DictExpr(items);
        }
        throw Error($"unexpected '{t.Text}'");
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            if (Accept(".")) { e = new AttributeExpr(e, ExpectNameOrInteger()); continue; }
            if (Accept("["))
            {
                Expr? start = Peek.Is(":") ? null : ParseExpression();
                if (Accept("]")) { e = new IndexExpr(e, start!); continue; }
                Expect(":");
                Expr? stop = Peek.Is(":") || Peek.Is("]") ? null : ParseExpression();
                Expr? step = null;
                if (Accept(":") && !Peek.Is("]")) step = ParseExpression();
                Expect("]");
                e = new SliceExpr(e, start, stop, step);
                continue;
            }
            if (Peek.Is("(")) { var (a, k) = ParseArguments(); e = new CallExpr(e, a, k); continue; }
            return e;
        }
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            if (Accept("|"))
            {
                string name = ExpectName();
                while (Accept(".")) name += "." + ExpectName();
                var (a, k) = Peek.Is("(") ? ParseArguments() : (new List<Expr>(), new List<(string, Expr)>());
                e = new FilterExpr(e, name, a, k);
                continue;
            }
            if (Peek.IsName("is"))
            {
                _pos++;
                bool negated = false;
                if (Peek.IsName("not")) { _pos++; negated = true; }
                var t = Next();
                string name = t.Kind == TokenKind.Name ? t.Text : t.Kind == TokenKind.Operator && t.Text is "==" or "!=" or "<" or ">" or "<=" or ">=" ? t.Text
                    : throw Error($"expected a test name after 'is', got '{t.Text}'");
                var args = new List<Expr>();
                if (Peek.Is("(")) args = ParseArguments().Args;
                else if (Peek.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float || (Peek.Kind == TokenKind.Name && !IsKeyword(Peek.Text)))
                    args.Add(ParsePostfix(ParsePrimary()));
                e = new TestExpr(e, name, negated, args);
                continue;
            }
            return e;
        }
    }

    private static bool IsKeyword(string s) => s is "and" or "or" or "not" or "in" or "is" or "if" or "else";

    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        Expect("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Accept(")"))
        {
            if (Peek.Kind == TokenKind.Name && _pos + 1 < _tokens.Count && _tokens[_pos + 1].Is("="))
            {
                string name = Next().Text;
                _pos++;
                kwargs.Add((name, ParseExpression()));
            }
            else args.Add(ParseExpression());
            if (!Peek.Is(")")) Expect(",");
        }
        return (args, kwargs);
    }

    // ---- token helpers ----

    private TemplateToken Peek => _tokens[_pos];
    private TemplateToken Next() => _pos < _tokens.Count - 1 ? _tokens[_pos++] : _tokens[_pos];
    private bool Accept(string op) { if (Peek.Is(op)) { _pos++; return true; } return false; }
    private void Expect(string op) { if (!Accept(op)) throw Error($"expected '{op}', got '{Peek.Text}'"); }
    private void ExpectEnd() { if (Peek.Kind != TokenKind.End) throw Error($"unexpected '{Peek.Text}'"); }

    private string ExpectName()
    {
        var t = Next();
        return t.Kind == TokenKind.Name ? t.Text : throw Error($"expected a name, got '{t.Text}'");
    }

    private string ExpectNameOrInteger()
    {
        var t = Next();
        return t.Kind is TokenKind.Name or TokenKind.Integer ? t.Text : throw Error($"expected an attribute name, got '{t.Text}'");
    }

    private QmoeException Error(string message)
    {
        int at = _seg > 0 && _seg <= _segments.Count ? _segments[_seg - 1].Position : 0;
        return new QmoeException($"chat template: {message} (near offset {at})");
    }
}
