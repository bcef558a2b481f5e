package io.loraspark.train.loop;

import java.io.Serializable;
import java.util.List;

/**
 * What became of one adapter: the one outcome record. {@link FusedTrainer} makes it (inside the
 * {@link TrainedAdapter} that also holds the weights); a Spark task ({@code GroupTask}) completes
 * it with where it saved the adapter ({@link #savedTo}) and sends it to the driver, which keeps it
 * in the round journal, aggregates replicas and ranks it; the Spark ML estimator and {@code train}
 * read their summaries from it.
 *
 * @param status OK or FAILED (the driver adds PRUNED)
 * @param failure step and reason when failed, else empty
 * @param steps optimizer steps done so far
 * @param trainLoss mean training loss of the last step (nats per token; NaN before a step)
 * @param evalLoss eval loss at {@code steps} (NaN when there are no eval rows)
 * @param baseEvalLoss the base model's loss on the same eval rows
 * @param tokensPerSecond mean training throughput over the steps
 * @param trainableParams adapter parameters
 * @param metrics every optimizer step's metrics, in order
 * @param adapterDir where the PEFT adapter of this state was written; null until saved
 * @param attempt the Spark task attempt that produced this (0 the first time, and until saved)
 * @param wallSeconds wall time of the task's training in this round (shared by its group); NaN
 *     until saved
 */
public record AdapterOutcome(
    String adapterId,
    AdapterStatus status,
    String failure,
    int steps,
    double trainLoss,
    double evalLoss,
    double baseEvalLoss,
    double tokensPerSecond,
    long trainableParams,
    List<StepMetrics> metrics,
    String adapterDir,
    int attempt,
    double wallSeconds)
    implements Serializable {
  public AdapterOutcome {
    metrics = List.copyOf(metrics);
  }

  /**
   * A trainer's outcome, not yet saved.
   *
   * @param metrics every optimizer step's metrics: the train loss is the last one's, the throughput
   *     their mean
   */
  static AdapterOutcome trained(
      AdapterSpec spec,
      String failure,
      int steps,
      double evalLoss,
      double baseEvalLoss,
      long trainableParams,
      List<StepMetrics> metrics) {
    double tps = metrics.stream().mapToDouble(StepMetrics::tokensPerSecond).average().orElse(0);
    double trainLoss = metrics.isEmpty() ? Double.NaN : metrics.get(metrics.size() - 1).trainLoss();
    return new AdapterOutcome(
        spec.id(),
        AdapterStatus.of(failure),
        failure,
        steps,
        trainLoss,
        evalLoss,
        baseEvalLoss,
        tps,
        trainableParams,
        metrics,
        null,
        0,
        Double.NaN);
  }

  /** This outcome saved to {@code dir} by task attempt {@code attempt} in {@code wallSeconds}. */
  public AdapterOutcome savedTo(String dir, int attempt, double wallSeconds) {
    return new AdapterOutcome(
        adapterId,
        status,
        failure,
        steps,
        trainLoss,
        evalLoss,
        baseEvalLoss,
        tokensPerSecond,
        trainableParams,
        metrics,
        dir,
        attempt,
        wallSeconds);
  }
}
