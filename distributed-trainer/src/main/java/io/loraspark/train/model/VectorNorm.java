package io.loraspark.train.model;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;
import static io.loraspark.train.model.VectorMath.L;
import static io.loraspark.train.model.VectorMath.LE;
import static io.loraspark.train.model.VectorMath.S;
import static io.loraspark.train.model.VectorMath.bound;
import static io.loraspark.train.model.VectorMath.dotRow;
import static io.loraspark.train.model.VectorMath.load;

import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link NormKernels} fused on the Vector API: one pass per row each way (see {@link VectorMath}).
 */
final class VectorNorm implements NormKernels {
  @Override
  public void forward(INDArray x, INDArray w, double eps, INDArray rInv, INDArray out) {
    assert Kernels.vector(x, w, rInv, out) : Kernels.UNFIT;
    rmsForward(
        buffer(x),
        offset(x),
        buffer(w),
        offset(w),
        (float) eps,
        buffer(rInv),
        offset(rInv),
        buffer(out),
        offset(out),
        (int) x.rows(),
        (int) x.columns());
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
    assert Kernels.vector(x, w, rInv, dOut, dx) : Kernels.UNFIT;
    rmsBackward(
        buffer(x),
        offset(x),
        buffer(w),
        offset(w),
        buffer(rInv),
        offset(rInv),
        buffer(dOut),
        offset(dOut),
        buffer(dx),
        offset(dx),
        (int) x.rows(),
        (int) x.columns());
  }

  /** RMSNorm forward per row: {@code rInv = 1/sqrt(mean(x²) + eps)}, {@code out = x · rInv · w}. */
  static void rmsForward(
      ByteBuffer x,
      int xOff,
      ByteBuffer w,
      int wOff,
      float eps,
      ByteBuffer rInv,
      int rOff,
      ByteBuffer out,
      int oOff,
      int rows,
      int cols) {
    KernelThreads.rows(
        rows,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int rb = r * cols * 4;
            float ss = dotRow(x, xOff + rb, x, xOff + rb, cols);
            float inv = (float) (1.0 / Math.sqrt(ss / cols + eps));
            rInv.putFloat(rOff + r * 4, inv);
            scaledProductRow(x, xOff + rb, w, wOff, out, oOff + rb, cols, inv);
          }
        });
  }

  /** out ← x · w · c over n floats. */
  private static void scaledProductRow(
      ByteBuffer x, int xo, ByteBuffer w, int wo, ByteBuffer out, int oo, int n, float c) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      load(x, xo + i * 4).mul(c).mul(load(w, wo + i * 4)).intoByteBuffer(out, oo + i * 4, LE);
    }
    for (; i < n; i++) {
      out.putFloat(oo + i * 4, x.getFloat(xo + i * 4) * c * w.getFloat(wo + i * 4));
    }
  }

  /**
   * RMSNorm backward per row, accumulated: with g = dOut · w and xn = x · rInv, {@code dx += rInv ·
   * (g − xn · mean(g · xn))}.
   */
  static void rmsBackward(
      ByteBuffer x,
      int xOff,
      ByteBuffer w,
      int wOff,
      ByteBuffer rInv,
      int rOff,
      ByteBuffer dOut,
      int dOff,
      ByteBuffer dx,
      int dxOff,
      int rows,
      int cols) {
    KernelThreads.rows(
        rows,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int rb = r * cols * 4;
            float inv = rInv.getFloat(rOff + r * 4);
            float dot = dot3Row(dOut, dOff + rb, w, wOff, x, xOff + rb, cols);
            float c = dot * inv / cols * inv; // xn · mean(g · xn) = x · c
            rmsBackRow(x, xOff + rb, w, wOff, dOut, dOff + rb, dx, dxOff + rb, cols, inv, c);
          }
        });
  }

  /** Σ a·w·x over n floats (w one row, shared). */
  private static float dot3Row(
      ByteBuffer a, int ao, ByteBuffer w, int wo, ByteBuffer x, int xo, int n) {
    int vb = bound(n);
    FloatVector vdot = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      vdot = load(a, ao + i * 4).mul(load(w, wo + i * 4)).fma(load(x, xo + i * 4), vdot);
    }
    float dot = VectorMath.sum(vdot);
    for (; i < n; i++) {
      dot = Math.fma(a.getFloat(ao + i * 4) * w.getFloat(wo + i * 4), x.getFloat(xo + i * 4), dot);
    }
    return dot;
  }

  /** dx ← dx + (dOut · w − x · c) · inv over n floats. */
  private static void rmsBackRow(
      ByteBuffer x,
      int xo,
      ByteBuffer w,
      int wo,
      ByteBuffer dOut,
      int dOff,
      ByteBuffer dx,
      int dxo,
      int n,
      float inv,
      float c) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector g = load(dOut, dOff + i * 4).mul(load(w, wo + i * 4));
      FloatVector d = g.sub(load(x, xo + i * 4).mul(c)).mul(inv);
      load(dx, dxo + i * 4).add(d).intoByteBuffer(dx, dxo + i * 4, LE);
    }
    for (; i < n; i++) {
      float g = dOut.getFloat(dOff + i * 4) * w.getFloat(wo + i * 4);
      float d = (g - x.getFloat(xo + i * 4) * c) * inv;
      dx.putFloat(dxo + i * 4, dx.getFloat(dxo + i * 4) + d);
    }
  }
}
