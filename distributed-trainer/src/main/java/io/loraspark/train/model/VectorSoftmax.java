package io.loraspark.train.model;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;
import static io.loraspark.train.model.VectorMath.L;
import static io.loraspark.train.model.VectorMath.LE;
import static io.loraspark.train.model.VectorMath.S;
import static io.loraspark.train.model.VectorMath.bound;
import static io.loraspark.train.model.VectorMath.load;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link SoftmaxKernels} fused on the Vector API and causal: row i computes columns [0, i] (add and
 * max, exp and sum, scale) and sets the columns after it to 0. The causal mask gives those columns
 * e^(−1e9) = 0 exactly, so this is the full softmax with half the work, and the mask is written
 * only where it is read.
 */
final class VectorSoftmax implements SoftmaxKernels {
  @Override
  public void fillMask(int[] segments, int b, int t, int heads, INDArray mask) {
    assert Kernels.vector(mask) : Kernels.UNFIT;
    // straight into the float buffer, one row built per position and copied to every head;
    // only columns [0, i] of row i, the ones the causal softmax reads
    FloatBuffer out = buffer(mask).asFloatBuffer();
    int base = offset(mask) / 4;
    float[] row = new float[t];
    for (int r = 0; r < b; r++) {
      for (int i = 0; i < t; i++) {
        for (int j = 0; j <= i; j++) {
          row[j] = SoftmaxKernels.attends(segments, r, t, i, j) ? 0f : (float) MASKED;
        }
        for (int h = 0; h < heads; h++) {
          out.put(base + ((r * heads + h) * t + i) * t, row, 0, i + 1);
        }
      }
    }
  }

  /**
   * Over stacked {@code T × T} blocks (one per head): row r is position {@code i = r mod T}, and
   * only its columns [0, i] are computed; columns after i are set to 0.
   */
  @Override
  public void forward(INDArray probs, INDArray mask, int t) {
    assert Kernels.vector(probs, mask) : Kernels.UNFIT;
    ByteBuffer s = buffer(probs);
    ByteBuffer m = buffer(mask);
    int off = offset(probs);
    int moff = offset(mask);
    KernelThreads.rows(
        (int) (probs.length() / t),
        t / 2,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int base = off + r * t * 4;
            int n = r % t + 1;
            float max = addRowMax(s, base, m, moff + r * t * 4, n);
            float sum = VectorMath.expRow(s, base, n, max);
            VectorMath.scaleRow(s, base, n, 1f / sum);
            VectorMath.fill(s, base + n * 4, t - n, 0f);
          }
        });
  }

  /**
   * {@code dP[r] = (dP[r] − Σ_j dOut[r,j]·out[r,j]) ⊙ P[r]}, causal as {@link #forward}: row r
   * computes columns [0, r mod T] and zeroes the rest, where P is 0.
   */
  @Override
  public void backward(
      INDArray dP, INDArray probs, INDArray dOut, INDArray out, long rows, int t, int hd) {
    assert Kernels.vector(dP, probs, dOut, out) : Kernels.UNFIT;
    ByteBuffer dp = buffer(dP);
    ByteBuffer p = buffer(probs);
    ByteBuffer dob = buffer(dOut);
    ByteBuffer ob = buffer(out);
    int dpOff = offset(dP);
    int pOff = offset(probs);
    int doOff = offset(dOut);
    int oOff = offset(out);
    KernelThreads.rows(
        Math.toIntExact(rows),
        t / 2 + hd,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int n = r % t + 1;
            float dot = VectorMath.dotRow(dob, doOff + r * hd * 4, ob, oOff + r * hd * 4, hd);
            subMulRow(dp, dpOff + r * t * 4, p, pOff + r * t * 4, n, dot);
            VectorMath.fill(dp, dpOff + (r * t + n) * 4, t - n, 0f);
          }
        });
  }

  /** s ← s + m over n floats; returns max(s). */
  private static float addRowMax(ByteBuffer s, int off, ByteBuffer m, int moff, int n) {
    int vb = bound(n);
    FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector v = load(s, off + i * 4).add(load(m, moff + i * 4));
      v.intoByteBuffer(s, off + i * 4, LE);
      vmax = vmax.max(v);
    }
    float max = vmax.reduceLanes(VectorOperators.MAX);
    for (; i < n; i++) {
      float v = s.getFloat(off + i * 4) + m.getFloat(moff + i * 4);
      s.putFloat(off + i * 4, v);
      max = Math.max(max, v);
    }
    return max;
  }

  /** d ← (d − c) · p over n floats. */
  private static void subMulRow(ByteBuffer d, int dOff, ByteBuffer p, int pOff, int n, float c) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      load(d, dOff + i * 4).sub(c).mul(load(p, pOff + i * 4)).intoByteBuffer(d, dOff + i * 4, LE);
    }
    for (; i < n; i++) {
      d.putFloat(dOff + i * 4, (d.getFloat(dOff + i * 4) - c) * p.getFloat(pOff + i * 4));
    }
  }
}
