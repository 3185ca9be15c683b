using System.CommandLine;
using Qmoe.Gpu;
using Qmoe.Kernels;

namespace Qmoe.Cli;

/// <summary><c>--device cpu|cuda</c>: where the compressed experts' fused kernels run.</summary>
internal static class DeviceOption
{
    public static Option<string> Create() => new("--device")
    {
        Description = "where compressed experts' matvecs run: cpu (SIMD kernel) or cuda (ILGPU kernel; needs a CUDA device)",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>
    /// The kernel factory for <see cref="Runtime.ModelLoader.Open"/>: null for cpu; for cuda one that opens the device
    /// (checked here, so a missing device is a one-line error before any loading).
    /// </summary>
    public static Func<DecodeTable, ICompressedMatVec>? KernelFactory(string device)
    {
        switch (device.ToLowerInvariant())
        {
            case "cpu": return null;
            case "cuda":
                if (!CudaDevice.Available()) throw new QmoeException("--device cuda: no CUDA device found");
                return table => CudaDevice.Open().CreateModelKernel(table);
            default: throw new QmoeException($"--device '{device}': expected cpu or cuda");
        }
    }
}
