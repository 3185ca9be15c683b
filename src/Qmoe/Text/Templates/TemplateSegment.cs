namespace Qmoe.Text.Templates;

/// <summary>What a piece of template source is: literal text, <c>{{ expression }}</c>, <c>{% statement %}</c> or <c>{# comment #}</c>.</summary>
public enum SegmentKind { Text, Output, Statement, Comment }

/// <summary>
/// One piece of template source after whitespace control: <see cref="Content"/> is the text, or the inside of the tag
/// without its delimiters and <c>-</c>/<c>+</c> markers. <see cref="Position"/> is its offset in the source (errors).
/// </summary>
public sealed record TemplateSegment(SegmentKind Kind, string Content, int Position);
