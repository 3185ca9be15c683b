namespace Qmoe.Kernels;

/// <summary>
/// The dictionary re-laid out for kernels whose work follows the nonzero trits (built at load from
/// <see cref="DecodeTable"/>; the file format is unchanged). One 64-bit entry per codeword:
/// bytes 0..<see cref="Slots"/>-1 are slots, byte 6 is 3 × the codeword's length in weights, byte 7 the number of
/// its nonzero trits past the slots. Slot i describes the codeword's i-th nonzero weight k with trit t as the unit offset
/// <c>3k + 2 − t</c> into the kernel's workspace, which holds per weight position j three units <c>[0, x_j, 0]</c>
/// (a unit = one float per batch vector): two units read at <c>3k + 1</c> give (x_k, 0), i.e. x lands in the
/// min half of a [min sums | max sums] accumulator (trit 1); at <c>3k</c> they give (0, x_k), the max half
/// (trit 2); unused slots hold 2, which reads (0, 0). So every slot is one load and one add, without branches;
/// the row's two sums are scaled by (min, max) once at the row end. Codewords with more than
/// <see cref="Slots"/> nonzeros keep the rest in <see cref="Overflow"/> from <see cref="OverflowStart"/>[code]
/// (the default dictionaries have none: their entries hold at most ~5 nonzeros).
/// </summary>
public sealed class NonzeroTable
{
    /// <summary>Nonzeros handled in the entry itself (the fixed work per codeword; measured in docs/KERNELS.md).</summary>
    public const int Slots = 4;
    /// <summary>Byte of an entry holding 3 × the codeword's length in weights.</summary>
    public const int AdvanceByte = 6;
    /// <summary>Byte of an entry holding how many of the codeword's nonzeros are past its <see cref="Slots"/> slots
    /// (listed in <see cref="Overflow"/>; 0 for nearly every codeword, so a row loop ORs these to learn whether any
    /// of its codewords has more).</summary>
    public const int ExtraByte = 7;
    /// <summary>Slot value of an unused slot: reads two zero units.</summary>
    public const byte Empty = 2;

    /// <summary>An entry that covers no weights and holds no nonzeros (every slot <see cref="Empty"/>): what a kernel
    /// reads in place of a codeword past a row's end, so a row's last step needs no branch on its parity.</summary>
    public const ulong EmptyEntry = 0x0000_0202_0202_0202;

    /// <summary>[65536] entries as described above.</summary>
    public ulong[] Entries { get; }
    /// <summary>Slots beyond <see cref="Slots"/> of codewords with more nonzeros, codeword after codeword.</summary>
    public byte[] Overflow { get; }
    /// <summary>[65536] start of each codeword's overflow slots in <see cref="Overflow"/> (0 when it has none).</summary>
    public int[] OverflowStart { get; }

    private NonzeroTable(ulong[] entries, byte[] overflow, int[] overflowStart)
    {
        Entries = entries; Overflow = overflow; OverflowStart = overflowStart;
    }

    /// <summary>Slot value of weight k (0..27) with nonzero trit t (1 = min, 2 = max).</summary>
    public static byte Slot(int k, int t) => (byte)(3 * k + 2 - t);

    public static NonzeroTable From(DecodeTable table)
    {
        var entries = new ulong[DecodeTable.Size];
        var overflowStart = new int[DecodeTable.Size];
        var overflow = new List<byte>();
        Span<byte> slots = stackalloc byte[DecodeTable.MaxWeights];
        for (int c = 0; c < DecodeTable.Size; c++)
        {
            ulong d = table.Entries[c];
            int weights = (int)(d >> DecodeTable.LengthShift);
            int count = 0;
            for (int k = 0; k < weights; k++)
                if ((int)((d >> (2 * k)) & 3) is var t && t != 0) slots[count++] = Slot(k, t);
            ulong e = (ulong)(3 * weights) << (8 * AdvanceByte) | (ulong)Math.Max(0, count - Slots) << (8 * ExtraByte);
            for (int i = 0; i < Slots; i++) e |= (ulong)(i < count ? slots[i] : Empty) << (8 * i);
            for (int i = Slots; i < AdvanceByte; i++) e |= (ulong)Empty << (8 * i);
            if (count > Slots)
            {
                overflowStart[c] = overflow.Count;
                for (int i = Slots; i < count; i++) overflow.Add(slots[i]);
            }
            entries[c] = e;
        }
        overflow.Add(Empty); // never empty, so a pointer to it can always be taken
        return new NonzeroTable(entries, overflow.ToArray(), overflowStart);
    }
}
