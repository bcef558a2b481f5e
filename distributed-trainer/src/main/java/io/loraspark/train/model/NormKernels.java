package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * RMSNorm (Zhang &amp; Sennrich 2019) as Llama uses it, {@code y = x / sqrt(mean(x^2) + eps) * w}:
 * the forward/backward pair, fused ({@link VectorNorm}) or in ND4J ops ({@link Nd4jNorm}, the
 * reference). Stateless; {@link ModelKernels} picks one per workspace.
 */
interface NormKernels {
  /**
   * Forward pass.
   *
   * @param x input, [N, C]
   * @param w weight, [C]
   * @param rInv out: 1/sqrt(mean(x^2)+eps) per row, [N, 1], kept for backward
   * @param out out: normalised and scaled rows, [N, C]
   */
  void forward(INDArray x, INDArray w, double eps, INDArray rInv, INDArray out);

  /**
   * Backward pass: with xn = x * rInv and g = dOut * w, {@code dx += rInv * (g - xn * mean(g *
   * xn))}.
   *
   * @param x the forward input, [N, C]
   * @param dOut gradient with respect to the output, [N, C]
   * @param scratch1 scratch, [N, C] (the ND4J path only)
   * @param scratch2 scratch, [N, C] (the ND4J path only)
   * @param dx gradient with respect to x, [N, C]; accumulated in place
   */
  void backward(
      INDArray x,
      INDArray w,
      INDArray rInv,
      INDArray dOut,
      INDArray scratch1,
      INDArray scratch2,
      INDArray dx);
}
