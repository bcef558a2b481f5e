package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** {@link SoftmaxKernels} in ND4J ops over whole rows (any dtype): the reference. */
final class Nd4jSoftmax implements SoftmaxKernels {
  @Override
  public void fillMask(int[] segments, int b, int t, int heads, INDArray mask) {
    double[] m = new double[b * t * t];
    for (int r = 0; r < b; r++) {
      for (int i = 0; i < t; i++) {
        for (int j = 0; j < t; j++) {
          m[(r * t + i) * t + j] = SoftmaxKernels.attends(segments, r, t, i, j) ? 0.0 : MASKED;
        }
      }
    }
    INDArray perRow = Nd4j.createFromArray(m).reshape(b, 1, t, t).castTo(mask.dataType());
    INDArray perHead = mask.reshape(b, heads, t, t);
    for (int h = 0; h < heads; h++) {
      perHead
          .get(NDArrayIndex.all(), NDArrayIndex.point(h), NDArrayIndex.all(), NDArrayIndex.all())
          .assign(perRow.reshape(b, t, t));
    }
  }

  @Override
  public void forward(INDArray probs, INDArray mask, int t) {
    probs.addi(mask);
    Nd4j.exec(new SoftMax(probs, probs, 2));
  }

  @Override
  public void backward(
      INDArray dP, INDArray probs, INDArray dOut, INDArray out, long rows, int t, int hd) {
    INDArray dS = dP.reshape(rows, t);
    INDArray p = probs.reshape(dS.shape());
    INDArray rowDot = dOut.reshape(rows, hd).mul(out.reshape(rows, hd)).sum(true, 1);
    dS.subiColumnVector(rowDot).muli(p);
  }
}
