package io.loraspark.pipeline.report;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Renders the report as GitHub-flavoured Markdown with the same sections as {@link HtmlReport};
 * charts are linked as PNG files relative to the report ({@code report/<name>.png}). Table cells
 * escape Markdown syntax and HTML ({@code <}, {@code >}, {@code &}) so a value can neither break
 * the table nor inject markup.
 */
final class MarkdownReport {
  private MarkdownReport() {}

  /**
   * @param imageDir the directory of the PNGs relative to the report, e.g. {@code report}
   */
  static String render(RunData run, Summary s, List<Charts.Figure> figures, String imageDir) {
    StringBuilder b = new StringBuilder(16 * 1024);
    header(b, run);
    b.append("\n## Summary\n\n")
        .append(
            String.format(
                "%d adapters: **%d ok**, %d pruned, %d failed.\n\n",
                s.adapters(), s.ok(), s.pruned(), s.failed()))
        .append(cell(s.headline()))
        .append("\n\n## Leaderboard\n\n")
        .append("Best first: finished adapters by eval loss, then pruned, then failed.")
        .append(" Perplexity (ppl) is exp(eval loss).\n\n");
    table(b, Tables.leaderboard(run));
    tree(b, run);
    b.append("\n## Loss curves\n\n");
    List<Charts.Figure> loss = figures.stream().filter(f -> f.name().startsWith("loss")).toList();
    if (loss.isEmpty()) {
      b.append("No metrics were recorded.\n");
    } else {
      b.append(loss.get(0).caption()).append("\n\n");
      loss.forEach(f -> image(b, f, imageDir, loss.size() > 1));
    }
    b.append("\n## Eval loss vs LoRA rank and lr_ratio\n\n");
    List<Charts.Figure> sc = figures.stream().filter(f -> f.name().startsWith("eval-vs")).toList();
    if (sc.isEmpty()) {
      b.append("No finished or pruned adapter has an eval loss.\n");
    } else {
      b.append(sc.get(0).caption()).append("\n\n");
      sc.forEach(f -> image(b, f, imageDir, true));
    }
    rounds(b, run.run());
    String json = run.prettyRunJson();
    String fence = "`".repeat(Math.max(3, longestBacktickRun(json) + 1));
    b.append("\n## Resolved configuration\n\n`run.json` as written by the sweep:\n\n")
        .append(fence)
        .append("json\n")
        .append(json)
        .append('\n')
        .append(fence)
        .append('\n');
    return b.toString();
  }

  /** The adapter tree of a staged sweep as a nested list (nothing for a plain sweep). */
  private static void tree(StringBuilder b, RunData run) {
    List<AdapterTree.Node> roots = AdapterTree.roots(run);
    if (!roots.isEmpty()) {
      b.append("\n## Adapter tree\n\n").append(AdapterTree.NOTE).append("\n\n");
      roots.forEach(n -> node(b, n, 0));
    }
  }

  private static void node(StringBuilder b, AdapterTree.Node n, int depth) {
    b.append("  ".repeat(depth)).append("- ").append(cell(n.label())).append('\n');
    n.children().forEach(c -> node(b, c, depth + 1));
  }

  private static void header(StringBuilder b, RunData run) {
    b.append("# Sweep report · ").append(cell(run.runId())).append("\n\n");
    for (String[] kv : Summary.meta(run.run())) {
      b.append("- **").append(kv[0]).append(":** ").append(code(kv[1])).append('\n');
    }
  }

  private static void rounds(StringBuilder b, JsonNode j) {
    b.append("\n## Pruning rounds\n\n");
    JsonNode p = j.path("pruning");
    if (p.isObject()) {
      b.append(
          String.format(
              "Strategy %s, eta %s, min steps %s, rungs %s.\n\n",
              code(p.path("strategy").asText("?")),
              cell(p.path("eta").asText("?")),
              cell(p.path("minSteps").asText("?")),
              code(j.path("rungs").toString())));
    }
    Tables.Table rounds = Tables.rounds(j);
    if (rounds.rows().isEmpty()) {
      b.append("run.json records no rounds.\n");
    } else {
      table(b, rounds);
    }
  }

  private static void image(StringBuilder b, Charts.Figure f, String dir, boolean titled) {
    if (titled) {
      b.append("### ").append(cell(f.title())).append("\n\n");
    }
    b.append("![")
        .append(cell(f.title()))
        .append("](")
        .append(dir)
        .append('/')
        .append(f.name())
        .append(".png)\n\n");
  }

  private static void table(StringBuilder b, Tables.Table t) {
    b.append('|');
    t.headers().forEach(h -> b.append(' ').append(cell(h)).append(" |"));
    b.append("\n|");
    t.numeric().forEach(n -> b.append(n ? " ---: |" : " --- |"));
    b.append('\n');
    for (List<String> row : t.rows()) {
      b.append('|');
      row.forEach(c -> b.append(' ').append(cell(c)).append(" |"));
      b.append('\n');
    }
  }

  /** Escapes a value for inline Markdown (and a table cell): one line, no markup. */
  static String cell(String s) {
    StringBuilder b = new StringBuilder(s.length() + 8);
    for (char c : s.replaceAll("\\R", " ").toCharArray()) {
      switch (c) {
        case '&' -> b.append("&amp;");
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '\\', '|', '`', '*', '_', '[', ']', '#' -> b.append('\\').append(c);
        default -> b.append(c);
      }
    }
    return b.toString();
  }

  /** Inline code that survives backticks in the value. */
  private static String code(String s) {
    String one = s.replaceAll("\\R", " ");
    String ticks = "`".repeat(longestBacktickRun(one) + 1);
    String pad = one.startsWith("`") || one.endsWith("`") ? " " : "";
    return ticks + pad + one + pad + ticks;
  }

  private static int longestBacktickRun(String s) {
    int best = 0;
    int run = 0;
    for (int i = 0; i < s.length(); i++) {
      run = s.charAt(i) == '`' ? run + 1 : 0;
      best = Math.max(best, run);
    }
    return best;
  }
}
