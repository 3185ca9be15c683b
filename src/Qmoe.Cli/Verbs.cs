using System.CommandLine;

namespace Qmoe.Cli;

/// <summary>The table of CLI verbs (SPEC §1). Add a verb here and in its own file under Verbs/.</summary>
internal static class Verbs
{
    public static IEnumerable<Command> All() => new Command[]
    {
        DemoVerb.Create(),
        EvalVerb.Create(),
        GenerateVerb.Create(),
        CompressVerb.Create(),
        BenchVerb.Create(),
        InspectVerb.Create(),
        VerifyVerb.Create(),
        SynthVerb.Create(),
        TokenizeVerb.Create(),
    };
}
