using System.Collections.Concurrent;

namespace Qmoe.Runtime;

/// <summary>
/// Continuous batching over an <see cref="IBatchDecoder"/>: requests queue; between decode steps the scheduler
/// admits queued requests (up to <see cref="MaxBatch"/> sequences, those being prefilled included) and drops finished
/// or cancelled ones; each step feeds every active sequence its last token as one batch.
/// One thread drives the steps. With a <see cref="IBatchDecoder.Concurrent"/> decoder it splits each step into parts
/// run side by side (<see cref="Threads.ForEachAlone"/>), and admitted prompts are prefilled (each alone) by one
/// prefill thread per core beside the steps: a request joins the batch at the first step after its prefill, and a
/// step never waits for a prompt, so no core idles while another finishes a long prefill. Otherwise prompts are
/// prefilled in turn before the step. A sequence's results are the same either way.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly IBatchDecoder _decoder;
    private readonly ConcurrentQueue<GenerationStream> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    // Concurrent decoders: admitted requests wait here for a prefill thread; prefilled ones (with their first token's
    // logits, or the prefill's error) wait in _prefilled for the scheduler. _prefilling counts both (scheduler thread only).
    private readonly BlockingCollection<GenerationStream> _toPrefill = new();
    private readonly ConcurrentQueue<(GenerationStream R, float[]? Logits, Exception? Error)> _prefilled = new();
    private readonly Thread[] _prefillThreads;
    private float[][] _stepLogits = []; // the decode loop's logits buffers (see StepLogits)
    private int _prefilling;
    private long _submitted, _completed, _failed, _tokens, _steps, _stepSlots;

    public int MaxBatch { get; }
    /// <summary>Requests waiting to join the batch.</summary>
    public int QueueDepth => _queue.Count;
    /// <summary>Sequences in the batch now, those being prefilled included.</summary>
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
        _prefillThreads = new Thread[decoder.Concurrent ? Threads.Count : 0];
        for (int i = 0; i < _prefillThreads.Length; i++)
        {
            _prefillThreads[i] = new Thread(PrefillLoop) { IsBackground = true, Name = $"qmoe-prefill-{i}" };
            _prefillThreads[i].Start();
        }
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
            active.RemoveAll(r => r.Cancel.IsCancellationRequested && Done(r, FinishReason.Cancelled));
            Join(active);
            Admit(active);
            Active = active.Count + _prefilling;
            if (active.Count == 0)
            {
                if (!_prefilled.IsEmpty) continue;
                try { _signal.Wait(_stop.Token); } catch (OperationCanceledException) { break; }
                continue;
            }
            RunStep(active);
        }
        _toPrefill.CompleteAdding();
        foreach (var t in _prefillThreads) t.Join();
        foreach (var r in active) r.Complete(FinishReason.Cancelled);
        while (_prefilled.TryDequeue(out var p)) p.R.Complete(FinishReason.Cancelled);
        while (_queue.TryDequeue(out var q)) q.Complete(FinishReason.Cancelled);
    }

    /// <summary>Moves queued requests to prefill while the batch has room: to the prefill threads, or prefilled here in turn.</summary>
    private void Admit(List<GenerationStream> active)
    {
        while (active.Count + _prefilling < MaxBatch && _queue.TryDequeue(out var r))
        {
            if (r.Cancel.IsCancellationRequested) { Done(r, FinishReason.Cancelled); continue; }
            _prefilling++;
            if (_prefillThreads.Length > 0) _toPrefill.Add(r);
            else _prefilled.Enqueue(Prefill(r));
        }
        if (_prefillThreads.Length == 0) Join(active);
    }

    /// <summary>Prefilled requests take their first token and enter the batch (unless that token ends them).</summary>
    private void Join(List<GenerationStream> active)
    {
        while (_prefilled.TryDequeue(out var p))
        {
            _prefilling--;
            if (p.Error != null) Fail(p.R, p.Error);
            else if (p.R.Cancel.IsCancellationRequested) Done(p.R, FinishReason.Cancelled);
            else if (!Sample(p.R, p.Logits)) active.Add(p.R);
        }
    }

    private (GenerationStream, float[]?, Exception?) Prefill(GenerationStream r)
    {
        try
        {
            r.State = _decoder.Start(r.Prompt.Length + r.MaxNewTokens);
            return (r, _decoder.Prefill(r.State, r.Prompt), null);
        }
        catch (Exception e) { return (r, null, e); }
    }

    /// <summary>A prefill thread: each prompt alone on this thread (<see cref="Threads.RunAlone"/>), then a wake-up for the scheduler.</summary>
    private void PrefillLoop()
    {
        foreach (var r in _toPrefill.GetConsumingEnumerable())
        {
            bool skip = r.Cancel.IsCancellationRequested || _stop.IsCancellationRequested; // completed as cancelled by the scheduler
            _prefilled.Enqueue(skip ? (r, null, null) : Threads.RunAlone(() => Prefill(r)));
            _signal.Release();
        }
    }

    /// <summary>
    /// One decode step: every active sequence is fed its last token, in parts of the batch side by side with a
    /// <see cref="IBatchDecoder.Concurrent"/> decoder; then each sequence samples its next token.
    /// </summary>
    private void RunStep(List<GenerationStream> active)
    {
        int parts = _decoder.Concurrent ? Math.Min(active.Count, Threads.Count) : 1;
        int partSize = (active.Count + parts - 1) / parts;
        parts = (active.Count + partSize - 1) / partSize;
        int v = _decoder.VocabSize;
        var logits = StepLogits(parts, partSize * v);
        var errors = new Exception?[parts];
        void Job(int j)
        {
            try
            {
                var part = active.GetRange(j * partSize, Math.Min(partSize, active.Count - j * partSize));
                _decoder.Step(part.Select(r => r.State!).ToArray(), part.Select(r => r.LastToken).ToArray(), logits[j]);
            }
            catch (Exception e) { errors[j] = e; }
        }
        if (parts > 1) Threads.ForEachAlone(parts, Job);
        else Job(0);

        var stepped = new List<GenerationStream>(active.Count);
        for (int j = 0; j < parts; j++)
        {
            var part = active.GetRange(j * partSize, Math.Min(partSize, active.Count - j * partSize));
            if (errors[j] != null) { foreach (var r in part) Fail(r, errors[j]!); continue; }
            for (int s = 0; s < part.Count; s++)
                if (!Sample(part[s], logits[j].AsSpan(s * v, v))) stepped.Add(part[s]);
        }
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _stepSlots, active.Count);
        active.Clear();
        active.AddRange(stepped);
    }

    /// <summary>One logits buffer per part of a step, of at least <paramref name="length"/> floats, kept from step to step:
    /// a fresh [batch, vocab] array each step (a large-object allocation from vocab 4k up) made the GC run a full
    /// collection every few steps.</summary>
    private float[][] StepLogits(int parts, int length)
    {
        if (_stepLogits.Length < parts) Array.Resize(ref _stepLogits, parts);
        for (int j = 0; j < parts; j++)
            if (_stepLogits[j] == null || _stepLogits[j].Length < length) _stepLogits[j] = new float[length];
        return _stepLogits;
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
        _toPrefill.Dispose();
    }
}
