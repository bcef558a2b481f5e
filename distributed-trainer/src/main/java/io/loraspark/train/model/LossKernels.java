package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Softmax cross-entropy over the vocabulary, forward and backward in place in the logits, fused
 * ({@link VectorLoss}) or in ND4J ops ({@link Nd4jLoss}, the reference). {@link ModelKernels} picks
 * one per workspace. Order of calls: {@code forward → backward} on the same logits.
 */
interface LossKernels {
  /**
   * For each row with a target, {@code nll[r] = log Σ exp(x) − x[target]}; the row becomes {@code
   * exp(x − max)} and {@code invSum[r]} its 1/Σ, which {@link #backward} turns into the gradient.
   * Rows without a target (target &lt; 0) are left untouched by the fused kernel.
   *
   * @param logits [N, V]
   * @param targets next-token target per row, [N], -1 where unscored
   * @param nll out, [N]
   * @param invSum out, [N]
   */
  void forward(INDArray logits, int[] targets, double[] nll, double[] invSum);

  /**
   * Each row becomes {@code weight[r] · (softmax − onehot)}, or zero when its weight is zero.
   *
   * @param logits {@link #forward}'s exponentials in, dLoss/dlogits out, [N, V]
   * @param weight dLoss/dnll per row, [N]
   */
  void backward(INDArray logits, int[] targets, double[] weight, double[] invSum);
}
