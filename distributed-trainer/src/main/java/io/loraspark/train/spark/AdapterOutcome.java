package io.loraspark.train.spark;

import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.StepMetrics;
import java.io.Serializable;
import java.util.List;

/**
 * What a Spark task reports back to the driver for one adapter after a round.
 *
 * @param status OK or FAILED (the driver adds PRUNED)
 * @param failure step and reason when failed, else empty
 * @param steps optimizer steps done so far
 * @param evalLoss eval loss at {@code steps} (NaN when there are no eval rows)
 * @param baseEvalLoss the base model's loss on the same eval rows
 * @param trainableParams adapter parameters
 * @param adapterDir where the PEFT adapter of this state was written
 * @param attempt the Spark task attempt that produced this (0 the first time)
 * @param wallSeconds wall time of the task's training in this round (shared by its group)
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
}
