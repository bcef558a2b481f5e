package io.loraspark.train.loop;

/**
 * One optimizer step of one adapter.
 *
 * @param trainLoss mean train loss over the step's micro-batches (nats)
 * @param evalLoss eval loss measured after this step, NaN when not measured
 * @param gradNorm global gradient norm before clipping
 * @param tokens scored training tokens in this step
 * @param tokensPerSecond input tokens per second of the fused step, shared by its adapters
 */
public record StepMetrics(
    String adapterId,
    int step,
    double trainLoss,
    double evalLoss,
    double lr,
    double gradNorm,
    long tokens,
    double tokensPerSecond)
    implements java.io.Serializable {}
