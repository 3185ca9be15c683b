using ScottPlot;

namespace Qmoe.Cli;

/// <summary>
/// The demo's report image: six labelled panels in one PNG, drawn from the same numbers as demo-report.json —
/// expert bits/param by part (codes, scales, row index, dictionary), CE per split and speed (dense vs compressed),
/// layers × experts heatmaps of zero fraction and relative reconstruction error, and the real-width slice.
/// </summary>
internal static class DemoPlot
{
    /// <summary>What the figure shows; <see cref="Slice"/> is null when the slice was skipped.</summary>
    public sealed record Data(string ModelName, double DenseBits, Dictionary<string, double> CompressedBits,
        Dictionary<string, double>? SliceBits, string[] Splits, double[] DenseCe, double[] CompressedCe,
        (string Name, double Dense, double Compressed)[] Speeds, string[] Groups, double[][] ZeroFractions,
        double[][] RelativeErrors, DemoSlice.Result? Slice);

    public static readonly string[] BitParts = ["codes", "scales", "row_index", "dictionary"];
    private static readonly Color[] PartColors = [Colors.SteelBlue, Colors.Orange, Colors.ForestGreen, Colors.Crimson];
    private static readonly Color DenseColor = Colors.Gray, CompressedColor = Colors.SteelBlue;

    public static void Write(string path, Data d)
    {
        var mp = new Multiplot();
        mp.AddPlots(6);
        mp.Layout = new ScottPlot.MultiplotLayouts.Grid(3, 2);
        BitsPanel(mp.GetPlot(0), d);
        CePanel(mp.GetPlot(1), d);
        Heatmap(mp.GetPlot(2), d.Groups, d.ZeroFractions, $"{d.ModelName}: fraction of zero weights per expert", "zero fraction");
        Heatmap(mp.GetPlot(3), d.Groups, d.RelativeErrors, $"{d.ModelName}: relative output error per expert (calibration inputs)", "relative error");
        SpeedPanel(mp.GetPlot(4), d);
        SlicePanel(mp.GetPlot(5), d.Slice);
        mp.SavePng(path, 1400, 1350);
    }

