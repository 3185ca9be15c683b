using Qmoe.Runtime;
using Qmoe.Server;

namespace Qmoe.Tests.Server;

/// <summary>A <c>qmoe serve</c> server in process on a free loopback port, and a second copy of the model for references.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public QmoeServer Server { get; }
    /// <summary>The same model loaded separately (references computed one request at a time, never sharing the server's).</summary>
    public IRunnableModel Reference { get; }
    public HttpClient Http { get; }
    public List<string> Log { get; } = new();

    private TestServer(QmoeServer server, IRunnableModel reference)
    {
        Server = server; Reference = reference;
        Http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(3) };
    }

    public static async Task<TestServer> StartAsync(string modelDir, ServerOptions? options = null)
    {
        var served = new ServedModel(ModelLoader.Open(modelDir), modelDir, options?.MaxBatch ?? 4);
        var log = new List<string>();
        var server = await QmoeServer.StartAsync(served, (options ?? new ServerOptions()) with { Port = 0, Host = "127.0.0.1" }, l => { lock (log) log.Add(l); });
        var t = new TestServer(server, ModelLoader.Open(modelDir));
        t.Log.AddRange(log);
        return t;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Reference.Dispose();
    }
}
