using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Qmoe.Kernels;

namespace Qmoe.Gpu;

/// <summary>The first CUDA device through ILGPU, for <c>--device cuda</c>; refuses with one line when there is none.</summary>
public sealed class CudaDevice : IDisposable
{
    private readonly Context _context;
    public Accelerator Accelerator { get; }
    public string Name => Accelerator.Name;

    private CudaDevice(Context context, Accelerator accelerator) { _context = context; Accelerator = accelerator; }

    /// <summary>True when ILGPU finds a CUDA device (driver present and a device visible).</summary>
    public static bool Available()
    {
        try
        {
            using var context = Context.Create(b => b.Cuda());
            return context.GetCudaDevices().Count > 0;
        }
        catch (Exception) { return false; }
    }

    public static CudaDevice Open()
    {
        Context? context = null;
        try
        {
            context = Context.Create(b => b.Cuda());
            if (context.GetCudaDevices().Count == 0) throw new QmoeException("--device cuda: no CUDA device found");
            return new CudaDevice(context, context.CreateCudaAccelerator(0));
        }
        catch (QmoeException) { context?.Dispose(); throw; }
        catch (Exception e) { context?.Dispose(); throw new QmoeException($"--device cuda: no usable CUDA device ({e.GetType().Name}: {e.Message.Split('\n')[0]})"); }
    }

    /// <summary>A model kernel on this device that owns (and disposes) the device.</summary>
    public ResidentGpuMatVec CreateModelKernel(DecodeTable table) => new(Accelerator, table, this);

    public void Dispose()
    {
        Accelerator.Dispose();
        _context.Dispose();
    }
}
