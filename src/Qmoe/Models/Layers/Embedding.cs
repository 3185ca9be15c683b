namespace Qmoe.Models.Layers;

/// <summary>Token embedding lookup shared by every family: rows of the table [vocab, d] (f32 or bf16), ids checked.</summary>
public static class Embedding
{
    /// <summary>h [ids.Length, table.Cols] = table[ids]; an id outside [0, table.Rows) is refused.</summary>
    public static float[] Lookup(Matrix table, ReadOnlySpan<int> ids)
    {
        int d = table.Cols;
        var h = new float[ids.Length * d];
        var row = new float[d];
        for (int t = 0; t < ids.Length; t++)
        {
            int id = ids[t];
            if ((uint)id >= (uint)table.Rows)
                throw new QmoeException($"token id {id} at position {t} is outside the vocabulary [0, {table.Rows})");
            table.Row(id, row).CopyTo(h.AsSpan(t * d, d));
        }
        return h;
    }
}
