package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@link RopeKernels} in ND4J ops (any dtype), the reference: {@code rotate_half} is a signed
 * permutation, applied as one small GEMM with {@link #rotate}.
 */
final class Nd4jRope implements RopeKernels {
  private final Rope rope;
  private final INDArray rotate; // [HD, HD]: rotate_half(x) = x @ rotate

  Nd4jRope(Rope rope, DataType dtype) {
    this.rope = rope;
    int hd = rope.headDim;
    int half = hd / 2;
    double[][] r = new double[hd][hd];
    for (int j = 0; j < half; j++) {
      r[j + half][j] = -1; // out[j] = -x[j + half]
      r[j][j + half] = 1; // out[j + half] = x[j]
    }
    this.rotate = Nd4j.create(r).castTo(dtype);
  }

  @Override
  public void fillTables(int[] positions, int heads, INDArray cos, INDArray sin) {
    double[] c = new double[positions.length * heads * rope.headDim];
    double[] s = new double[c.length];
    rope.tables(
        positions,
        heads,
        (i, cv, sv) -> {
          c[i] = cv;
          s[i] = sv;
        });
    cos.assign(Nd4j.createFromArray(c).reshape(cos.shape()));
    sin.assign(Nd4j.createFromArray(s).reshape(sin.shape()));
  }

  @Override
  public void forward(INDArray x, INDArray cos, INDArray sin, INDArray scratch) {
    Nd4j.gemm(x, rotate, scratch, false, false, 1.0, 0.0);
    scratch.muli(sin);
    x.muli(cos).addi(scratch);
  }

  @Override
  public void backward(
      INDArray dx, INDArray cos, INDArray sin, INDArray scratch1, INDArray scratch2) {
    scratch1.assign(dx).muli(sin);
    Nd4j.gemm(scratch1, rotate, scratch2, false, true, 1.0, 0.0);
    dx.muli(cos).addi(scratch2);
  }
}
