package io.loraspark.train.model;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;
import static io.loraspark.train.model.VectorMath.L;
import static io.loraspark.train.model.VectorMath.LE;
import static io.loraspark.train.model.VectorMath.bound;
import static io.loraspark.train.model.VectorMath.load;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link RopeKernels} fused on the Vector API: the tables written straight into the float buffers
 * (no per-step arrays for the garbage collector), the rotation in one pass per head vector.
 */
final class VectorRope implements RopeKernels {
  private final Rope rope;

  VectorRope(Rope rope) {
    this.rope = rope;
  }

  @Override
  public void fillTables(int[] positions, int heads, INDArray cos, INDArray sin) {
    assert Kernels.vector(cos, sin) : Kernels.UNFIT;
    FloatBuffer c = buffer(cos).asFloatBuffer();
    FloatBuffer s = buffer(sin).asFloatBuffer();
    int cBase = offset(cos) / 4;
    int sBase = offset(sin) / 4;
    rope.tables(
        positions,
        heads,
        (i, cv, sv) -> {
          c.put(cBase + i, (float) cv);
          s.put(sBase + i, (float) sv);
        });
  }

  @Override
  public void forward(INDArray x, INDArray cos, INDArray sin, INDArray scratch) {
    rotate(x, cos, sin, false);
  }

  @Override
  public void backward(
      INDArray dx, INDArray cos, INDArray sin, INDArray scratch1, INDArray scratch2) {
    rotate(dx, cos, sin, true);
  }

  /**
   * In place over head vectors [R, HD]; {@code inverse} applies the transpose (the backward):
   * forward {@code [x1·c − x2·s, x2·c + x1·s]}, backward {@code [x1·c + x2·s, x2·c − x1·s]}, with
   * c, s the row's cos/sin table halves. Relies on the halves being equal, as {@link #fillTables}
   * (and HF) makes them.
   */
  private void rotate(INDArray x, INDArray cos, INDArray sin, boolean inverse) {
    assert Kernels.vector(x, cos, sin) : Kernels.UNFIT;
    ByteBuffer xb = buffer(x);
    ByteBuffer cb = buffer(cos);
    ByteBuffer sb = buffer(sin);
    int xOff = offset(x);
    int cOff = offset(cos);
    int sOff = offset(sin);
    int hd = rope.headDim;
    float sign = inverse ? -1f : 1f;
    KernelThreads.rows(
        (int) x.rows(),
        hd,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int row = r * hd * 4;
            ropeRow(xb, xOff + row, cb, cOff + row, sb, sOff + row, hd / 2, sign);
          }
        });
  }

  private static void ropeRow(
      ByteBuffer x, int xo, ByteBuffer cos, int co, ByteBuffer sin, int so, int half, float sign) {
    int vb = bound(half);
    int hi = half * 4;
    int i = 0;
    for (; i < vb; i += L) {
      int o = i * 4;
      FloatVector x1 = load(x, xo + o);
      FloatVector x2 = load(x, xo + hi + o);
      FloatVector s1 = load(sin, so + o).mul(sign);
      FloatVector s2 = load(sin, so + hi + o).mul(sign);
      x1.mul(load(cos, co + o)).sub(x2.mul(s1)).intoByteBuffer(x, xo + o, LE);
      x2.mul(load(cos, co + hi + o)).add(x1.mul(s2)).intoByteBuffer(x, xo + hi + o, LE);
    }
    for (; i < half; i++) {
      int o = i * 4;
      float x1 = x.getFloat(xo + o);
      float x2 = x.getFloat(xo + hi + o);
      x.putFloat(xo + o, x1 * cos.getFloat(co + o) - x2 * (sin.getFloat(so + o) * sign));
      x.putFloat(
          xo + hi + o, x2 * cos.getFloat(co + hi + o) + x1 * (sin.getFloat(so + hi + o) * sign));
    }
  }
}
