using System.Threading.Channels;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>The text of one generation, why it ended ("stop": eos or a stop string; "length"), and token counts.</summary>
public sealed record TextGenerationResult(string Text, string FinishReason, int PromptTokens, int CompletionTokens);

/// <summary>
/// Runs one prompt through a <see cref="BatchScheduler"/> and turns the ids into text deltas (stop strings applied,
/// see <see cref="TextStreamer"/>). Leaving early (a stop string, cancellation) cancels the request, which frees its
/// batch slot before the next step. Shared by the HTTP server and the IChatClient.
/// </summary>
public static class TextGeneration
{
    public static async Task<TextGenerationResult> RunAsync(BatchScheduler scheduler, ITokenizer tokenizer, IReadOnlyCollection<int> eosIds,
        int[] prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlyList<string> stops, Func<string, Task>? onDelta, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var g = scheduler.Submit(prompt, maxNewTokens, sampling, eosIds, stop.Token);
        var streamer = new TextStreamer(tokenizer, stops);
        try
        {
            if (onDelta == null && stops.Count == 0)
            {
                // Nothing to stream and no stop string to watch: wait for the end rather than wake for every token
                // (a thread-pool hop per token, which took a core from the decode steps of a 2-core server).
                foreach (var id in await g.ReadAllAsync(cancel)) streamer.Push(id);
            }
            else
                await foreach (var id in g.Tokens.ReadAllAsync(cancel))
                {
                    var delta = streamer.Push(id);
                    if (delta.Length > 0 && onDelta != null) await onDelta(delta);
                    if (streamer.Stopped) break;
                }
        }
        catch (ChannelClosedException e) when (e.InnerException != null) { throw e.InnerException; }
        finally { stop.Cancel(); }
        if (!streamer.Stopped)
        {
            var rest = streamer.Flush();
            if (rest.Length > 0 && onDelta != null) await onDelta(rest);
        }
        string finish = streamer.Stopped || g.Finish == FinishReason.Stop ? "stop" : "length";
        return new TextGenerationResult(streamer.Text, finish, prompt.Length, streamer.TokenCount);
    }
}
