package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * RMSNorm (Zhang &amp; Sennrich 2019) as Llama uses it: {@code y = x / sqrt(mean(x^2) + eps) * w}.
 */
final class RmsNorm {
  private RmsNorm() {}

  /**
   * Forward pass.
   *
   * @param x input, [N, C]
   * @param w weight, [C]
   * @param rInv out: 1/sqrt(mean(x^2)+eps) per row, [N, 1], kept for backward
   * @param out out: normalised and scaled rows, [N, C]
   */
  static void forward(INDArray x, INDArray w, double eps, INDArray rInv, INDArray out) {
    out.assign(x).muli(x);
    rInv.assign(out.mean(true, 1)).addi(eps);
    Transforms.pow(rInv, -0.5, false);
    out.assign(x).muliColumnVector(rInv).muliRowVector(w);
  }

  /**
   * Backward pass: with xn = x * rInv and g = dOut * w, {@code dx += rInv * (g - xn * mean(g *
   * xn))}.
   *
   * @param x the forward input, [N, C]
   * @param dOut gradient with respect to the output, [N, C]
   * @param scratch1 scratch, [N, C]
   * @param scratch2 scratch, [N, C]
   * @param dx gradient with respect to x, [N, C]; accumulated in place
   */
  static void backward(
      INDArray x,
      INDArray w,
      INDArray rInv,
      INDArray dOut,
      INDArray scratch1,
      INDArray scratch2,
      INDArray dx) {
    INDArray g = scratch1.assign(dOut).muliRowVector(w);
    INDArray xn = scratch2.assign(x).muliColumnVector(rInv);
    INDArray dot = g.mul(xn).mean(true, 1); // [N, 1]
    xn.muliColumnVector(dot);
    g.subi(xn).muliColumnVector(rInv);
    dx.addi(g);
  }
}
