using Google.Protobuf;

namespace Qmoe.Text;

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto) that encoding needs: the pieces
/// with their scores and types, the model type (unigram or BPE), the special ids, and the normalizer spec.
/// </summary>
internal sealed class SentencePieceModel
{
    /// <summary>ModelProto.SentencePiece.Type.</summary>
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public readonly record struct Piece(string Text, float Score, PieceType Type);

    public List<Piece> Pieces { get; } = [];
    /// <summary>TrainerSpec.ModelType values this reader encodes.</summary>
    public const int Unigram = 1, Bpe = 2;

    public int ModelType { get; private set; } = Unigram; // the proto's default
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    /// <summary>A trainer option: digits were split while training; encoding needs nothing more (no multi-digit piece exists).</summary>
    public bool SplitDigits { get; private set; }
    public string UnkSurface { get; private set; } = " \u2047 ";
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <summary>
    /// Reads and checks a <c>.model</c> file: a truncated or corrupt file, an unsupported model type, no unknown
    /// piece or duplicate pieces give a one-line <see cref="QmoeException"/> naming the file.
    /// </summary>
    public static SentencePieceModel Load(string path)
    {
        if (!File.Exists(path)) throw new QmoeException($"{path}: tokenizer model not found");
        long size = new FileInfo(path).Length;
        if (size > MaxFileBytes) throw new QmoeException($"{path}: {size} bytes, larger than any SentencePiece model ({MaxFileBytes} bytes at most)");
        return FromBytes(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses and checks the bytes of a <c>.model</c> file; <paramref name="source"/> names it in errors.</summary>
    public static SentencePieceModel FromBytes(byte[] bytes, string source)
    {
        SentencePieceModel model;
        try { model = Parse(bytes); }
        catch (Exception e) when (e is InvalidProtocolBufferException or FormatException or ArgumentException)
        { throw new QmoeException($"{source}: not a SentencePiece model ({e.Message.ReplaceLineEndings(" ")})"); }
        string? defect = model.Check();
        if (defect != null) throw new QmoeException($"{source}: {defect}");
        return model;
    }

    /// <summary>Largest accepted file (real models are under 10 MB; 256k-piece ones about 5 MB).</summary>
    public const long MaxFileBytes = 256L << 20;

    /// <summary>Why the model cannot be encoded with, or null.</summary>
    private string? Check()
    {
        if (Pieces.Count == 0) return "no pieces";
        if (ModelType is not (Unigram or Bpe)) return $"trainer_spec.model_type {ModelType} is not supported (unigram 1, bpe 2)";
        int unknowns = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int id = 0; id < Pieces.Count; id++)
        {
            var p = Pieces[id];
            if (p.Type is < PieceType.Normal or > PieceType.Byte) return $"piece {id} has type {(int)p.Type}, not a SentencePiece piece type";
            if (p.Text.Length == 0) return $"piece {id} is empty";
            if (!seen.Add(p.Text)) return $"piece {id} '{p.Text}' is defined twice";
            if (p.Type == PieceType.Unknown) { unknowns++; UnkId = id; }
            if (p.Type == PieceType.Byte && !ByteFallback) return $"piece {id} is a byte piece but trainer_spec.byte_fallback is off";
        }
        if (unknowns != 1) return $"{unknowns} unknown pieces, need exactly one";
        // bos/eos/pad are the trainer spec's ids where they name a control (or user-defined) piece, else absent.
        BosId = SpecialPiece(BosId); EosId = SpecialPiece(EosId); PadId = SpecialPiece(PadId);
        return null;

        int SpecialPiece(int id) =>
            (uint)id < (uint)Pieces.Count && Pieces[id].Type is PieceType.Control or PieceType.UserDefined ? id : -1;
    }

    /// <summary>Parses a serialized ModelProto; throws <see cref="InvalidProtocolBufferException"/> on malformed bytes.</summary>
    public static SentencePieceModel Parse(byte[] bytes)
    {
        var model = new SentencePieceModel();
        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: model.Pieces.Add(ParsePiece(input.ReadBytes())); break;
                case 2: model.ParseTrainerSpec(input.ReadBytes()); break;
                case 3: model.ParseNormalizerSpec(input.ReadBytes()); break;
                default: input.SkipLastField(); break;
            }
        }
        return model;
    }

    private static Piece ParsePiece(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string text = ""; float score = 0; var type = PieceType.Normal;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: text = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = (PieceType)input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        return new Piece(text, score, type);
    }

    private void ParseTrainerSpec(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 3: ModelType = input.ReadEnum(); break;
                case 24: TreatWhitespaceAsSuffix = input.ReadBool(); break;
                case 25: SplitDigits = input.ReadBool(); break;
                case 35: ByteFallback = input.ReadBool(); break;
                case 40: UnkId = input.ReadInt32(); break;
                case 41: BosId = input.ReadInt32(); break;
                case 42: EosId = input.ReadInt32(); break;
                case 43: PadId = input.ReadInt32(); break;
                case 44: UnkSurface = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private void ParseNormalizerSpec(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: NormalizerName = input.ReadString(); break;
                case 2: PrecompiledCharsMap = input.ReadBytes().ToByteArray(); break;
                case 3: AddDummyPrefix = input.ReadBool(); break;
                case 4: RemoveExtraWhitespaces = input.ReadBool(); break;
                case 5: EscapeWhitespaces = input.ReadBool(); break;
                default: input.SkipLastField(); break;
            }
        }
    }
}
