package io.loraspark.pipeline.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The run report of a sweep: reads a run directory written by {@link
 * io.loraspark.pipeline.sweep.SweepRunner} ({@code leaderboard.csv}, {@code metrics.csv}, {@code
 * run.json}) and writes {@code report.html} (self-contained: inline CSS, charts as embedded PNG, no
 * scripts or external resources) and {@code report.md} (the same content, charts as PNG files in
 * {@code report/}).
 *
 * <p>Sections: summary (adapter counts, best adapter against the base model, as loss and
 * perplexity), leaderboard, loss curves per adapter, eval loss against LoRA rank and lr_ratio,
 * pruning rounds, and the resolved configuration. Every file is written to a temporary sibling and
 * renamed into place, so a reader never sees half a report; PNGs left over from an earlier report
 * of the same run are removed.
 */
public final class RunReport {
  /** The HTML report's file name in the run directory. */
  public static final String HTML = "report.html";

  /** The Markdown report's file name in the run directory. */
  public static final String MARKDOWN = "report.md";

  /** The directory, beside the reports, that holds the Markdown report's PNGs. */
  public static final String IMAGES = "report";

  private RunReport() {}

  /**
   * Writes the run's reports.
   *
   * @param runDir a sweep run directory
   * @return the written {@code report.html}; {@code report.md} is its sibling
   * @throws IllegalArgumentException naming the directory or file when the run directory, one of
   *     its files, or a value in them is missing or malformed
   * @throws UncheckedIOException when a report file cannot be written, naming it
   */
  public static Path write(Path runDir) {
    RunData run = RunData.load(runDir);
    Summary summary = Summary.of(run);
    List<Charts.Figure> figures = Charts.all(run);
    Path images = runDir.resolve(IMAGES);
    try {
      Files.createDirectories(images);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + images + ": " + e.getMessage(), e);
    }
    for (Charts.Figure f : figures) {
      writeAtomically(images.resolve(f.name() + ".png"), f.png());
    }
    removeStaleImages(images, figures);
    writeAtomically(
        runDir.resolve(MARKDOWN),
        MarkdownReport.render(run, summary, figures, IMAGES).getBytes(StandardCharsets.UTF_8));
    Path html = runDir.resolve(HTML);
    writeAtomically(
        html, HtmlReport.render(run, summary, figures).getBytes(StandardCharsets.UTF_8));
    return html;
  }

  private static void removeStaleImages(Path images, List<Charts.Figure> figures) {
    Set<String> current = figures.stream().map(f -> f.name() + ".png").collect(Collectors.toSet());
    try (Stream<Path> s = Files.list(images)) {
      for (Path p : s.toList()) {
        String name = p.getFileName().toString();
        if (name.endsWith(".png") && !current.contains(name)) {
          Files.delete(p);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot tidy " + images + ": " + e.getMessage(), e);
    }
  }

  private static void writeAtomically(Path file, byte[] bytes) {
    Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
    try {
      Files.write(tmp, bytes);
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }
}
