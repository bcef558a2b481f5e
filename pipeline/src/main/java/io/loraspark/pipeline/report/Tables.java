package io.loraspark.pipeline.report;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The report's tables as plain text cells, formatted once for both renderers: the leaderboard (in
 * file order) and the pruning rounds. Cells are unescaped; each renderer escapes for its format.
 */
final class Tables {
  /**
   * A rendered table.
   *
   * @param key stable column keys (the CSV column, or {@code ppl})
   * @param headers column labels
   * @param numeric whether each column is right-aligned
   * @param rows cells, "" for none
   */
  record Table(
      List<String> key, List<String> headers, List<Boolean> numeric, List<List<String>> rows) {}

  private record Column(
      String key, String label, boolean numeric, Function<RunData.Row, String> cell) {}

  private Tables() {}

  /**
   * The leaderboard, one row per adapter in leaderboard order; columns the file lacks are left out.
   */
  static Table leaderboard(RunData run) {
    List<Column> all =
        List.of(
            raw("rank", "#", true),
            raw("adapter_id", "adapter", false),
            raw("method", "method", false),
            raw("lora_rank", "rank", true),
            num("lr_ratio", "lr ratio", Tables::compact),
            num("eval_loss", "eval loss", v -> fixed(v, 4)),
            new Column("ppl", "ppl", true, r -> fixed(Math.exp(r.number("eval_loss")), 2)),
            raw("status", "status", false),
            num("lr", "lr", Tables::compact),
            num("alpha", "alpha", Tables::compact),
            raw("targets", "targets", false),
            raw("steps", "steps", true),
            num("train_loss", "train loss", v -> fixed(v, 4)),
            num("trainable_params", "params", v -> String.format(Locale.ROOT, "%,.0f", v)),
            num("tokens_per_s", "tokens/s", v -> String.format(Locale.ROOT, "%,.0f", v)),
            raw("pruned_at_round", "pruned at", true),
            raw("failure", "failure", false),
            raw("parent", "parent", false),
            raw("depth", "depth", true));
    boolean tree = AdapterTree.isTree(run);
    List<String> header = run.board().isEmpty() ? List.of() : run.board().get(0).columns();
    List<Column> cols =
        all.stream()
            .filter(
                c ->
                    (header.contains(c.key)
                            || (c.key.equals("ppl") && header.contains("eval_loss")))
                        && (tree || !List.of("parent", "depth").contains(c.key)))
            .toList();
    List<List<String>> rows = new ArrayList<>();
    for (RunData.Row r : run.board()) {
      rows.add(cols.stream().map(c -> c.cell.apply(r)).toList());
    }
    return new Table(
        cols.stream().map(Column::key).toList(),
        cols.stream().map(Column::label).toList(),
        cols.stream().map(Column::numeric).toList(),
        rows);
  }

  /** run.json's {@code rounds}: one row per successive-halving round (per stage when staged). */
  static Table rounds(JsonNode run) {
    boolean staged = run.path("rounds").findValue("stage") != null;
    List<List<String>> rows = new ArrayList<>();
    for (JsonNode r : run.path("rounds")) {
      List<String> row = new ArrayList<>();
      if (staged) {
        row.add(r.path("stage").asText(""));
      }
      row.addAll(
          List.of(
              r.path("round").asText(""),
              r.path("rung_steps").asText(""),
              r.path("adapters").asText(""),
              r.path("tasks").asText(""),
              r.path("kept").asText(""),
              r.path("adapters").asInt() - r.path("kept").asInt() > 0
                  ? String.valueOf(r.path("adapters").asInt() - r.path("kept").asInt())
                  : "0",
              r.has("seconds") ? fixed(r.path("seconds").asDouble(), 1) : ""));
      rows.add(row);
    }
    List<String> keys =
        new ArrayList<>(
            List.of("round", "rung_steps", "adapters", "tasks", "kept", "dropped", "seconds"));
    List<String> labels =
        new ArrayList<>(
            List.of(
                "round",
                "trained to step",
                "adapters",
                "Spark tasks",
                "kept",
                "dropped",
                "seconds"));
    List<Boolean> numeric = new ArrayList<>(java.util.Collections.nCopies(keys.size(), true));
    if (staged) {
      keys.add(0, "stage");
      labels.add(0, "stage");
      numeric.add(0, false);
    }
    return new Table(keys, labels, numeric, rows);
  }

  /**
   * A number with at most 4 significant digits and no trailing zeros ({@code 0.0002}, {@code 8}).
   */
  static String compact(double v) {
    if (!Double.isFinite(v)) {
      return "";
    }
    if (v != 0 && Math.abs(v) < 1e-3) {
      return String.format(Locale.ROOT, "%.3e", v).replaceFirst("\\.?0+e", "e");
    }
    return new BigDecimal(v).round(new MathContext(4)).stripTrailingZeros().toPlainString();
  }

  static String fixed(double v, int decimals) {
    return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + decimals + "f", v) : "";
  }

  private static Column raw(String key, String label, boolean numeric) {
    return new Column(key, label, numeric, r -> nonNull(r.text(key)));
  }

  private static Column num(String key, String label, Function<Double, String> format) {
    return new Column(
        key,
        label,
        true,
        r -> {
          double v = r.number(key);
          return Double.isFinite(v) ? format.apply(v) : "";
        });
  }

  private static String nonNull(String s) {
    return s == null ? "" : s;
  }
}
