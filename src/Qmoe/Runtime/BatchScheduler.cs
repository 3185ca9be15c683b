using System.Collections.Concurrent;

namespace Qmoe.Runtime;

/// <summary>
/// Continuous batching over an <see cref="IBatchDecoder"/>: requests queue; between decode steps the scheduler
/// admits queued requests (up to <see cref="MaxBatch"/> sequences) and drops finished or cancelled ones; each step
/// prefills the newly admitted prompts (each alone) and feeds every active sequence its last token as one batch.
/// One thread drives the model; with a <see cref="IBatchDecoder.Concurrent"/> decoder it spreads a step's prefills
/// and parts of the batch over the cores (<see cref="Threads.ForEachAlone"/>), otherwise it runs them in turn.
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
        var joining = new List<GenerationStream>();
        while (!_stop.IsCancellationRequested)
        {
            active.RemoveAll(r => r.Cancel.IsCancellationRequested && Done(r, FinishReason.Cancelled));
            Admit(active.Count, joining);
            Active = active.Count + joining.Count;
            if (Active == 0)
            {
                try { _signal.Wait(_stop.Token); } catch (OperationCanceledException) { break; }
                continue;
            }
            RunStep(active, joining);
            joining.Clear();
        }
        foreach (var r in active) r.Complete(FinishReason.Cancelled);
        while (_queue.TryDequeue(out var q)) q.Complete(FinishReason.Cancelled);
    }

    /// <summary>Moves queued requests into <paramref name="joining"/> while the batch has room.</summary>
    private void Admit(int activeCount, List<GenerationStream> joining)
    {
        while (activeCount + joining.Count < MaxBatch && _queue.TryDequeue(out var r))
        {
            if (r.Cancel.IsCancellationRequested) { Done(r, FinishReason.Cancelled); continue; }
            joining.Add(r);
        }
    }

    /// <summary>
    /// One scheduler step: the prompts of the joining requests are prefilled (each alone) and every active sequence
    /// is fed its last token (in parts of the batch). With a <see cref="IBatchDecoder.Concurrent"/> decoder these jobs
    /// run side by side, each alone on its thread, so a prefill no longer stalls the batch; a sequence's results are
    /// the same either way. Then each job's sequences sample their next token; joined requests enter the batch.
    /// </summary>
    private void RunStep(List<GenerationStream> active, List<GenerationStream> joining)
    {
        int parts = active.Count == 0 ? 0 : _decoder.Concurrent ? Math.Min(active.Count, Threads.Count) : 1;
        int partSize = parts == 0 ? 0 : (active.Count + parts - 1) / parts;
        parts = partSize == 0 ? 0 : (active.Count + partSize - 1) / partSize;
        var logits = new float[parts + joining.Count][];
        var errors = new Exception?[logits.Length];
        void Job(int j)
        {
            try
            {
                if (j < parts)
                {
                    var part = active.GetRange(j * partSize, Math.Min(partSize, active.Count - j * partSize));
                    logits[j] = _decoder.Step(part.Select(r => r.State!).ToArray(), part.Select(r => r.LastToken).ToArray());
                }
                else
                {
                    var r = joining[j - parts];
                    r.State = _decoder.Start();
                    logits[j] = _decoder.Prefill(r.State, r.Prompt);
                }
            }
            catch (Exception e) { errors[j] = e; }
        }
        if (_decoder.Concurrent && logits.Length > 1) Threads.ForEachAlone(logits.Length, Job);
        else for (int j = 0; j < logits.Length; j++) Job(j);

        int v = _decoder.VocabSize;
        var stepped = new List<GenerationStream>(active.Count);
        for (int j = 0; j < parts; j++)
        {
            var part = active.GetRange(j * partSize, Math.Min(partSize, active.Count - j * partSize));
            if (errors[j] != null) { foreach (var r in part) Fail(r, errors[j]!); continue; }
            for (int s = 0; s < part.Count; s++)
                if (!Sample(part[s], logits[j].AsSpan(s * v, v))) stepped.Add(part[s]);
        }
        if (parts > 0)
        {
            Interlocked.Increment(ref _steps);
            Interlocked.Add(ref _stepSlots, active.Count);
        }
        for (int i = 0; i < joining.Count; i++)
        {
            var r = joining[i];
            if (errors[parts + i] != null) Fail(r, errors[parts + i]!);
            else if (!Sample(r, logits[parts + i])) stepped.Add(r);
        }
        active.Clear();
        active.AddRange(stepped);
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