    private static void BitsPanel(Plot plt, Data d)
    {
        var columns = new List<(string Label, Dictionary<string, double> Parts)> { ($"{d.ModelName}\ncompressed", d.CompressedBits) };
        if (d.SliceBits != null) columns.Add(("real-width slice\n(synthetic weights)", d.SliceBits));
        var bars = new List<Bar>();
        for (int c = 0; c < columns.Count; c++)
        {
            double bottom = 0;
            for (int p = 0; p < BitParts.Length; p++)
            {
                double v = columns[c].Parts[BitParts[p]];
                bars.Add(new Bar { Position = c, ValueBase = bottom, Value = bottom + v, FillColor = PartColors[p], Size = 0.6 });
                bottom += v;
            }
            var total = plt.Add.Text($"{bottom:F3}", c, bottom);
            total.LabelFontSize = 14;
            total.LabelBold = true;
            total.LabelAlignment = Alignment.LowerCenter;
        }
        plt.Add.Bars(bars);
        var one = plt.Add.HorizontalLine(1.0);
        one.LinePattern = LinePattern.Dashed;
        one.Color = Colors.Black;
        one.LegendText = "1 bit";
        for (int p = 0; p < BitParts.Length; p++)
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = BitParts[p].Replace('_', ' '), FillColor = PartColors[p] });
        plt.ShowLegend(Alignment.UpperRight);
        plt.Axes.Bottom.SetTicks([.. Enumerable.Range(0, columns.Count).Select(i => (double)i)], [.. columns.Select(c => c.Label)]);
        plt.Axes.SetLimits(-0.6, columns.Count - 0.4, 0, 1.35 * Math.Max(1.0, columns.Max(c => c.Parts.Values.Sum())));
        plt.Title($"Expert storage, bits per parameter (dense: {d.DenseBits:F1})");
        plt.YLabel("bits / parameter");
    }

    private static void CePanel(Plot plt, Data d)
    {
        GroupedBars(plt, d.Splits, [("dense", d.DenseCe, DenseColor), ("compressed", d.CompressedCe, CompressedColor)], "F4");
        double lo = d.DenseCe.Concat(d.CompressedCe).Min(), hi = d.DenseCe.Concat(d.CompressedCe).Max();
        plt.Axes.SetLimitsY(lo - 0.1 * (hi - lo + 0.05), hi + 0.25 * (hi - lo + 0.05)); // zoomed: the bars differ in the 4th decimal
        plt.Title("Cross-entropy per split, nats (lower is better; axis zoomed)");
        plt.YLabel("mean CE (nats)");
    }

    private static void SpeedPanel(Plot plt, Data d)
    {
        GroupedBars(plt, [.. d.Speeds.Select(s => s.Name)],
            [("dense", [.. d.Speeds.Select(s => s.Dense)], DenseColor), ("compressed", [.. d.Speeds.Select(s => s.Compressed)], CompressedColor)], "F0");
        plt.Axes.SetLimitsY(0, 1.25 * d.Speeds.Max(s => Math.Max(s.Dense, s.Compressed)));
        plt.Title("Speed, tokens per second (same run, same threads)");
        plt.YLabel("tokens / s");
    }

    private static void GroupedBars(Plot plt, string[] categories, (string Name, double[] Values, Color Color)[] series, string format)
    {
        double width = 0.8 / series.Length;
        var bars = new List<Bar>();
        for (int s = 0; s < series.Length; s++)
        {
            for (int c = 0; c < categories.Length; c++)
                bars.Add(new Bar
                {
                    Position = c + (s - (series.Length - 1) / 2.0) * width, Value = series[s].Values[c], FillColor = series[s].Color,
                    Size = width * 0.95, Label = series[s].Values[c].ToString(format),
                });
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].Name, FillColor = series[s].Color });
        }
        var plot = plt.Add.Bars(bars);
        plot.ValueLabelStyle.FontSize = 13;
        plt.ShowLegend(Alignment.UpperRight);
        plt.Axes.Bottom.SetTicks([.. Enumerable.Range(0, categories.Length).Select(i => (double)i)], categories);
        plt.Axes.SetLimitsX(-0.6, categories.Length - 0.4);
    }

    private static void Heatmap(Plot plt, string[] groups, double[][] values, string title, string scale)
    {
        int experts = values.Max(v => v.Length);
        var grid = new double[groups.Length, experts];
        for (int g = 0; g < groups.Length; g++)
            for (int e = 0; e < experts; e++) grid[g, e] = e < values[g].Length ? values[g][e] : double.NaN;
        var hm = plt.Add.Heatmap(grid);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        hm.Extent = new CoordinateRect(-0.5, experts - 0.5, groups.Length - 0.5, -0.5); // row g at y = g, expert e at x = e
        var bar = plt.Add.ColorBar(hm);
        bar.Label = scale;
        plt.Axes.Left.SetTicks([.. Enumerable.Range(0, groups.Length).Select(i => (double)i)], groups);
        plt.Axes.Bottom.SetTicks([.. Enumerable.Range(0, experts).Select(i => (double)i)], [.. Enumerable.Range(0, experts).Select(i => i.ToString())]);
        plt.Axes.SetLimits(-0.5, experts - 0.5, groups.Length - 0.5, -0.5);
        plt.Title(title);
        plt.XLabel("expert");
    }

    private static void SlicePanel(Plot plt, DemoSlice.Result? slice)
    {
        if (slice == null)
        {
            plt.Title("Real-width slice: skipped (--slice-experts 0)");
            return;
        }
        var zero = slice.ZeroFractions.SelectMany(z => z).ToArray();
        var err = slice.RelativeErrors.SelectMany(z => z).ToArray();
        var labels = slice.Kinds.SelectMany(k => Enumerable.Range(0, slice.Experts).Select(e => e % 4 == 0 ? $"{k} {e}" : "")).ToArray();
        var zs = plt.Add.Scatter(Enumerable.Range(0, zero.Length).Select(i => (double)i).ToArray(), zero);
        zs.LegendText = "zero fraction";
        zs.Color = Colors.Orange;
        zs.LineWidth = 0;
        zs.MarkerSize = 8;
        var es = plt.Add.Scatter(Enumerable.Range(0, err.Length).Select(i => (double)i).ToArray(), err);
        es.LegendText = "relative output error ‖(W−Q)X‖² / ‖WX‖²";
        es.Color = Colors.SteelBlue;
        es.LineWidth = 0;
        es.MarkerSize = 8;
        plt.ShowLegend(Alignment.MiddleRight);
        plt.Axes.Bottom.SetTicks([.. Enumerable.Range(0, labels.Length).Select(i => (double)i)], labels);
        plt.Axes.SetLimits(-1, labels.Length, 0, 1.05);
        plt.Title($"Real-width slice: synthetic weights at switch-base-128 shapes");
        plt.XLabel($"expert matrix (wi 3072×768, wo 768×3072): {slice.Stats.ExpertBitsPerParam:F3} bits/param, {100 * slice.Stats.ZeroFraction:F1}% zeros");
    }
}
