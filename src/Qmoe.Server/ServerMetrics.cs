using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Qmoe.Runtime;

namespace Qmoe.Server;

/// <summary>
/// Counters for /metrics in Prometheus text format: requests by endpoint and status, generated tokens and their
/// rate over the last 10 s (sampled each second), queue depth, active sequences and batch occupancy.
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    private const int Window = 10;
    private readonly BatchScheduler _scheduler;
    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly long[] _samples = new long[Window + 1];
    private int _sampleCount;
    private readonly Timer _timer;

    public ServerMetrics(BatchScheduler scheduler)
    {
        _scheduler = scheduler;
        _timer = new Timer(_ => Sample(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    private void Sample()
    {
        lock (_samples)
        {
            Array.Copy(_samples, 1, _samples, 0, Window);
            _samples[Window] = _scheduler.TokensGenerated;
            _sampleCount = Math.Min(_sampleCount + 1, Window + 1);
        }
    }

    public void CountRequest(string endpoint, int status) => _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);

    /// <summary>Tokens per second over the last (up to) 10 s.</summary>
    public double TokensPerSecond
    {
        get
        {
            lock (_samples)
            {
                if (_sampleCount < 2) return 0;
                int first = Window + 1 - _sampleCount;
                return (_samples[Window] - _samples[first]) / (double)(_sampleCount - 1);
            }
        }
    }

    public string Render()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string Labels, double Value)> values)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, v) in values) sb.Append(name).Append(labels).Append(' ').Append(v.ToString("R", c)).Append('\n');
        }
        Metric("qmoe_requests_total", "counter", "HTTP requests by endpoint and status code.",
            _requests.OrderBy(p => p.Key.Endpoint, StringComparer.Ordinal).ThenBy(p => p.Key.Status)
                .Select(p => ($"{{endpoint=\"{p.Key.Endpoint}\",status=\"{p.Key.Status}\"}}", (double)p.Value)));
        Metric("qmoe_generated_tokens_total", "counter", "Tokens generated.", [("", _scheduler.TokensGenerated)]);
        Metric("qmoe_tokens_per_second", "gauge", "Generated tokens per second over the last 10 seconds.", [("", TokensPerSecond)]);
        Metric("qmoe_queue_depth", "gauge", "Requests waiting for a batch slot.", [("", _scheduler.QueueDepth)]);
        Metric("qmoe_batch_active", "gauge", "Sequences in the decode batch now.", [("", _scheduler.Active)]);
        Metric("qmoe_batch_max", "gauge", "Batch slots (--max-batch).", [("", _scheduler.MaxBatch)]);
        double occupancy = _scheduler.Steps == 0 ? 0 : _scheduler.StepSlots / (double)_scheduler.Steps / _scheduler.StepCapacity;
        Metric("qmoe_batch_occupancy", "gauge", "Mean fraction of a decode step's slots (max-batch shared out over the decode lanes) used since start.", [("", occupancy)]);
        Metric("qmoe_decode_steps_total", "counter", "Batched decode steps run.", [("", _scheduler.Steps)]);
        Metric("qmoe_generations_completed_total", "counter", "Generations finished (stop, length or cancelled).", [("", _scheduler.Completed)]);
        Metric("qmoe_generations_failed_total", "counter", "Generations that failed.", [("", _scheduler.Failed)]);
        return sb.ToString();
    }

    public void Dispose() => _timer.Dispose();
}
