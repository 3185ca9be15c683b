namespace Qmoe;

/// <summary>
/// The most a method may <c>stackalloc</c>. Buffers sized by a file (a matrix's cols, a config's head_dim) are
/// stack-allocated only below this bound and come from the heap above it, so no input can overflow the stack.
/// </summary>
public static class StackLimits
{
    public const int MaxBytes = 4096;
}
