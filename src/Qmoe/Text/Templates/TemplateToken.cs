namespace Qmoe.Text.Templates;

public enum TokenKind { Name, String, Integer, Float, Operator, End }

/// <summary>A token inside a tag: a name, a literal, or an operator/punctuation (<c>==</c>, <c>(</c>, <c>|</c>, ...).</summary>
public readonly record struct TemplateToken(TokenKind Kind, string Text, object? Value = null)
{
    public bool Is(string op) => Kind == TokenKind.Operator && Text == op;
    public bool IsName(string name) => Kind == TokenKind.Name && Text == name;
}
