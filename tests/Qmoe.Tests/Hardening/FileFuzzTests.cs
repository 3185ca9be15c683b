using System.Text;
using System.Text.Json.Nodes;
using Qmoe.IO;
using Qmoe.Runtime;
using Qmoe.Text;
using Qmoe.Text.Templates;

namespace Qmoe.Tests.Hardening;

/// <summary>
/// Fuzzing of the readers of untrusted files: safetensors headers, the shard index, config.json, tokenizer_config.json
/// (chat templates), eval sets and a compressed model's tensor data. Each mutated input must be read or refused with a one-line QmoeException: no other
/// exception, no hang, and no single attempt allocating more than <see cref="AllocationLimit"/>. CI runs 200 per kind;
/// <c>QMOE_FUZZ_ITERATIONS=10000 dotnet test -c Release --filter FullyQualifiedName~FileFuzzTests</c> runs 10^4.
/// </summary>
public class FileFuzzTests
{
    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 200;

    /// <summary>Bound on what one read of these small inputs may allocate (the model load of switch-tiny-8 included).</summary>
    private const long AllocationLimit = 256L << 20;

    /// <summary>Runs <paramref name="attempt"/>; true when it succeeded, false when refused with a one-line QmoeException.</summary>
    private static bool Survives(int iteration, string input, Action attempt)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try { attempt(); return true; }
        catch (QmoeException e)
        {
            Assert.DoesNotContain('\n', e.Message);
            return false;
        }
        catch (Exception e) { Assert.Fail($"iteration {iteration}: {e.GetType().Name}: {e.Message}\ninput: {Clip(input)}\n{e.StackTrace}"); return false; }
        finally
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationLimit, $"iteration {iteration} allocated {allocated} bytes; input: {Clip(input)}");
        }
    }

    private static string Clip(string s) => s.Length > 2000 ? s[..2000] + "..." : s;

    /// <summary>A safetensors file with header <paramref name="header"/> and the given data bytes.</summary>
    private static byte[] WithHeader(string header, ReadOnlySpan<byte> data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + data.Length];
        BitConverter.GetBytes((long)h.Length).CopyTo(b, 0);
        h.CopyTo(b, 8);
        data.CopyTo(b.AsSpan(8 + h.Length));
        return b;
    }

    private static (string Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BitConverter.ToInt64(file, 0);
        return (Encoding.UTF8.GetString(file, 8, n), file[(8 + n)..]);
    }

    private static void WriteEvalSet(string path)
    {
        var rnd = new Random(3);
        byte[] Ints(int n) { var a = new int[n]; for (int i = 0; i < n; i++) a[i] = rnd.Next(100); var b = new byte[n * 4]; Buffer.BlockCopy(a, 0, b, 0, b.Length); return b; }
        SafeTensorsWriter.WriteAll(path,
        [
            ("validation.input_ids", DType.I32, [4, 8], Ints(32)),
            ("validation.labels", DType.I32, [4, 3], Ints(12)),
            ("validation.raw_blocks", DType.I32, [4, 10], Ints(40)),
        ]);
    }

    [Fact]
    public void SafeTensorsHeadersAndEvalSets()
    {
        using var tmp = Paths.Temp();
        string good = tmp.File("good.safetensors"), bad = tmp.File("bad.safetensors");
        WriteEvalSet(good);
        var (header, data) = Split(File.ReadAllBytes(good));
        var rnd = new Random(11);
        int refused = 0;
        for (int i = 0; i < Iterations; i++)
        {
            string h = JsonFuzz.Mutate(header, rnd);
            File.WriteAllBytes(bad, WithHeader(h, rnd.Next(8) == 0 ? data.AsSpan(0, rnd.Next(data.Length)) : data));
            bool causal = rnd.Next(2) == 0;
            if (!Survives(i, h, () =>
            {
                using (var f = SafeTensorsFile.Open(bad))
                    foreach (var name in f.Names)
                    {
                        var t = f.Info(name);
                        if (t.DType is DType.F32 or DType.BF16 or DType.F16) f.ReadFloat32(t);
                        else if (t.DType is DType.I32 or DType.I64 or DType.U8 or DType.U16) f.ReadInt32(name);
                    }
                EvalSet.Load(bad, "validation", 100, limit: rnd.Next(3) == 0 ? 2 : null, causal: causal);
            })) refused++;
        }
        Assert.True(refused > Iterations / 4, $"only {refused} of {Iterations} mutations were refused");
    }

    [Fact]
    public void ShardIndex()
    {
        using var tmp = Paths.Temp();
        WriteEvalSet(tmp.File("model-00001-of-00001.safetensors"));
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = 336 },
            ["weight_map"] = new JsonObject
            {
                ["validation.input_ids"] = "model-00001-of-00001.safetensors",
                ["validation.labels"] = "model-00001-of-00001.safetensors",
                ["validation.raw_blocks"] = "model-00001-of-00001.safetensors",
            },
        }.ToJsonString();
        var rnd = new Random(12);
        for (int i = 0; i < Iterations; i++)
        {
            string m = JsonFuzz.Mutate(index, rnd);
            File.WriteAllText(tmp.File("model.safetensors.index.json"), m);
            Survives(i, m, () => { using var s = TensorStore.Open(tmp.Path); foreach (var n in s.Names.ToList()) s.Info(n); });
        }
    }

    /// <summary>
    /// The tensor data of a compressed model with ternary, coded 2-bit and bit-packed 3-bit experts (checksums not
    /// consulted, so the structural readers and the kernels meet every mutation): opening it and multiplying every
    /// expert either works or is refused with one line.
    /// </summary>
    [Fact]
    public void CompressedModelTensorData()
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(14);
        int rows = 12, cols = 40;
        string good = tmp.File("good"), bad = tmp.File("bad");
        using (var w = new Qmoe.Codec.CompressedModelWriter(good, new JsonObject { ["num_experts"] = 3 }))
        {
            w.AddExpertGroup("a", "wi", [Qmoe.Codec.StoredExpert.Of(Codec.SmallModel.Matrix(rnd, rows, cols)),
                Qmoe.Codec.StoredExpert.Of(Codec.CodedTwoBitTests.GptqLike(rnd, rows, cols)), Qmoe.Codec.StoredExpert.Of(Kernels.NBitMatVecTests.RandomMatrix(rnd, 3, rows, cols))]);
            w.AddExpertGroup("b", "wo", Enumerable.Range(0, 3).Select(_ => Qmoe.Codec.StoredExpert.Of(Codec.CodedTwoBitTests.GptqLike(rnd, cols, rows))).ToList());
            w.Complete();
        }
        Directory.CreateDirectory(bad);
        File.Copy(Path.Combine(good, "config.json"), Path.Combine(bad, "config.json"));
        var file = File.ReadAllBytes(Path.Combine(good, "model.safetensors"));
        long data = 8 + BitConverter.ToInt64(file, 0);
        var x = new float[Math.Max(rows, cols)];
        for (int i = 0; i < Iterations; i++)
        {
            var b = (byte[])file.Clone();
            for (int k = 1 + rnd.Next(6); k > 0; k--) b[data + rnd.NextInt64(b.Length - data)] = (byte)rnd.Next(256);
            File.WriteAllBytes(Path.Combine(bad, "model.safetensors"), b);
            Survives(i, "tensor data", () =>
            {
                using var m = Qmoe.Codec.CompressedModel.Open(bad);
                using var parallel = new Qmoe.Kernels.RowParallel(1);
                var ternary = new Qmoe.Kernels.SimdCompressedMatVec(Qmoe.Kernels.DecodeTable.FromDictionary(m.Dictionary.Entries), parallel);
                var coded = m.FourLevelDictionary is { } d4 ? new Qmoe.Kernels.SimdCompressedMatVec(Qmoe.Kernels.DecodeTable.FromDictionary(d4), parallel) : null;
                foreach (var g in m.Groups)
                    for (int e = 0; e < g.Experts; e++)
                    {
                        if (g.NBit?.IsPacked(e) == true) continue;
                        var kernel = g.NBit?.IsCoded(e) == true ? coded! : ternary;
                        kernel.Multiply(m.Expert(g, e).ToKernel(), x.AsSpan(0, g.Cols), new float[g.Rows]);
                    }
            });
        }
    }

    [Fact]
    public void ModelConfig()
    {
        using var dir = Paths.CopyOf(Paths.TinyModel);
        string config = File.ReadAllText(Path.Combine(Paths.TinyModel, "config.json"));
        var rnd = new Random(13);
        // Each accepted config loads the whole model: 50 in CI, the full count when asked for.
        int n = Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS") != null ? Iterations : 50;
        for (int i = 0; i < n; i++)
        {
            string m = JsonFuzz.Mutate(config, rnd);
            File.WriteAllText(dir.File("config.json"), m);
            Survives(i, m, () => ModelLoader.Open(dir.Path).Dispose());
        }
    }

    /// <summary>A template of this project's own, using the features real templates use.</summary>
    private const string OwnTemplate =
        "{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content'] %}{%- set rest = messages[1:] %}" +
        "{%- else %}{%- set rest = messages %}{%- endif %}\n{{- bos_token }}\n{%- set ns = namespace(i=0) %}" +
        "{%- for m in rest if m.content is defined %}\n  {%- if (m.role == 'user') != (ns.i % 2 == 0) %}{{ raise_exception('alternate') }}{% endif %}" +
        "\n  {%- set ns.i = ns.i + 1 %}\n  {%- if m.role == 'user' %}{{ '[U] ' + (sys + '\\n' if sys is defined and loop.first else '') + m.content|trim }}" +
        "{%- else %}{{ ' ' ~ m['content'] ~ eos_token }}{%- endif %}\n{%- endfor %}{% if add_generation_prompt %}[A]{% endif %}";

    [Fact]
    public void TokenizerConfigAndChatTemplates()
    {
        using var tmp = Paths.Temp();
        var configs = new List<string>
        {
            new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = new JsonObject { ["content"] = "</s>" }, ["chat_template"] = OwnTemplate }.ToJsonString(),
        };
        foreach (var name in new[] { "mistral-v03", "qwen2", "deepseek-coder" })
            if (Paths.Fixture("tokenizers", name, "tokenizer_config.json") is string p) configs.Add(File.ReadAllText(p));
        List<ChatMessage> conversation = [new("system", "s"), new("user", "u"), new("assistant", "a"), new("user", "v")];
        var rnd = new Random(14);
        for (int i = 0; i < Iterations; i++)
        {
            string src = configs[rnd.Next(configs.Count)];
            string m = rnd.Next(3) == 0 ? MutateTemplateText(src, rnd) : JsonFuzz.Mutate(src, rnd);
            File.WriteAllText(tmp.File("tokenizer_config.json"), m);
            Survives(i, m, () => ChatTemplate.Load(tmp.Path)?.Render(conversation, rnd.Next(2) == 0));
        }
    }

    /// <summary>Damages the chat_template string itself (a character inserted, deleted or replaced by Jinja syntax).</summary>
    private static string MutateTemplateText(string config, Random rnd)
    {
        var root = JsonNode.Parse(config)!.AsObject();
        if (root["chat_template"] is not JsonValue v || !v.TryGetValue<string>(out var t) || t.Length == 0) return JsonFuzz.Mutate(config, rnd);
        string[] pieces = ["{%", "%}", "{{", "}}", "{#", "-", "(", ")", "[", "]", "'", "\"", "|", ".", " if ", " for ", "endfor", "endif", " not ", "~", "*", "1e9", "9999999999999999999"];
        int pos = rnd.Next(t.Length);
        t = rnd.Next(3) switch
        {
            0 => t.Insert(pos, pieces[rnd.Next(pieces.Length)]),
            1 => t.Remove(pos, Math.Min(t.Length - pos, rnd.Next(1, 6))),
            _ => t[..pos] + pieces[rnd.Next(pieces.Length)] + t[Math.Min(t.Length, pos + 2)..],
        };
        root["chat_template"] = t;
        return root.ToJsonString();
    }
}
