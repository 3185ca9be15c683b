using Qmoe.Runtime;

namespace Qmoe.Server;

/// <summary>Runs one request of the server through <see cref="TextGeneration"/>; a prompt the model cannot take is a 422.</summary>
public static class GenerationRun
{
    public static async Task<TextGenerationResult> RunAsync(ServedModel m, int[] prompt, GenerationRequest req,
        Func<string, Task>? onDelta, CancellationToken cancel)
    {
        try
        {
            return await TextGeneration.RunAsync(m.Scheduler, m.Model.Tokenizer, m.Model.EosIds, prompt, req.MaxTokens, req.Sampling, req.Stop, onDelta, cancel);
        }
        catch (QmoeException e) { throw ApiError.Unprocessable(e.Message); }
    }
}
