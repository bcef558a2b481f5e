package io.loraspark.train.loop;

import io.loraspark.train.lora.LoraWeights;
import java.util.List;

/**
 * The result of training one adapter: immutable record of what was produced and how.
 *
 * @param status {@link AdapterStatus#OK}, or {@link AdapterStatus#FAILED} with its {@code failure}
 * @param failure why it failed (step and reason), empty when ok
 * @param baseEvalLoss the base model's eval loss on the same eval rows
 */
public record TrainedAdapter(
    AdapterSpec spec,
    LoraWeights weights,
    AdapterStatus status,
    String failure,
    int steps,
    double trainLoss,
    double evalLoss,
    double baseEvalLoss,
    double tokensPerSecond,
    List<StepMetrics> metrics) {

  public TrainedAdapter {
    metrics = List.copyOf(metrics);
  }
}
