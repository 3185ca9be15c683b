using System.Threading.Channels;

namespace Qmoe.Runtime;

/// <summary>Why a generation ended: an eos id ("stop"), the token limit ("length"), or the client went away.</summary>
public enum FinishReason { Stop, Length, Cancelled }

/// <summary>
/// One request inside a <see cref="BatchScheduler"/>: its generated ids arrive on <see cref="Tokens"/> as they are
/// decoded (eos ids are not written); the channel completes when the request finishes, with the scheduler's error
/// if it failed. Cancelling the token given at submission frees the request's batch slot before the next step.
/// </summary>
public sealed class GenerationStream
{
    private readonly Channel<int> _channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal GenerationStream(int[] prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlyCollection<int> stopIds, CancellationToken cancel)
    {
        Prompt = prompt; MaxNewTokens = maxNewTokens; Sampler = new TokenSampler(sampling); StopIds = stopIds; Cancel = cancel;
    }

    public int[] Prompt { get; }
    /// <summary>The request's token limit after clamping to the model's context.</summary>
    public int MaxNewTokens { get; }
    public ChannelReader<int> Tokens => _channel.Reader;
    /// <summary>Completes when the request finishes, all its ids written to <see cref="Tokens"/> (whose completion,
    /// once they are read, carries the scheduler's error if it failed): for a caller that wants the ids only at the end
    /// and not a wake-up per id.</summary>
    public Task Finished => _finished.Task;
    /// <summary>Set before <see cref="Tokens"/> completes.</summary>
    public FinishReason Finish { get; private set; }
    public int Generated { get; private set; }

    internal TokenSampler Sampler { get; }
    internal IReadOnlyCollection<int> StopIds { get; }
    internal CancellationToken Cancel { get; }
    internal IDecodeState? State { get; set; }
    internal int LastToken { get; private set; }
    internal long EnqueuedTicks { get; } = Environment.TickCount64;

    /// <summary>Records a sampled id; returns true when the request is finished.</summary>
    internal bool Accept(int id)
    {
        if (StopIds.Contains(id)) { Complete(FinishReason.Stop); return true; }
        Generated++;
        LastToken = id;
        _channel.Writer.TryWrite(id);
        if (Generated >= MaxNewTokens) { Complete(FinishReason.Length); return true; }
        return false;
    }

    internal void Complete(FinishReason reason)
    {
        Finish = reason;
        State = null;
        _channel.Writer.TryComplete();
        _finished.TrySetResult();
    }

    internal void Fail(Exception e)
    {
        State = null;
        _channel.Writer.TryComplete(e);
        _finished.TrySetResult();
    }

    /// <summary>All generated ids (waits for the end); throws the scheduler's error if the request failed.</summary>
    public async Task<int[]> ReadAllAsync(CancellationToken cancel = default)
    {
        await Finished.WaitAsync(cancel);
        var ids = new List<int>();
        while (Tokens.TryRead(out var id)) ids.Add(id);
        await Tokens.Completion; // drained: rethrows the scheduler's error
        return ids.ToArray();
    }
}
