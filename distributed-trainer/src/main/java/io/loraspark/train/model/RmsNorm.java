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
    if (Kernels.vector(x, w, rInv, out)) {
      VectorKernels.rmsForward(
          Kernels.buffer(x),
          Kernels.offset(x),
          Kernels.buffer(w),
          Kernels.offset(w),
          (float) eps,
          Kernels.buffer(rInv),
          Kernels.offset(rInv),
          Kernels.buffer(out),
          Kernels.offset(out),
          (int) x.rows(),
          (int) x.columns());
      return;
    }
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
   * @param scratch1 scratch, [N, C] (the ND4J path only)
   * @param scratch2 scratch, [N, C] (the ND4J path only)
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
    if (Kernels.vector(x, w, rInv, dOut, dx)) {
      VectorKernels.rmsBackward(
          Kernels.buffer(x),
          Kernels.offset(x),
          Kernels.buffer(w),
          Kernels.offset(w),
          Kernels.buffer(rInv),
          Kernels.offset(rInv),
          Kernels.buffer(dOut),
          Kernels.offset(dOut),
          Kernels.buffer(dx),
          Kernels.offset(dx),
          (int) x.rows(),
          (int) x.columns());
      return;
    }
    INDArray g = scratch1.assign(dOut).muliRowVector(w);
    INDArray xn = scratch2.assign(x).muliColumnVector(rInv);
    INDArray dot = g.mul(xn).mean(true, 1); // [N, 1]
    xn.muliColumnVector(dot);
    g.subi(xn).muliColumnVector(rInv);
    dx.addi(g);
  }
}
