package io.loraspark.train.optim;

import io.loraspark.train.model.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The optimizer's elementwise work on one parameter or gradient, fused on the Vector API ({@link
 * VectorOptim}) or in ND4J ops ({@link Nd4jOptim}, the reference; the two give the same bits).
 * Chosen once per array set by {@link #of}: {@link AdamW} for each parameter when it is built,
 * {@link GradClip} for each gradient it is given. Stateless: one shared instance each.
 */
interface OptimizerKernels {
  /**
   * One AdamW update in place in p, m and v, the math of {@link AdamW}'s class comment.
   *
   * @param scratch a temporary of p's shape (the ND4J path only)
   * @param lrP this parameter's learning rate, lr · lrMultiplier
   * @param biasCorrection1 1 − β1^t
   * @param biasCorrection2Sqrt sqrt(1 − β2^t)
   */
  void adamW(
      INDArray p,
      INDArray g,
      INDArray m,
      INDArray v,
      INDArray scratch,
      AdamWConfig cfg,
      double lrP,
      double biasCorrection1,
      double biasCorrection2Sqrt);

  /** Σ g² over every element, accumulated in double whatever g's dtype. */
  double sumSquares(INDArray g);

  /**
   * g ← g · c, in place, with {@code c} rounded to g's float type as ND4J's scalar ops do (so both
   * paths give the same bits).
   */
  void scale(INDArray g, double c);

  /** The fused kernels when {@link Kernels#vector} accepts every array, else the ND4J ones. */
  static OptimizerKernels of(INDArray... arrays) {
    return Kernels.vector(arrays) ? VectorOptim.INSTANCE : Nd4jOptim.INSTANCE;
  }
}
