using Qmoe.Compression;

namespace Qmoe.Cli;

/// <summary>The demo's figure: per expert matrix group, the relative reconstruction error (left axis) and the zero fraction (right axis).</summary>
internal static class DemoPlot
{
    public static void Write(string path, IReadOnlyList<LayerStatistics> layers)
    {
        var plt = new ScottPlot.Plot();
        // "encoder.block.1.layer.1.mlp.experts.wi" → "encoder block 1 wi"
        var labels = layers.Select(l => l.Name.Split('.') is var p ? $"{p[0]} block {p[2]} {p[^1]}" : l.Name).ToArray();
        var error = plt.Add.Bars(layers.Select((l, i) => new ScottPlot.Bar { Position = i - 0.2, Value = l.RelativeError, Size = 0.4 }).ToList());
        error.LegendText = "relative error ‖(W−Q)Xᵀ‖² / ‖WXᵀ‖² (left)";
        error.Color = ScottPlot.Colors.SteelBlue;
        var zeros = plt.Add.Bars(layers.Select((l, i) => new ScottPlot.Bar { Position = i + 0.2, Value = l.ZeroFraction, Size = 0.4 }).ToList());
        zeros.LegendText = "zero fraction (right)";
        zeros.Color = ScottPlot.Colors.Orange;
        zeros.Axes.YAxis = plt.Axes.Right;
        plt.Axes.Left.Label.Text = "relative reconstruction error";
        plt.Axes.Right.Label.Text = "fraction of zero weights";
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Length).Select(i => (double)i).ToArray(), labels);
        plt.Title("Ternary GPTQ per expert matrix group (calibration inputs)");
        plt.ShowLegend(ScottPlot.Alignment.UpperCenter);
        plt.Axes.Margins(bottom: 0);
        plt.Axes.SetLimitsY(0, 1.25, plt.Axes.Right);
        plt.Axes.SetLimitsY(0, 1.25 * Math.Max(1e-9, layers.Max(l => l.RelativeError)), plt.Axes.Left);
        plt.SavePng(path, 1000, 560);
    }
}
