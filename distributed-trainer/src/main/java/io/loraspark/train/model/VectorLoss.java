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
    eachRow(
        logits,
        targets.length,
        (x, r, base, cols) -> {
          if (targets[r] < 0) {
            return;
          }
          float xt = x.getFloat(base + targets[r] * 4);
          float max = VectorMath.maxRow(x, base, cols);
          double sum = VectorMath.expRow(x, base, cols, max);
          nll[r] = StrictMath.log(sum) + max - xt;
          invSum[r] = 1.0 / sum;
        });
  }

  @Override
  public void backward(INDArray logits, int[] targets, double[] weight, double[] invSum) {
    eachRow(
        logits,
        targets.length,
        (x, r, base, cols) -> {
          if (weight[r] == 0.0) {
            VectorMath.scaleRow(x, base, cols, 0f);
            return;
          }
          VectorMath.scaleRow(x, base, cols, (float) (weight[r] * invSum[r]));
          int t = base + targets[r] * 4;
          x.putFloat(t, (float) (x.getFloat(t) - weight[r]));
        });
  }

  /** The work on one row r of the logits, whose first column is at byte {@code base} of x. */
  private interface Row {
    void run(ByteBuffer x, int r, int base, int cols);
  }

  /** Runs {@code row} on rows [0, n) of the logits, split over the kernel threads. */
  private static void eachRow(INDArray logits, int n, Row row) {
    assert Kernels.vector(logits) : Kernels.UNFIT;
    ByteBuffer x = buffer(logits);
    int off = offset(logits);
    int cols = (int) logits.columns();
    KernelThreads.rows(
        n,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            row.run(x, r, off + r * cols * 4, cols);
          }
        });
  }
}
