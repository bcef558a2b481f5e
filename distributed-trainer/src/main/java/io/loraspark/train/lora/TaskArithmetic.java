package io.loraspark.train.lora;

import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Merging of task tensors as PEFT's {@code peft/utils/merge_utils.py} does it, on flat double
 * arrays of one length: task arithmetic (Ilharco et al. 2023, arXiv:2212.04089), TIES (Yadav et al.
 * 2023, arXiv:2306.01708: keep each tensor's top-{@code density} magnitudes, elect a sign per entry
 * by the sum of the trimmed tensors, average the weighted entries that agree with it) and DARE (Yu
 * et al. 2024, arXiv:2311.03099: keep each entry with probability {@code density} and divide by
 * it). The sign election is PEFT's default {@code "total"}. Ties in magnitude are broken towards
 * the lower index; DARE's keep/drop draws come from the caller's seeded generator (PEFT uses
 * torch's global one).
 */
final class TaskArithmetic {
  private TaskArithmetic() {}

  /** {@code Σ_i w_i t_i}. */
  static double[] linear(double[][] tasks, double[] weights) {
    double[] out = new double[tasks[0].length];
    for (int i = 0; i < tasks.length; i++) {
      for (int j = 0; j < out.length; j++) {
        out[j] += weights[i] * tasks[i][j];
      }
    }
    return out;
  }

  /** TIES: magnitude-trim each task to {@code density}, elect signs, disjoint weighted mean. */
  static double[] ties(double[][] tasks, double[] weights, double density) {
    double[][] trimmed = new double[tasks.length][];
    for (int i = 0; i < tasks.length; i++) {
      trimmed[i] = magnitudePrune(tasks[i], density);
    }
    return disjointMerge(trimmed, weights);
  }

  /** DARE linear: drop entries at random (kept with probability density, rescaled), then sum. */
  static double[] dareLinear(
      double[][] tasks, double[] weights, double density, SplittableRandom[] rngs) {
    return linear(randomPrune(tasks, density, rngs), weights);
  }

  /** DARE TIES: DARE's random drop, then TIES' sign election and disjoint weighted mean. */
  static double[] dareTies(
      double[][] tasks, double[] weights, double density, SplittableRandom[] rngs) {
    return disjointMerge(randomPrune(tasks, density, rngs), weights);
  }

  /**
   * PEFT's {@code magnitude_based_pruning}: keeps the {@code ⌊density·n⌋} entries of largest
   * magnitude, zeroes the rest; {@code density ≥ 1} keeps everything.
   */
  static double[] magnitudePrune(double[] t, double density) {
    if (density >= 1) {
      return t.clone();
    }
    int k = (int) (density * t.length);
    double[] out = new double[t.length];
    IntStream.range(0, t.length)
        .boxed()
        .sorted(Comparator.comparingDouble((Integer j) -> -Math.abs(t[j])).thenComparing(j -> j))
        .limit(k)
        .forEach(j -> out[j] = t[j]);
    return out;
  }

  /**
   * PEFT's {@code random_pruning} with rescale: each entry kept when {@code rng.nextDouble() <
   * density} (one draw per entry, in order) and divided by density; {@code density ≥ 1} keeps
   * everything and draws nothing.
   */
  static double[] randomPrune(double[] t, double density, SplittableRandom rng) {
    if (density >= 1) {
      return t.clone();
    }
    double[] out = new double[t.length];
    for (int j = 0; j < t.length; j++) {
      if (rng.nextDouble() < density) {
        out[j] = t[j] / density;
      }
    }
    return out;
  }

  private static double[][] randomPrune(double[][] tasks, double density, SplittableRandom[] rngs) {
    double[][] out = new double[tasks.length][];
    for (int i = 0; i < tasks.length; i++) {
      out[i] = randomPrune(tasks[i], density, rngs[i]);
    }
    return out;
  }

  /**
   * PEFT's {@code calculate_majority_sign_mask("total")} then {@code disjoint_merge} of the
   * weighted tasks: per entry the elected sign is + when {@code Σ_i t_i ≥ 0}; the result is the sum
   * of {@code w_i t_i} over the tasks whose entry has that sign (zero entries never do), divided by
   * their count (at least 1).
   */
  static double[] disjointMerge(double[][] tasks, double[] weights) {
    int n = tasks[0].length;
    double[] out = new double[n];
    for (int j = 0; j < n; j++) {
      double total = 0;
      for (double[] t : tasks) {
        total += t[j];
      }
      double elected = total >= 0 ? 1 : -1;
      double sum = 0;
      int agree = 0;
      for (int i = 0; i < tasks.length; i++) {
        if (Math.signum(tasks[i][j]) == elected) {
          sum += weights[i] * tasks[i][j];
          agree++;
        }
      }
      out[j] = sum / Math.max(1, agree);
    }
    return out;
  }
}
