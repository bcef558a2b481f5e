package io.loraspark.pipeline.report;

import io.loraspark.train.loop.AdapterStatus;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import javax.imageio.ImageIO;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The report's charts, drawn by XChart and encoded as PNG at twice their display size (sharp on
 * high-density screens). Rendering needs no display: {@link #render} sets {@code java.awt.headless}
 * unless the caller already chose.
 */
final class Charts {
  /** Loss curves go to small multiples, one panel per configuration, above this many series. */
  static final int MAX_SERIES_IN_ONE_CHART = 8;

  private static final int SCALE = 2;
  private static final Color INK = new Color(0x374151);
  private static final Color GRID = new Color(0xE5E7EB);
  private static final Color BASE = new Color(0x9CA3AF);
  private static final Color OK = new Color(0x2563EB);
  private static final Color PRUNED = new Color(0xF59E0B);
  // Tableau 10: distinguishable, colour-blind friendly enough for up to 8 lines
  private static final Color[] PALETTE = {
    new Color(0x4E79A7), new Color(0xF28E2B), new Color(0xE15759), new Color(0x76B7B2),
    new Color(0x59A14F), new Color(0xEDC948), new Color(0xB07AA1), new Color(0xFF9DA7),
    new Color(0x9C755F), new Color(0xBAB0AC)
  };

  /**
   * One rendered chart.
   *
   * @param name file name stem, unique in the report ({@code loss-curves})
   * @param title heading shown above it
   * @param caption one sentence on how to read it
   * @param png the image, {@code width·2 × height·2} pixels
   * @param width display width in CSS pixels
   * @param height display height in CSS pixels
   */
  record Figure(String name, String title, String caption, byte[] png, int width, int height) {}

  private Charts() {}

  /** All charts of the run: loss curves (one chart or small multiples), then the two scatters. */
  static List<Figure> all(RunData run) {
    List<Figure> out = new ArrayList<>(lossCurves(run));
    scatter(run, "lora_rank", "LoRA rank", "eval-vs-rank").ifPresent(out::add);
    scatter(run, "lr_ratio", "lr_ratio", "eval-vs-lr-ratio").ifPresent(out::add);
    return out;
  }

  /** Train loss as lines, eval loss as dots, per adapter; base model's eval loss dashed. */
  static List<Figure> lossCurves(RunData run) {
    Map<String, List<String>> groups = groups(run);
    double base = baseEvalLoss(run);
    String caption =
        "Solid lines: training loss per step. Dashed lines with dots: eval loss where it was"
            + " measured."
            + (Double.isNaN(base) ? "" : " Dashed grey: the base model's eval loss.");
    if (run.curves().size() <= MAX_SERIES_IN_ONE_CHART) {
      XYChart c = chart(880, 420, "step", "loss");
      int i = 0;
      for (List<String> ids : groups.values()) {
        for (String id : ids) {
          addCurve(c, id, run.curves().get(id), PALETTE[i++ % PALETTE.length], true);
        }
      }
      addBaseLine(c, base, minStep(run), maxStep(run));
      capLossAxis(c, run);
      return List.of(
          new Figure("loss-curves", "Loss curves", caption, render(c, 880, 420), 880, 420));
    }
    List<Figure> out = new ArrayList<>();
    int n = 0;
    for (Map.Entry<String, List<String>> g : groups.entrySet()) {
      XYChart c = chart(420, 260, "step", "loss");
      c.getStyler().setLegendVisible(g.getValue().size() > 1);
      int i = 0;
      for (String id : g.getValue()) {
        addCurve(c, id, run.curves().get(id), PALETTE[i++ % PALETTE.length], false);
      }
      addBaseLine(c, base, minStep(run), maxStep(run));
      capLossAxis(c, run);
      String name = String.format(Locale.ROOT, "loss-%02d", ++n);
      out.add(new Figure(name, g.getKey(), caption, render(c, 420, 260), 420, 260));
    }
    return out;
  }

  /**
   * Eval loss of ok and pruned adapters against one setting, on a log2 x axis labelled at powers of
   * two (ranks and lr ratios are swept as such); empty when no adapter has both values. Pruned
   * adapters are scored at the rung where they stopped, so they sit higher by design.
   */
  static Optional<Figure> scatter(RunData run, String column, String xTitle, String name) {
    XYChart c = chart(430, 330, xTitle + " (log₂ scale)", "eval loss");
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    List<AnnotationText> labels = new ArrayList<>();
    for (AdapterStatus status : List.of(AdapterStatus.OK, AdapterStatus.PRUNED)) {
      List<Double> xs = new ArrayList<>();
      List<Double> ys = new ArrayList<>();
      for (RunData.Row r : run.withStatus(status)) {
        double x = r.number(column);
        double y = r.number("eval_loss");
        if (x > 0 && Double.isFinite(x) && Double.isFinite(y)) {
          xs.add(log2(x));
          ys.add(y);
          labels.add(new AnnotationText(shortId(r.id()), log2(x) + 0.12, y, false));
          lo = Math.min(lo, log2(x));
          hi = Math.max(hi, log2(x));
        }
      }
      if (!xs.isEmpty()) {
        XYSeries s = c.addSeries(status.fileName(), xs, ys);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setMarkerColor(status == AdapterStatus.OK ? OK : PRUNED);
      }
    }
    if (c.getSeriesMap().isEmpty()) {
      return Optional.empty();
    }
    // whole-octave bounds: XChart drops every tick label when those at the bounds are blank
    double from = Math.floor(lo) - 1;
    double to = Math.ceil(hi) + 1;
    XYStyler st = c.getStyler();
    st.setLegendPosition(Styler.LegendPosition.OutsideS);
    st.setLegendLayout(Styler.LegendLayout.Horizontal);
    st.setXAxisMin(from);
    st.setXAxisMax(to);
    st.setxAxisTickLabelsFormattingFunction(
        v -> Math.abs(v - Math.rint(v)) < 1e-9 ? Tables.compact(Math.pow(2, Math.rint(v))) : "");
    addBaseLine(c, baseEvalLoss(run), from, to);
    if (labels.size() <= MAX_LABELS) {
      labels.forEach(c::addAnnotation); // which adapter each point is (its aNNN number)
    }
    String caption =
        "Blue: adapters that finished. Amber: adapters pruned early, scored at their last rung."
            + (labels.size() <= MAX_LABELS ? " Labels: adapter number." : "");
    return Optional.of(
        new Figure(name, "Eval loss vs " + column, caption, render(c, 430, 330), 430, 330));
  }

  /** Points labelled up to this many; beyond, labels would cover each other. */
  private static final int MAX_LABELS = 16;

  /** {@code a003} of {@code a003-r8-x8}: the adapter's number, short enough to label a point. */
  private static String shortId(String id) {
    int dash = id.indexOf('-');
    return dash > 0 ? id.substring(0, dash) : id;
  }

  /**
   * The loss axis' top: 1.3 × the base model's eval loss, or the 95th percentile of the training
   * losses if higher, so one noisy early batch does not squash the curves that matter.
   */
  static double lossAxisMax(RunData run) {
    List<Double> all = new ArrayList<>();
    for (List<RunData.Point> points : run.curves().values()) {
      for (RunData.Point p : points) {
        if (Double.isFinite(p.trainLoss())) {
          all.add(p.trainLoss());
        }
        if (Double.isFinite(p.evalLoss())) {
          all.add(p.evalLoss());
        }
      }
    }
    if (all.isEmpty()) {
      return Double.NaN;
    }
    all.sort(null);
    double p95 = all.get((int) Math.floor(0.95 * (all.size() - 1)));
    double base = baseEvalLoss(run);
    return Double.isNaN(base) ? p95 : Math.max(p95, 1.3 * base);
  }

  private static double log2(double x) {
    return Math.log(x) / Math.log(2);
  }

  /** Curve ids grouped by configuration: {@code <id>-repN} under {@code <id>}, board order. */
  static Map<String, List<String>> groups(RunData run) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    run.board().forEach(r -> out.put(r.id(), new ArrayList<>()));
    for (String id : run.curves().keySet()) {
      String key = id.replaceFirst("-rep\\d+$", "");
      out.computeIfAbsent(out.containsKey(key) ? key : id, k -> new ArrayList<>()).add(id);
    }
    out.values().removeIf(List::isEmpty);
    return out;
  }

  private static void capLossAxis(XYChart c, RunData run) {
    double max = lossAxisMax(run);
    if (Double.isFinite(max)) {
      c.getStyler().setYAxisMax(max);
    }
  }

  private static void addCurve(
      XYChart c, String id, List<RunData.Point> points, Color color, boolean legend) {
    List<Integer> ts = new ArrayList<>();
    List<Double> train = new ArrayList<>();
    List<Integer> es = new ArrayList<>();
    List<Double> eval = new ArrayList<>();
    for (RunData.Point p : points) {
      if (Double.isFinite(p.trainLoss())) {
        ts.add(p.step());
        train.add(p.trainLoss());
      }
      if (Double.isFinite(p.evalLoss())) {
        es.add(p.step());
        eval.add(p.evalLoss());
      }
    }
    if (!ts.isEmpty()) {
      XYSeries s = c.addSeries(id, ts, train);
      s.setMarker(SeriesMarkers.NONE);
      s.setLineColor(color);
      s.setLineWidth(2f);
      s.setShowInLegend(legend || c.getStyler().isLegendVisible());
    }
    if (!es.isEmpty()) {
      XYSeries s = c.addSeries(id + " (eval)", es, eval);
      s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
      s.setLineStyle(SeriesLines.DASH_DASH);
      s.setLineColor(color);
      s.setMarker(SeriesMarkers.CIRCLE);
      s.setMarkerColor(color);
      s.setShowInLegend(ts.isEmpty());
    }
  }

  private static void addBaseLine(XYChart c, double base, double from, double to) {
    if (!Double.isFinite(base) || c.getSeriesMap().isEmpty()) {
      return;
    }
    XYSeries s = c.addSeries("base model", new double[] {from, to}, new double[] {base, base});
    s.setMarker(SeriesMarkers.NONE);
    s.setLineColor(BASE);
    s.setLineStyle(SeriesLines.DASH_DASH);
    s.setLineWidth(1.2f);
  }

  private static XYChart chart(int width, int height, String xTitle, String yTitle) {
    XYChart c =
        new XYChartBuilder()
            .width(width)
            .height(height)
            .xAxisTitle(xTitle)
            .yAxisTitle(yTitle)
            .build();
    XYStyler st = c.getStyler();
    st.setChartTitleVisible(false);
    st.setChartBackgroundColor(Color.WHITE);
    st.setPlotBackgroundColor(Color.WHITE);
    st.setPlotBorderVisible(false);
    st.setPlotGridLinesColor(GRID);
    st.setPlotGridLinesStroke(new BasicStroke(1f));
    st.setAxisTickMarksColor(GRID);
    st.setChartFontColor(INK);
    st.setAxisTickLabelsColor(INK);
    st.setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    st.setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
    st.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
    st.setLegendBorderColor(Color.WHITE);
    st.setLegendPosition(Styler.LegendPosition.OutsideE);
    st.setMarkerSize(7);
    st.setChartPadding(8);
    st.setYAxisDecimalPattern("0.00");
    st.setLocale(Locale.ROOT);
    return c;
  }

  /** The chart as PNG bytes at {@link #SCALE}× its size. */
  static byte[] render(XYChart chart, int width, int height) {
    if (System.getProperty("java.awt.headless") == null) {
      System.setProperty("java.awt.headless", "true");
    }
    BufferedImage img =
        new BufferedImage(width * SCALE, height * SCALE, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(
          RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.scale(SCALE, SCALE);
      chart.paint(g, width, height);
    } finally {
      g.dispose();
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ImageIO.write(img, "png", out);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot encode a chart as PNG: " + e.getMessage(), e);
    }
    return out.toByteArray();
  }

  static double baseEvalLoss(RunData run) {
    return run.board().stream()
        .mapToDouble(r -> r.number("base_eval_loss"))
        .filter(Double::isFinite)
        .findFirst()
        .orElse(Double.NaN);
  }

  private static int minStep(RunData run) {
    return run.curves().values().stream()
        .flatMap(List::stream)
        .mapToInt(RunData.Point::step)
        .min()
        .orElse(0);
  }

  private static int maxStep(RunData run) {
    return run.curves().values().stream()
        .flatMap(List::stream)
        .mapToInt(RunData.Point::step)
        .max()
        .orElse(1);
  }
}
