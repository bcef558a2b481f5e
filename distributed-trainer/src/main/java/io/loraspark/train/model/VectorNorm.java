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
  /** Per row: {@code rInv = 1/sqrt(mean(x²) + eps)}, {@code out = x · rInv · w}. */
  @Override
  public void forward(INDArray x, INDArray w, double eps, INDArray rInv, INDArray out) {
    assert Kernels.vector(x, w, rInv, out) : Kernels.UNFIT;
    ByteBuffer xb = buffer(x);
    ByteBuffer wb = buffer(w);
    ByteBuffer rb = buffer(rInv);
    ByteBuffer ob = buffer(out);
    int xOff = offset(x);
    int wOff = offset(w);
    int rOff = offset(rInv);
    int oOff = offset(out);
    int cols = (int) x.columns();
    float epsF = (float) eps;
    KernelThreads.rows(
        (int) x.rows(),
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int row = r * cols * 4;
            float ss = dotRow(xb, xOff + row, xb, xOff + row, cols);
            float inv = (float) (1.0 / Math.sqrt(ss / cols + epsF));
            rb.putFloat(rOff + r * 4, inv);
            scaledProductRow(xb, xOff + row, wb, wOff, ob, oOff + row, cols, inv);
          }
        });
  }

  /**
   * Per row, accumulated: with g = dOut · w and xn = x · rInv, {@code dx += rInv · (g − xn · mean(g
   * · xn))}.
   */
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
    ByteBuffer xb = buffer(x);
    ByteBuffer wb = buffer(w);
    ByteBuffer rb = buffer(rInv);
    ByteBuffer gb = buffer(dOut);
    ByteBuffer db = buffer(dx);
    int xOff = offset(x);
    int wOff = offset(w);
    int rOff = offset(rInv);
    int gOff = offset(dOut);
    int dOff = offset(dx);
    int cols = (int) x.columns();
    KernelThreads.rows(
        (int) x.rows(),
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int row = r * cols * 4;
            float inv = rb.getFloat(rOff + r * 4);
            float dot = dot3Row(gb, gOff + row, wb, wOff, xb, xOff + row, cols);
            float c = dot * inv / cols * inv; // xn · mean(g · xn) = x · c
            rmsBackRow(xb, xOff + row, wb, wOff, gb, gOff + row, db, dOff + row, cols, inv, c);
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

  /** Σ a·w·x over n floats (w one row, shared). */
  private static float dot3Row(
      ByteBuffer a, int ao, ByteBuffer w, int wo, ByteBuffer x, int xo, int n) {
    int vb = bound(n);
    FloatVector vdot = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      vdot = load(a, ao + i * 4).mul(load(w, wo + i * 4)).fma(load(x, xo + i * 4), vdot);
    }
    float[] lanes = VectorMath.lanes();
    vdot.intoArray(lanes, 0);
    float dot = VectorMath.sum(lanes);
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
