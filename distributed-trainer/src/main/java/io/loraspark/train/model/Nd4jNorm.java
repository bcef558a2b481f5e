package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** {@link NormKernels} in ND4J ops, one op per arithmetic step (any dtype): the reference. */
final class Nd4jNorm implements NormKernels {
  @Override
  public void forward(INDArray x, INDArray w, double eps, INDArray rInv, INDArray out) {
    out.assign(x).muli(x);
    rInv.assign(out.mean(true, 1)).addi(eps);
    Transforms.pow(rInv, -0.5, false);
    out.assign(x).muliColumnVector(rInv).muliRowVector(w);
  }

  @Override
  public void backward(
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
