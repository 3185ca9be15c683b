using System.Collections.Concurrent;

namespace Qmoe.Runtime;

/// <summary>
/// Continuous batching over an <see cref="IBatchDecoder"/>: requests queue; decode lanes admit them and drop finished
/// or cancelled ones between their decode steps; each step of a lane feeds every sequence it holds its last token as
/// one batch. With a <see cref="IBatchDecoder.Concurrent"/> decoder there is one lane per core, each a thread with its
/// own sequences (up to <see cref="StepCapacity"/>, together <see cref="MaxBatch"/>) stepping on its own, and admitted
/// prompts are prefilled (each alone on its thread, unless it is the only work) by one prefill thread per core beside the steps: a request joins its lane at the
/// lane's first step after its prefill, so no step waits for a prompt, and no lane waits for another (a shared step
/// split over the cores waited for its slower part, and a core idled whenever the other was preempted). A lane that
/// is the only one holding sequences runs its step on every core (<see cref="Threads.Count"/>); otherwise each step
/// and prefill runs alone on its thread (<see cref="Threads.RunAlone"/>). A decoder that is not concurrent gets one
/// lane, which prefills prompts in turn before its step. A sequence's results are the same either way.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly IBatchDecoder _decoder;
    private readonly ConcurrentQueue<GenerationStream> _queue = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Lane[] _lanes;
    // Concurrent decoders: admitted requests wait here, with the lane that admitted them, for a prefill thread.
    private readonly BlockingCollection<(GenerationStream R, Lane Lane)> _toPrefill = new();
    private readonly Thread[] _prefillThreads;
    private int _busyLanes; // lanes holding sequences now (stepping or prefilling)
    private int _prefillsRunning; // prompts being prefilled now, by the prefill threads
    private long _submitted, _completed, _failed, _tokens, _steps, _stepSlots;

    public int MaxBatch { get; }
    /// <summary>Sequences one decode step holds at most: <see cref="MaxBatch"/> shared out over the lanes.</summary>
    public int StepCapacity => _lanes[0].Capacity;
    /// <summary>Decode lanes: one per core with a concurrent decoder, else one.</summary>
    public int Lanes => _lanes.Length;
    /// <summary>Requests waiting to join a lane.</summary>
    public int QueueDepth => _queue.Count;
    /// <summary>Sequences in the lanes now, those being prefilled included.</summary>
    public int Active => _lanes.Sum(l => Volatile.Read(ref l.Holding));
    public long Submitted => Interlocked.Read(ref _submitted);
    public long Completed => Interlocked.Read(ref _completed);
    public long Failed => Interlocked.Read(ref _failed);
    /// <summary>Tokens generated in all (prefill first tokens and step tokens).</summary>
    public long TokensGenerated => Interlocked.Read(ref _tokens);
    /// <summary>Decode steps run, by every lane.</summary>
    public long Steps => Interlocked.Read(ref _steps);
    /// <summary>Σ sequences per step: with <see cref="Steps"/>, the mean batch of a step.</summary>
    public long StepSlots => Interlocked.Read(ref _stepSlots);

    /// <param name="decoder">the model's multi-sequence decoder</param>
    /// <param name="maxBatch">sequences held at once, those being prefilled included (1..256)</param>
    /// <param name="lanes">decode lanes for a concurrent decoder; ≤ 0: one per core (<see cref="Threads.Count"/>); at most <paramref name="maxBatch"/></param>
    public BatchScheduler(IBatchDecoder decoder, int maxBatch, int lanes = 0)
    {
        if (maxBatch < 1 || maxBatch > 256) throw new QmoeException($"--max-batch {maxBatch} must be in [1, 256]");
        _decoder = decoder;
        MaxBatch = maxBatch;
        lanes = decoder.Concurrent ? Math.Min(Threads.Resolve(lanes), maxBatch) : 1;
        _lanes = Enumerable.Range(0, lanes).Select(i => new Lane(this, i, (maxBatch + lanes - 1 - i) / lanes)).ToArray();
        _prefillThreads = new Thread[decoder.Concurrent ? Threads.Count : 0];
        for (int i = 0; i < _prefillThreads.Length; i++)
        {
            _prefillThreads[i] = new Thread(PrefillLoop) { IsBackground = true, Name = $"qmoe-prefill-{i}" };
            _prefillThreads[i].Start();
        }
        foreach (var lane in _lanes) lane.Start();
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
        WakeLanes();
        cancel.Register(WakeLanes);
        return r;
    }

    private void WakeLanes()
    {
        foreach (var lane in _lanes) lane.Wake();
    }

    /// <summary>Runs a step or prefill of a lane: on every core when no other lane holds sequences, else alone on its thread.</summary>
    private void Run(Action work)
    {
        if (Volatile.Read(ref _busyLanes) > 1) Threads.RunAlone(work);
        else work();
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

    /// <summary>
    /// A prefill thread: each prompt, then back to its lane. A prompt that is the only work in the scheduler (no
    /// other prefill running, and its lane, the only busy one, holding nothing else) runs on every core, so a lone
    /// request's first token comes as fast as <c>generate</c>'s; otherwise alone on this thread
    /// (<see cref="Threads.RunAlone"/>), beside the lanes' steps.
    /// </summary>
    private void PrefillLoop()
    {
        foreach (var (r, lane) in _toPrefill.GetConsumingEnumerable())
        {
            bool skip = r.Cancel.IsCancellationRequested || _stop.IsCancellationRequested; // completed as cancelled by the lane
            if (skip) lane.Prefilled.Enqueue((r, null, null));
            else
            {
                bool alone = Interlocked.Increment(ref _prefillsRunning) == 1 && Volatile.Read(ref _busyLanes) <= 1 && Volatile.Read(ref lane.Holding) <= 1;
                try { lane.Prefilled.Enqueue(alone ? Prefill(r) : Threads.RunAlone(() => Prefill(r))); }
                finally { Interlocked.Decrement(ref _prefillsRunning); }
            }
            lane.Wake();
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
        foreach (var lane in _lanes) lane.Join();
        _toPrefill.CompleteAdding();
        foreach (var t in _prefillThreads) t.Join();
        foreach (var lane in _lanes) lane.CancelRemaining();
        while (_queue.TryDequeue(out var q)) q.Complete(FinishReason.Cancelled);
        _stop.Dispose();
        _toPrefill.Dispose();
    }

    /// <summary>
    /// One decode lane: a thread with its own sequences. Between steps it drops cancelled sequences, takes in its
    /// prefilled ones, and admits queued requests while it has room (<see cref="Capacity"/>, counting those being
    /// prefilled); each step feeds all its sequences as one batch.
    /// </summary>
    private sealed class Lane(BatchScheduler owner, int index, int capacity)
    {
        // Set by Submit, cancellations and prefill threads; never disposed (without its WaitHandle it holds no kernel
        // object), so a cancellation arriving after Dispose cannot throw.
        private readonly ManualResetEventSlim _wake = new(false);
        private readonly List<GenerationStream> _active = new();
        private float[] _logits = []; // kept from step to step: a fresh [batch, vocab] array each step made the GC run full collections
        private int _prefilling;
        private bool _busy;

        public int Capacity { get; } = capacity;
        /// <summary>Prefilled requests (with their first token's logits, or the prefill's error) waiting to join.</summary>
        public ConcurrentQueue<(GenerationStream R, float[]? Logits, Exception? Error)> Prefilled { get; } = new();
        /// <summary>Sequences held (stepping or being prefilled), for <see cref="Active"/>.</summary>
        public int Holding;

        private Thread? _loop;

        public void Start()
        {
            _loop = new Thread(Loop) { IsBackground = true, Name = $"qmoe-batch-lane-{index}" };
            _loop.Start();
        }

        public void Wake() => _wake.Set();

        public void Join()
        {
            _wake.Set();
            _loop?.Join();
        }

        /// <summary>After the lane and the prefill threads have stopped: its sequences end as cancelled.</summary>
        public void CancelRemaining()
        {
            foreach (var r in _active) r.Complete(FinishReason.Cancelled);
            while (Prefilled.TryDequeue(out var p)) p.R.Complete(FinishReason.Cancelled);
        }

        private void Loop()
        {
            var stop = owner._stop.Token;
            while (true)
            {
                // Reset before looking at the stop flag and the queues, so a wake-up after this point is not lost. With the
                // flag checked first, Dispose's cancel and wake-up could both land between the check and the reset, and the
                // lane then slept forever (a test run hung in Dispose's Join).
                _wake.Reset();
                if (stop.IsCancellationRequested) break;
                _active.RemoveAll(r => r.Cancel.IsCancellationRequested && owner.Done(r, FinishReason.Cancelled));
                JoinPrefilled();
                Admit();
                Volatile.Write(ref Holding, _active.Count + _prefilling);
                SetBusy(_active.Count + _prefilling > 0);
                if (_active.Count == 0)
                {
                    if (Prefilled.IsEmpty) _wake.Wait();
                    continue;
                }
                Step();
            }
            SetBusy(false);
        }

        private void SetBusy(bool busy)
        {
            if (busy == _busy) return;
            _busy = busy;
            Interlocked.Add(ref owner._busyLanes, busy ? 1 : -1);
        }

        /// <summary>Moves queued requests to prefill while the lane has room: to the prefill threads, or prefilled here in turn.</summary>
        private void Admit()
        {
            bool inline = owner._prefillThreads.Length == 0;
            while (_active.Count + _prefilling < Capacity && owner._queue.TryDequeue(out var r))
            {
                if (r.Cancel.IsCancellationRequested) { owner.Done(r, FinishReason.Cancelled); continue; }
                _prefilling++;
                if (inline) Prefilled.Enqueue(owner.Prefill(r));
                else owner._toPrefill.Add((r, this));
            }
            if (inline) JoinPrefilled();
        }

        /// <summary>Prefilled requests take their first token and join the lane (unless that token ends them).</summary>
        private void JoinPrefilled()
        {
            while (Prefilled.TryDequeue(out var p))
            {
                _prefilling--;
                if (p.Error != null) owner.Fail(p.R, p.Error);
                else if (p.R.Cancel.IsCancellationRequested) owner.Done(p.R, FinishReason.Cancelled);
                else if (!owner.Sample(p.R, p.Logits)) _active.Add(p.R);
            }
        }

        /// <summary>One decode step: every sequence of the lane is fed its last token as one batch; then each samples its next.</summary>
        private void Step()
        {
            int v = owner._decoder.VocabSize, n = _active.Count;
            if (_logits.Length < n * v) _logits = new float[Capacity * v];
            var states = _active.Select(r => r.State!).ToArray();
            var tokens = _active.Select(r => r.LastToken).ToArray();
            Exception? error = null;
            try { owner.Run(() => owner._decoder.Step(states, tokens, _logits)); }
            catch (Exception e) { error = e; }
            Interlocked.Increment(ref owner._steps);
            Interlocked.Add(ref owner._stepSlots, n);
            if (error != null)
            {
                foreach (var r in _active) owner.Fail(r, error);
                _active.Clear();
                return;
            }
            int kept = 0;
            for (int s = 0; s < n; s++)
                if (!owner.Sample(_active[s], _logits.AsSpan(s * v, v))) _active[kept++] = _active[s];
            _active.RemoveRange(kept, n - kept);
        }
    }
}
