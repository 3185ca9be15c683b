using Google.Protobuf;

namespace Qmoe.Text;

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto) that unigram encoding needs:
/// the pieces with their scores and types, the special ids, and the normalizer spec.
/// </summary>
internal sealed class SentencePieceModel
{
    /// <summary>ModelProto.SentencePiece.Type.</summary>
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public readonly record struct Piece(string Text, float Score, PieceType Type);

    public List<Piece> Pieces { get; } = [];
    public int ModelType { get; private set; } = 1; // 1 = UNIGRAM (the proto's default)
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public string UnkSurface { get; private set; } = " \u2047 ";
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

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
