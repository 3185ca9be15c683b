namespace Qmoe.Kernels;

/// <summary>
/// The dictionary re-laid out for kernels whose work follows the nonzero trits (built at load from
/// <see cref="DecodeTable"/>; the file format is unchanged). One 64-bit entry per codeword:
/// bytes 0..5 hold the slots of its first <see cref="Slots"/> nonzeros (the rest read as empty), byte 6 is 3 × the codeword's length in weights, byte 7 the number of
/// its nonzero trits past the slots. Slot i describes the codeword's i-th nonzero weight k with trit t as the unit offset
/// <c>3k + 2 − t</c> into the kernel's workspace, which holds per weight position j three units <c>[0, x_j, 0]</c>
/// (a unit = one float per batch vector): two units read at <c>3k + 1</c> give (x_k, 0), i.e. x lands in the
/// min half of a [min sums | max sums] accumulator (trit 1); at <c>3k</c> they give (0, x_k), the max half
/// (trit 2); unused slots hold 2, which reads (0, 0). So every slot is one load and one add, without branches;
/// the row's two sums are scaled by (min, max) once at the row end. Codewords with more than
/// <see cref="Slots"/> nonzeros keep the rest in <see cref="Overflow"/> from <see cref="OverflowStart"/>[code]
/// (rare with 4 slots for dictionaries fitted for ~85% zeros; 5 slots suit those fitted for fewer zeros).
/// </summary>
public sealed class NonzeroTable
{
    /// <summary>Most slots an entry holds (bytes 0..5).</summary>
    public const int MaxSlots = 6;
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
    /// <summary>Nonzeros handled in the entry itself (4 or 5): the fixed work per codeword (docs/KERNELS.md).</summary>
    public int Slots { get; }
    /// <summary>Slots beyond <see cref="Slots"/> of codewords with more nonzeros, codeword after codeword.</summary>
    public byte[] Overflow { get; }
    /// <summary>[65536] start of each codeword's overflow slots in <see cref="Overflow"/> (0 when it has none).</summary>
    public int[] OverflowStart { get; }

    private NonzeroTable(int slots, ulong[] entries, byte[] overflow, int[] overflowStart)
    {
        Slots = slots; Entries = entries; Overflow = overflow; OverflowStart = overflowStart;
    }

    /// <summary>Slot value of weight k (0..27) with nonzero trit t (1 = min, 2 = max).</summary>
    public static byte Slot(int k, int t) => (byte)(3 * k + 2 - t);

    /// <summary>Share of codewords with more than 4 nonzeros above which <see cref="PreferredSlots"/> picks 5: one more
    /// load and add per codeword against a second walk of every row that holds such a codeword. Measured (one thread,
    /// AVX-512; docs/KERNELS.md) on compressed qwen3-moe-tiny, 13% such codewords: 5 slots 17-19% faster at batch 2,
    /// 8-10% at 4, 2-4% at 8; on mixtral-tiny-8, 3.4%: 5-15% faster at batch 2 but 3-7% slower at 8.</summary>
    public const double FiveSlotShare = 0.05;

    /// <summary>How many of <paramref name="codes"/> are codewords with more than 4 nonzeros.</summary>
    public static long CountDense(DecodeTable table, ReadOnlySpan<ushort> codes)
    {
        long dense = 0;
        foreach (var code in codes)
        {
            ulong trits = table.Entries[code] & ((1UL << DecodeTable.LengthShift) - 1);
            if (System.Numerics.BitOperations.PopCount((trits | trits >> 1) & 0x5555_5555_5555_5555UL) > 4) dense++;
        }
        return dense;
    }

    /// <summary>4 or 5: the slots that suit a model of whose <paramref name="sampled"/> sampled codewords
    /// <paramref name="dense"/> hold more than 4 nonzeros (<see cref="CountDense"/>).</summary>
    public static int PreferredSlots(long dense, long sampled) => dense > FiveSlotShare * sampled ? 5 : 4;

    /// <summary>The table of <paramref name="table"/>'s codewords with <paramref name="slots"/> slots per entry.</summary>
    /// <param name="table">the dictionary's decode table</param>
    /// <param name="slots">slots per entry: 4 or 5</param>
    public static NonzeroTable From(DecodeTable table, int slots = 4)
    {
        if (slots is not (4 or 5)) throw new ArgumentOutOfRangeException(nameof(slots), slots, "4 or 5 slots");
        var entries = new ulong[DecodeTable.Size];
        var overflowStart = new int[DecodeTable.Size];
        var overflow = new List<byte>();
        Span<byte> nonzeros = stackalloc byte[DecodeTable.MaxWeights];
        for (int c = 0; c < DecodeTable.Size; c++)
        {
            ulong d = table.Entries[c];
            int weights = (int)(d >> DecodeTable.LengthShift);
            int count = 0;
            for (int k = 0; k < weights; k++)
                if ((int)((d >> (2 * k)) & 3) is var t && t != 0) nonzeros[count++] = Slot(k, t);
            ulong e = (ulong)(3 * weights) << (8 * AdvanceByte) | (ulong)Math.Max(0, count - slots) << (8 * ExtraByte);
            for (int i = 0; i < MaxSlots; i++) e |= (ulong)(i < Math.Min(count, slots) ? nonzeros[i] : Empty) << (8 * i);
            if (count > slots)
            {
                overflowStart[c] = overflow.Count;
                for (int i = slots; i < count; i++) overflow.Add(nonzeros[i]);
            }
            entries[c] = e;
        }
        overflow.Add(Empty); // never empty, so a pointer to it can always be taken
        return new NonzeroTable(slots, entries, overflow.ToArray(), overflowStart);
    }
}
