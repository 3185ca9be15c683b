namespace Qmoe.Text;

/// <summary>
/// A tokenizer with a checkpoint's <see cref="TokenizerSettings"/> applied: bos/eos/pad/unk named by the config
/// (resolved to ids by the tokenizer's own lookup), generation's eos list added to <see cref="SpecialTokens.Eos"/>,
/// and — where the config says add_bos_token / add_eos_token — encoding with special tokens is exactly
/// [bos] + text + [eos] as those flags say (as transformers' Llama tokenizers rebuild their post-processor).
/// </summary>
public sealed class ConfiguredTokenizer : ITokenizer
{
    /// <summary>The tokenizer underneath.</summary>
    public ITokenizer Inner { get; }
    private readonly bool? _addBos, _addEos;

    public string Kind => Inner.Kind;
    public int VocabSize => Inner.VocabSize;
    public SpecialTokens Special { get; }

    /// <param name="inner">the tokenizer read from the tokenizer file</param>
    /// <param name="settings">the checkpoint's settings</param>
    /// <param name="tokenId">id of a token's text in <paramref name="inner"/>, or null</param>
    /// <param name="source">the directory, for messages</param>
    public ConfiguredTokenizer(ITokenizer inner, TokenizerSettings settings, Func<string, int?> tokenId, string source)
    {
        Inner = inner;
        int? Resolve(string? token, int? own, string field)
        {
            if (token == null) return own;
            foreach (var (id, added) in settings.AddedTokens) if (added.Content == token) return id;
            return tokenId(token) ?? throw new QmoeException($"{source}: {TokenizerSettings.TokenizerConfigFile} {field} '{token}' is not a token of the vocabulary");
        }
        var s = inner.Special;
        int? bos = Resolve(settings.BosToken, s.Bos, "bos_token") ?? settings.GenerationBos;
        int? eos = Resolve(settings.EosToken, s.Eos.Count > 0 ? s.Eos[0] : null, "eos_token");
        var eosList = new List<int>();
        if (eos is int e) eosList.Add(e);
        foreach (int id in s.Eos.Concat(settings.GenerationEos)) if (!eosList.Contains(id)) eosList.Add(id);
        Special = new SpecialTokens(bos, eosList, Resolve(settings.PadToken, s.Pad, "pad_token"), Resolve(settings.UnkToken, s.Unk, "unk_token"));
        foreach (int? id in (int?[])[Special.Bos, Special.Pad, Special.Unk, .. eosList])
            if (id is int i && (uint)i >= (uint)VocabSize)
                throw new QmoeException($"{source}: special token id {i} is outside the tokenizer's vocabulary [0, {VocabSize})");
        _addBos = settings.AddBos;
        _addEos = settings.AddEos;
        if (_addBos == true && bos == null) throw new QmoeException($"{source}: {TokenizerSettings.TokenizerConfigFile} sets add_bos_token but there is no bos token");
        if (_addEos == true && eos == null) throw new QmoeException($"{source}: {TokenizerSettings.TokenizerConfigFile} sets add_eos_token but there is no eos token");
    }

    public int[] Encode(string text, bool addSpecialTokens)
    {
        if (!addSpecialTokens || (_addBos == null && _addEos == null)) return Inner.Encode(text, addSpecialTokens);
        int[] body = Inner.Encode(text, addSpecialTokens: false);
        bool bos = _addBos == true, eos = _addEos == true;
        if (!bos && !eos) return body;
        var ids = new int[body.Length + (bos ? 1 : 0) + (eos ? 1 : 0)];
        if (bos) ids[0] = Special.Bos!.Value;
        body.CopyTo(ids, bos ? 1 : 0);
        if (eos) ids[^1] = Special.Eos[0];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true) => Inner.Decode(ids, skipSpecialTokens);
}
