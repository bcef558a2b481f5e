package io.loraspark.pipeline.sweep;

import java.util.ArrayList;
import java.util.List;

/**
 * Successive halving (Jamieson and Talwalkar 2016, arXiv:1502.07943; as in Hyperband, Li et al.
 * 2018): every round trains the surviving adapters to the next rung and keeps the best 1/eta of
 * those that finished it, until the last rung (the longest adapter's full length), where all
 * survivors finish.
 */
final class SuccessiveHalving {
  private SuccessiveHalving() {}

  /**
   * The rungs, in steps: {@code min_steps · eta^i} below {@code maxSteps} (min_steps 0: {@code
   * maxSteps / eta²}, at least 1), then {@code maxSteps}; only {@code maxSteps} when pruning is
   * off.
   */
  static List<Integer> rungs(SweepConfig.Pruning pruning, int maxSteps) {
    List<Integer> out = new ArrayList<>();
    if (pruning.enabled()) {
      int eta = pruning.eta();
      int r = pruning.minSteps() > 0 ? pruning.minSteps() : Math.max(1, maxSteps / (eta * eta));
      while (r < maxSteps) {
        out.add(r);
        r *= eta;
      }
    }
    out.add(maxSteps);
    return out;
  }

  /** The adapters of one round's ranking that go on and those that stop (pruned) here. */
  record Cut<T>(List<T> kept, List<T> dropped) {}

  /**
   * Splits {@code ranked} (the round's finished adapters, best first) after the best {@code ceil(n
   * / eta)}, at least 1; after the last rung nothing is dropped.
   */
  static <T> Cut<T> cut(List<T> ranked, int eta, boolean lastRung) {
    int keep =
        lastRung ? ranked.size() : Math.max(1, (int) Math.ceil(ranked.size() / (double) eta));
    keep = Math.min(keep, ranked.size());
    return new Cut<>(
        List.copyOf(ranked.subList(0, keep)), List.copyOf(ranked.subList(keep, ranked.size())));
  }
}
