package io.loraspark.pipeline.report;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.train.loop.AdapterStatus;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The headline facts of a run, computed once for both renderers.
 *
 * @param adapters leaderboard rows
 * @param ok adapters that finished
 * @param pruned adapters stopped early by successive halving
 * @param failed adapters that failed or never ran
 * @param best the top leaderboard row when it finished, else empty
 * @param baseEvalLoss the base model's eval loss, NaN when not measured
 */
record Summary(
    int adapters, int ok, int pruned, int failed, Optional<RunData.Row> best, double baseEvalLoss) {

  static Summary of(RunData run) {
    int ok = run.withStatus(AdapterStatus.OK).size();
    int pruned = run.withStatus(AdapterStatus.PRUNED).size();
    Optional<RunData.Row> best =
        run.board().stream().findFirst().filter(r -> r.status() == AdapterStatus.OK);
    return new Summary(
        run.board().size(),
        ok,
        pruned,
        run.board().size() - ok - pruned,
        best,
        Charts.baseEvalLoss(run));
  }

  /** run.json's facts for the report's header, as (label, value) pairs, absent ones left out. */
  static List<String[]> meta(JsonNode j) {
    List<String[]> out = new ArrayList<>();
    for (String[] kv :
        new String[][] {
          {"Finished", j.path("finished").asText("")},
          {"Spark master", j.path("spark_master").asText("")},
          {"Spark", j.path("spark_version").asText("")},
          {"Took", j.has("seconds") ? Tables.fixed(j.path("seconds").asDouble(), 1) + " s" : ""},
          {"Model", j.path("model").asText("")},
          {"Data", j.path("data").asText("")}
        }) {
      if (!kv[1].isEmpty()) {
        out.add(kv);
      }
    }
    return out;
  }

  /** The best adapter's eval loss, NaN when there is none. */
  double bestEvalLoss() {
    return best.map(r -> r.number("eval_loss")).orElse(Double.NaN);
  }

  /** One sentence: the best adapter against the base model, or why there is none. */
  String headline() {
    if (best.isEmpty()) {
      return "No adapter finished, so there is no best adapter.";
    }
    String s =
        String.format(
            java.util.Locale.ROOT,
            "Best adapter %s: eval loss %s (perplexity %s)",
            best.get().id(),
            Tables.fixed(bestEvalLoss(), 4),
            Tables.fixed(Math.exp(bestEvalLoss()), 2));
    if (!Double.isFinite(baseEvalLoss)) {
      return s + ".";
    }
    return s
        + String.format(
            java.util.Locale.ROOT,
            " vs the base model's %s (perplexity %s): perplexity %s.",
            Tables.fixed(baseEvalLoss, 4),
            Tables.fixed(Math.exp(baseEvalLoss), 2),
            change(100 * (Math.exp(bestEvalLoss() - baseEvalLoss) - 1)));
  }

  private static String change(double pct) {
    return Tables.fixed(Math.abs(pct), 1) + (pct <= 0 ? "% lower" : "% higher");
  }
}
