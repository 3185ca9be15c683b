namespace Qmoe.Text;

/// <summary>One turn of a conversation: role ("system", "user", "assistant", ...) and its text.</summary>
public sealed record ChatMessage(string Role, string Content);
