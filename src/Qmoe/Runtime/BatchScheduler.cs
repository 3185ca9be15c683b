using System.Collections.Concurrent;

namespace Qmoe.Runtime;

/// <summary>
/// Continuous batching over an <see cref="IBatchDecoder"/>: requests queue; between decode steps the scheduler
/// admits queued requests (each prompt prefilled alone, up to <see cref="MaxBatch"/> active sequences) and drops
/// finished or cancelled ones; each step feeds every active sequence its last token as one batch. One thread
/// drives the model, so the model is never entered concurrently.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly IBatchDecoder _decoder;
    private readonly ConcurrentQueue<GenerationStream> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _submitted, _completed, _failed, _tokens, _steps, _stepSlots;

    public int MaxBatch { get; }
    /// <summary>Requests waiting to join the batch.</summary>
    public int QueueDepth => _queue.Count;
    /// <summary>Sequences in the batch now.</summary>
    public int Active { get; private set; }
    public long Submitted => Interlocked.Read(ref _submitted);
    public long Completed => Interlocked.Read(ref _completed);
    public long Failed => Interlocked.Read(ref _failed);
    /// <summary>Tokens generated in all (prefill first tokens and step tokens).</summary>
    public long TokensGenerated => Interlocked.Read(ref _tokens);
    public long Steps => Interlocked.Read(ref _steps);
    /// <summary>Σ sequences per step: with <see cref="Steps"/>, the mean batch occupancy.</summary>
    public long StepSlots => Interlocked.Read(ref _stepSlots);

    public BatchScheduler(IBatchDecoder decoder, int maxBatch)
    {
        if (maxBatch < 1 || maxBatch > 256) throw new QmoeException($"--max-batch {maxBatch} must be in [1, 256]");
        _decoder = decoder;
        MaxBatch = maxBatch;
        _thread = new Thread(Loop) { IsBackground = true, Name = "qmoe-batch-scheduler" };
        _thread.Start();
    }

    /// <summary>
    /// Queues a request. <paramref name="maxNewTokens"/> is clamped to the model's context (a prompt that leaves no
    /// room is refused here, with a QmoeException); generation ends at an id in <paramref name="stopIds"/>.
    /// </summary>
    public GenerationStream Submit(int[] prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlyCollection<int> stopIds,
        CancellationToken cancel = default)
    {
        if (prompt.Length == 0) throw new QmoeException("the prompt is empty");
        foreach (var id in prompt)
            if ((uint)id >= (uint)_decoder.VocabSize) throw new QmoeException($"prompt token id {id} is outside the vocabulary [0, {_decoder.VocabSize})");
        int n = _decoder.ClampNewTokens(prompt.Length, maxNewTokens);
        var r = new GenerationStream(prompt, n, sampling, stopIds, cancel);
        Interlocked.Increment(ref _submitted);
        if (n == 0) { r.Complete(FinishReason.Length); Interlocked.Increment(ref _completed); return r; }
        _queue.Enqueue(r);
        _signal.Release();
        cancel.Register(() => _signal.Release());
        return r;
    }

    private void Loop()
    {
        var active = new List<GenerationStream>();
        while (!_stop.IsCancellationRequested)
        {
            Admit(active);
            active.RemoveAll(r => r.Cancel.IsCancellationRequested && Done(r, FinishReason.Cancelled));
            Active = active.Count;
            if (active.Count == 0)
            {
                try { _signal.Wait(_stop.Token); } catch (OperationCanceledException) { break; }
                continue;
            }
            var tokens = active.Select(r => r.LastToken).ToArray();
            float[] logits;
            try { logits = _decoder.Step(active.Select(r => r.State!).ToArray(), tokens); }
            catch (Exception e)
            {
                foreach (var r in active) Fail(r, e);
                active.Clear();
                continue;
            }
            Interlocked.Increment(ref _steps);
            Interlocked.Add(ref _stepSlots, active.Count);
            int v = _decoder.VocabSize;
            var finished = new List<GenerationStream>();
            for (int s = 0; s < active.Count; s++)
                if (Sample(active[s], logits.AsSpan(s * v, v))) finished.Add(active[s]);
            foreach (var r in finished) active.Remove(r);
        }
        foreach (var r in active) r.Complete(FinishReason.Cancelled);
        while (_queue.TryDequeue(out var q)) q.Complete(FinishReason.Cancelled);
    }

    /// <summary>Moves queued requests into the batch while there is room: each prompt is prefilled alone.</summary>
    private void Admit(List<GenerationStream> active)
    {
        while (active.Count < MaxBatch && _queue.TryDequeue(out var r))
        {
            if (r.Cancel.IsCancellationRequested) { Done(r, FinishReason.Cancelled); continue; }
            try
            {
                r.State = _decoder.Start();
                var logits = _decoder.Prefill(r.State, r.Prompt);
                if (!Sample(r, logits)) active.Add(r);
            }
            catch (Exception e) { Fail(r, e); }
        }
    }

    /// <summary>Samples r's next token from its logits row; true when r is finished (and completed).</summary>
    private bool Sample(GenerationStream r, ReadOnlySpan<float> logits)
    {
        int id = r.Sampler.Next(logits);
        bool stop = r.StopIds.Contains(id);
        if (!stop) Interlocked.Increment(ref _tokens);
        if (!r.Accept(id)) return false;
        Interlocked.Increment(ref _completed);
        return true;
    }

    private bool Done(GenerationStream r, FinishReason reason)
    {
        r.Complete(reason);
        Interlocked.Increment(ref _completed);
        return true;
    }

    private void Fail(GenerationStream r, Exception e)
    {
        r.Fail(e);
        Interlocked.Increment(ref _failed);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _signal.Release();
        _thread.Join();
        _stop.Dispose();
        _signal.Dispose();
    }
}
