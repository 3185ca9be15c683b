namespace Qmoe.Text.Templates;

// The syntax tree of a template: statements (nodes) and expressions.

public abstract record Node;
public sealed record TextNode(string Text) : Node;
public sealed record OutputNode(Expr Value) : Node;
public sealed record IfNode(IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node>? Else) : Node;
/// <summary><c>{% for a, b in items if cond %} ... {% else %} ... {% endfor %}</c></summary>
public sealed record ForNode(IReadOnlyList<string> Targets, Expr Items, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node>? Else) : Node;
/// <summary><c>{% set name = v %}</c> or <c>{% set ns.attr = v %}</c> (<see cref="Attribute"/> non-null).</summary>
public sealed record SetNode(string Name, string? Attribute, Expr Value) : Node;
/// <summary><c>{% macro name(params) %} ... {% endmacro %}</c>; defaults per parameter (null = required).</summary>
public sealed record MacroNode(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Node> Body) : Node;

public abstract record Expr;
public sealed record LiteralExpr(object? Value) : Expr;
public sealed record NameExpr(string Name) : Expr;
public sealed record AttributeExpr(Expr Target, string Name) : Expr;
public sealed record IndexExpr(Expr Target, Expr Index) : Expr;
public sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr;
public sealed record CallExpr(Expr Target, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr;
public sealed record FilterExpr(Expr Target, string Name, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr;
public sealed record TestExpr(Expr Target, string Name, bool Negated, IReadOnlyList<Expr> Args) : Expr;
public sealed record UnaryExpr(string Operator, Expr Operand) : Expr;
public sealed record BinaryExpr(string Operator, Expr Left, Expr Right) : Expr;
public sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else) : Expr;
public sealed record ListExpr(IReadOnlyList<Expr> Items) : Expr;
public sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr;
