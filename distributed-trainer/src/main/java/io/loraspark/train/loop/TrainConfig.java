package io.loraspark.train.loop;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.optim.LrSchedule;

/**
 * How one adapter is trained.
 *
 * @param steps optimizer steps
 * @param batchSize rows per micro-batch
 * @param gradAccum micro-batches per optimizer step
 * @param lr peak learning rate of A (B gets lr * lrRatio, LoRA+)
 * @param lrRatio LoRA+ ratio λ (Hayou et al. 2024); 1 is plain LoRA
 * @param weightDecay AdamW decoupled weight decay
 * @param warmupSteps linear warmup steps
 * @param schedule decay after warmup
 * @param maxGradNorm global-norm clip, 0 for none
 * @param evalEvery steps between eval-loss measurements (and at the last step), 0 for last only
 * @param seed the adapter's seed (init, data order, dropout)
 */
public record TrainConfig(
    int steps,
    int batchSize,
    int gradAccum,
    double lr,
    double lrRatio,
    double weightDecay,
    int warmupSteps,
    LrSchedule.Kind schedule,
    double maxGradNorm,
    int evalEvery,
    long seed)
    implements java.io.Serializable {

  public TrainConfig {
    ModelConfig.require(steps > 0, "steps must be > 0 but was %d", steps);
    ModelConfig.require(batchSize > 0, "batch_size must be > 0 but was %d", batchSize);
    ModelConfig.require(gradAccum > 0, "grad_accum must be > 0 but was %d", gradAccum);
    ModelConfig.require(lr > 0, "lr must be > 0 but was %s", lr);
    ModelConfig.require(lrRatio > 0, "lr_ratio must be > 0 but was %s", lrRatio);
    ModelConfig.require(weightDecay >= 0, "weight_decay must be >= 0 but was %s", weightDecay);
    ModelConfig.require(
        warmupSteps >= 0 && warmupSteps <= steps,
        "warmup_steps must be in [0, steps=%d] but was %d",
        steps,
        warmupSteps);
    ModelConfig.require(maxGradNorm >= 0, "max_grad_norm must be >= 0 but was %s", maxGradNorm);
    ModelConfig.require(evalEvery >= 0, "eval_every must be >= 0 but was %d", evalEvery);
  }

  /** The defaults of {@code lora-pipeline train}: lr 2e-4 cosine with 10% warmup, clip 1.0. */
  public static TrainConfig defaults(
      int steps, int batchSize, double lr, double lrRatio, long seed) {
    return new TrainConfig(
        steps, batchSize, 1, lr, lrRatio, 0.0, steps / 10, LrSchedule.Kind.COSINE, 1.0, 0, seed);
  }
}
