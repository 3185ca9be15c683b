using Qmoe.Compression;

namespace Qmoe.Cli;

/// <summary>The demo's figure: per expert matrix group, the relative reconstruction error (left axis) and the zero fraction (right axis).</summary>
internal static class DemoPlot
{
    public static void Write(string path, IReadOnlyList<LayerStatistics> layers)
    {
        var plt = new ScottPlot.Plot();
        var labels = layers.Select(l => l.Name.Replace(".layer.", ".").Replace(".mlp.experts", "")).ToArray();
        var error = plt.Add.Bars(layers.Select((l, i) => new ScottPlot.Bar { Position = i - 0.2, Value = l.RelativeError, Size = 0.4 }).ToList());
        error.LegendText = "relative error ‖(W−Q)Xᵀ‖² / ‖WXᵀ‖² (left)";
        var zeros = plt.Add.Bars(layers.Select((l, i) => new ScottPlot.Bar { Position = i + 0.2, Value = l.ZeroFraction, Size = 0.4 }).ToList());
        zeros.LegendText = "zero fraction (right)";
        zeros.Axes.YAxis = plt.Axes.Right;
        plt.Axes.Left.Label.Text = "relative reconstruction error";
        plt.Axes.Right.Label.Text = "fraction of zero weights";
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Length).Select(i => (double)i).ToArray(), labels);
        plt.Axes.Bottom.TickLabelStyle.Rotation = -20;
        plt.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.UpperLeft;
        plt.Title("Ternary GPTQ per expert matrix group (calibration inputs)");
        plt.ShowLegend(ScottPlot.Alignment.UpperRight);
        plt.Axes.Margins(bottom: 0);
        plt.Axes.SetLimitsY(0, 1, plt.Axes.Right);
        plt.SavePng(path, 1000, 560);
    }
}
