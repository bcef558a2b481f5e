package io.loraspark.train.model;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;

import java.nio.ByteBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link LossKernels} fused on the Vector API: max, exp and sum in two passes over each scored row,
 * the gradient in one (see {@link VectorMath}).
 */
final class VectorLoss implements LossKernels {
  @Override
  public void forward(INDArray logits, int[] targets, double[] nll, double[] invSum) {
    assert Kernels.vector(logits) : Kernels.UNFIT;
    crossEntropy(
        buffer(logits),
        offset(logits),
        targets.length,
        (int) logits.columns(),
        targets,
        nll,
        invSum);
  }

  @Override
  public void backward(INDArray logits, int[] targets, double[] weight, double[] invSum) {
    assert Kernels.vector(logits) : Kernels.UNFIT;
    crossEntropyBackward(
        buffer(logits),
        offset(logits),
        targets.length,
        (int) logits.columns(),
        targets,
        weight,
        invSum);
  }

  /** {@link LossKernels#forward} over a [rows, cols] block. */
  static void crossEntropy(
      ByteBuffer x, int off, int rows, int cols, int[] targets, double[] nll, double[] invSum) {
    KernelThreads.rows(
        rows,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            if (targets[r] < 0) {
              continue;
            }
            int base = off + r * cols * 4;
            float xt = x.getFloat(base + targets[r] * 4);
            float max = VectorMath.maxRow(x, base, cols);
            double sum = VectorMath.expRow(x, base, cols, max);
            nll[r] = StrictMath.log(sum) + max - xt;
            invSum[r] = 1.0 / sum;
          }
        });
  }

  /** {@link LossKernels#backward} over a [rows, cols] block. */
  static void crossEntropyBackward(
      ByteBuffer x, int off, int rows, int cols, int[] targets, double[] weight, double[] invSum) {
    KernelThreads.rows(
        rows,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int base = off + r * cols * 4;
            if (weight[r] == 0.0) {
              VectorMath.scaleRow(x, base, cols, 0f);
              continue;
            }
            VectorMath.scaleRow(x, base, cols, (float) (weight[r] * invSum[r]));
            int t = base + targets[r] * 4;
            x.putFloat(t, (float) (x.getFloat(t) - weight[r]));
          }
        });
  }
}
