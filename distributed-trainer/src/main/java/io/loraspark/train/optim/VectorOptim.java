package io.loraspark.train.optim;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;

import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.VectorMath;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link OptimizerKernels} in float32 on the JDK Vector API, chosen by {@link OptimizerKernels#of}
 * when {@link io.loraspark.train.model.Kernels#vector} accepts the arrays: one pass over memory per
 * parameter where the ND4J path runs a dozen ops, each a pass and a native call with its own Java
 * objects (about 7,000 calls per step for eight adapters, whose garbage grew the Java heap).
 *
 * <p>Each kernel does the same float operations in the same order as the ND4J path (a scalar is
 * rounded to float first, as ND4J's scalar ops do), so both give the same bits; the sum of squares
 * is accumulated in double. Only IEEE add, multiply, divide and square root are used, which give
 * the same bits whether C2 has compiled the Vector API or it still runs as Java code.
 *
 * <p>Arrays are addressed by (little-endian buffer, byte offset) as {@link
 * io.loraspark.train.model.Kernels#buffer} and {@link io.loraspark.train.model.Kernels#offset} give
 * them.
 */
final class VectorOptim implements OptimizerKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

  /** The one instance (stateless; loaded only where {@link Kernels#vector} holds). */
  static final VectorOptim INSTANCE = new VectorOptim();

  private VectorOptim() {}

  @Override
  public void adamW(
      INDArray p,
      INDArray g,
      INDArray m,
      INDArray v,
      INDArray scratch,
      AdamWConfig cfg,
      double lrP,
      double biasCorrection1,
      double biasCorrection2Sqrt) {
    assert Kernels.vector(p, g, m, v) : "AdamW's fused kernel takes float32 row-major arrays";
    double oneMinusB1 = 1 - cfg.beta1();
    adamW(
        buffer(p),
        offset(p),
        buffer(g),
        offset(g),
        buffer(m),
        offset(m),
        buffer(v),
        offset(v),
        Math.toIntExact(p.length()),
        (float) (1 - lrP * cfg.weightDecay()),
        oneMinusB1 < 0.5,
        (float) (oneMinusB1 < 0.5 ? oneMinusB1 : 1 - oneMinusB1),
        (float) (1 - cfg.beta2()),
        (float) cfg.beta2(),
        (float) biasCorrection2Sqrt,
        (float) cfg.eps(),
        (float) (lrP / biasCorrection1));
  }

  @Override
  public double sumSquares(INDArray g) {
    assert Kernels.vector(g) : "the fused sum of squares takes a float32 row-major array";
    return sumSquares(buffer(g), offset(g), Math.toIntExact(g.length()));
  }

  @Override
  public void scale(INDArray g, double c) {
    assert Kernels.vector(g) : "the fused scale takes a float32 row-major array";
    VectorMath.scaleRow(buffer(g), offset(g), Math.toIntExact(g.length()), (float) c);
  }

  private static FloatVector load(ByteBuffer b, int byteOffset) {
    return FloatVector.fromByteBuffer(S, b, byteOffset, LE);
  }

  /**
   * One AdamW update of n elements, in place in p, m and v: the arithmetic of {@link AdamW}'s ND4J
   * path with its scalars as floats.
   *
   * @param decay 1 − lr_p · wd
   * @param lerpFromM whether m moves as {@code m + (1 − β1)(g − m)} (β1 &gt; 0.5, as torch's {@code
   *     lerp_} does for weights below ½) or as {@code g − β1 (g − m)}
   * @param w 1 − β1 when {@code lerpFromM}, else β1
   * @param oneMinusB2 1 − β2
   * @param oneMinusB2 1 − β2
   * @param b2 β2
   * @param bc2Sqrt sqrt(1 − β2^t)
   * @param eps ε
   * @param stepSize lr_p / (1 − β1^t)
   */
  static void adamW(
      ByteBuffer p,
      int po,
      ByteBuffer g,
      int go,
      ByteBuffer m,
      int mo,
      ByteBuffer v,
      int vo,
      int n,
      float decay,
      boolean lerpFromM,
      float w,
      float oneMinusB2,
      float b2,
      float bc2Sqrt,
      float eps,
      float stepSize) {
    int vb = n - n % L;
    int i = 0;
    for (; i < vb; i += L) {
      int o = i * 4;
      FloatVector gv = load(g, go + o);
      FloatVector mv = load(m, mo + o);
      FloatVector d = gv.sub(mv).mul(w);
      mv = lerpFromM ? mv.add(d) : gv.sub(d);
      mv.intoByteBuffer(m, mo + o, LE);
      FloatVector vv = load(v, vo + o).mul(b2).add(gv.mul(oneMinusB2).mul(gv));
      vv.intoByteBuffer(v, vo + o, LE);
      FloatVector step = mv.div(vv.sqrt().div(bc2Sqrt).add(eps)).mul(stepSize);
      load(p, po + o).mul(decay).sub(step).intoByteBuffer(p, po + o, LE);
    }
    for (; i < n; i++) {
      int o = i * 4;
      float gs = g.getFloat(go + o);
      float ms = m.getFloat(mo + o);
      float d = (gs - ms) * w;
      ms = lerpFromM ? ms + d : gs - d;
      m.putFloat(mo + o, ms);
      float vs = v.getFloat(vo + o) * b2 + gs * oneMinusB2 * gs;
      v.putFloat(vo + o, vs);
      float step = ms / ((float) Math.sqrt(vs) / bc2Sqrt + eps) * stepSize;
      p.putFloat(po + o, p.getFloat(po + o) * decay - step);
    }
  }

  /** Σ x² over n floats, in double, in element order. */
  static double sumSquares(ByteBuffer x, int xo, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) {
      double f = x.getFloat(xo + i * 4);
      s += f * f;
    }
    return s;
  }
}
