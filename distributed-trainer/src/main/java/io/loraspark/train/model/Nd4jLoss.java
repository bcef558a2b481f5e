package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/** {@link LossKernels} in ND4J ops (any dtype): the reference. */
final class Nd4jLoss implements LossKernels {
  @Override
  public void forward(INDArray logits, int[] targets, double[] nll, double[] invSum) {
    logits.subiColumnVector(logits.max(true, 1));
    double[] shifted = new double[targets.length];
    for (int i = 0; i < targets.length; i++) {
      shifted[i] = targets[i] < 0 ? 0 : logits.getDouble(i, targets[i]);
    }
    Transforms.exp(logits, false);
    double[] sum = logits.sum(true, 1).castTo(DataType.DOUBLE).toDoubleVector();
    for (int i = 0; i < targets.length; i++) {
      nll[i] = Math.log(sum[i]) - shifted[i];
      invSum[i] = 1.0 / sum[i];
    }
  }

  @Override
  public void backward(INDArray logits, int[] targets, double[] weight, double[] invSum) {
    int n = targets.length;
    double[] scale = new double[n];
    for (int i = 0; i < n; i++) {
      scale[i] = weight[i] * invSum[i];
    }
    logits.muliColumnVector(Nd4j.createFromArray(scale).castTo(logits.dataType()).reshape(n, 1));
    for (int i = 0; i < n; i++) {
      if (weight[i] != 0.0) {
        logits.putScalar(i, targets[i], logits.getDouble(i, targets[i]) - weight[i]);
      }
    }
  }
}
