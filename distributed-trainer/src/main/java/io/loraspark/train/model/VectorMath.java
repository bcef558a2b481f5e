package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The building blocks of the fused float32 kernels ({@link VectorNorm}, {@link VectorRope}, {@link
 * VectorSoftmax}, {@link VectorLoss}, {@link VectorSilu}) on the JDK Vector API ({@code
 * jdk.incubator.vector}): each reads and writes the off-heap ND4J buffers in place, one or two
 * passes per row where ND4J needs one op (and often one temporary) per arithmetic step, and with a
 * vectorised exp where ND4J calls scalar libm. Loaded only when {@link Kernels#VECTOR} found the
 * module, so the JVM never resolves these classes without it.
 *
 * <p>Each vector loop sits in its own small method ({@code maxRow}, {@code expRow}, ...) taking
 * only buffers, offsets and scalars: C2 compiles the Vector API to SIMD instructions only when
 * every vector operation is inlined into one compilation unit, and a kernel written as one large
 * method hit the inlining limits and fell back to allocating vector objects (10x slower).
 *
 * <p>Results are bit-for-bit reproducible, which resumed training relies on: the Vector API runs as
 * Java code until C2 compiles it, so any operation whose result could differ between the two is
 * avoided. {@code exp} is our own (Cephes {@code expf}: Cody–Waite reduction and a degree-5
 * polynomial, within 2 ulp) from IEEE add/mul and exact integer steps, instead of the SVML
 * intrinsic ({@code VectorOperators.EXP}), whose last bits differ from the Java fallback; float
 * sums over lanes are added in lane order instead of {@code reduceLanes(ADD)}, whose order is
 * unspecified; scalar tails use the same arithmetic as a lane.
 *
 * <p>Every array is a float32 row-major block addressed by (buffer, byte offset); rows are {@code
 * cols} floats apart. Loops are a vector body plus a scalar tail, so any width is handled (head
 * dims of 8 included).
 */
public final class VectorMath {
  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final int L = S.length();
  static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[L]);

  /**
   * Floats per call of an elementwise row kernel (per pass of a two-pass one): small enough to stay
   * in L1 between passes, and many calls per step, so that C2 compiles the row kernels in {@code
   * KernelWarmup}'s tiny model (its standard compilation needs several hundred calls; 4096 gave the
   * warm-up too few, and the first real steps boxed their vectors).
   */
  static final int CHUNK = 1024;

  private static final float EXP_LO = -87.33654f; // below: exp underflows to 0
  private static final float EXP_HI = 88.0f; // 2^127 · p stays finite
  private static final float LOG2E = 1.44269504088896341f;
  private static final float ROUND = 12582912f; // 1.5 · 2^23: x + ROUND − ROUND rounds to nearest
  private static final float LN2_HI = 0.693359375f;
  private static final float LN2_LO = -2.12194440e-4f;
  private static final float P0 = 1.9875691500e-4f;
  private static final float P1 = 1.3981999507e-3f;
  private static final float P2 = 8.3334519073e-3f;
  private static final float P3 = 4.1665795894e-2f;
  private static final float P4 = 1.6666665459e-1f;
  private static final float P5 = 5.0000001201e-1f;

  private VectorMath() {}

  static FloatVector load(ByteBuffer b, int byteOffset) {
    return FloatVector.fromByteBuffer(S, b, byteOffset, LE);
  }

  /** The end of the vector body over n floats: the largest multiple of the lane count. */
  static int bound(int n) {
    return n - n % L;
  }

  /**
   * Runs {@code body} over float ranges [start, end) of [0, n) that begin on a {@link #CHUNK}
   * boundary, split over the kernel threads by whole chunks.
   */
  static void elementwise(int n, KernelThreads.Range body) {
    KernelThreads.rows(
        (n + CHUNK - 1) / CHUNK,
        CHUNK,
        (from, to) -> body.run(from * CHUNK, Math.min(n, to * CHUNK)));
  }

  /**
   * e^x per lane (Cephes expf); 0 below {@link #EXP_LO}. n = round(x·log2 e) is read from the low
   * mantissa bits of x·log2 e + 1.5·2^23 (the round-to-nearest trick), whose bits plus the bias
   * 127, shifted left by 23, are 2^n: no float-to-int conversion, which the Vector API does not
   * compile to one instruction on AVX2.
   */
  static FloatVector exp(FloatVector x) {
    FloatVector xc = x.max(EXP_LO).min(EXP_HI);
    FloatVector shifted = xc.mul(LOG2E).add(ROUND);
    FloatVector n = shifted.sub(ROUND);
    FloatVector r = xc.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
    FloatVector p = r.mul(P0).add(P1);
    p = p.mul(r).add(P2);
    p = p.mul(r).add(P3);
    p = p.mul(r).add(P4);
    p = p.mul(r).add(P5);
    p = p.mul(r.mul(r)).add(r).add(1f);
    IntVector bits = shifted.reinterpretAsInts().add(127).lanewise(VectorOperators.LSHL, 23);
    return p.mul(bits.reinterpretAsFloats()).blend(0f, x.lt(EXP_LO));
  }

  /** One lane of {@link #exp(FloatVector)}: the same operations in the same order. */
  static float exp(float x) {
    if (x < EXP_LO) {
      return 0f;
    }
    float xc = Math.min(x, EXP_HI);
    float shifted = xc * LOG2E + ROUND;
    float n = shifted - ROUND;
    float r = xc - n * LN2_HI - n * LN2_LO;
    float p = r * P0 + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    p = p * (r * r) + r + 1f;
    return p * Float.intBitsToFloat((Float.floatToRawIntBits(shifted) + 127) << 23);
  }

  /** The calling thread's array of {@link #L} floats, for a vector's lanes (see {@link #sum}). */
  static float[] lanes() {
    return LANES.get();
  }

  /**
   * Σ of {@code lanes} (a vector stored by {@code intoArray(lanes, 0)}), added in lane order
   * (reproducible, unlike {@code reduceLanes(ADD)}). It takes the array, not the vector: a vector
   * passed to a method C2 does not inline is boxed on the heap, and in a large compilation unit (a
   * row loop inlining {@link #expRow} and {@link #exp}) C2 stops inlining our methods at its node
   * budget ({@code NodeCountInliningCutoff}) while it still inlines the Vector API's own {@code
   * intoArray}.
   */
  static float sum(float[] lanes) {
    float s = 0f;
    for (float f : lanes) {
      s += f;
    }
    return s;
  }

  /** max of n floats. */
  static float maxRow(ByteBuffer b, int off, int n) {
    int vb = bound(n);
    FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int i = 0;
    for (; i < vb; i += L) {
      vmax = vmax.max(load(b, off + i * 4));
    }
    float max = vmax.reduceLanes(VectorOperators.MAX);
    for (; i < n; i++) {
      max = Math.max(max, b.getFloat(off + i * 4));
    }
    return max;
  }

  /** b ← exp(b − shift) over n floats; returns their sum. */
  static float expRow(ByteBuffer b, int off, int n, float shift) {
    int vb = bound(n);
    FloatVector vsum = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector e = exp(load(b, off + i * 4).sub(shift));
      e.intoByteBuffer(b, off + i * 4, LE);
      vsum = vsum.add(e);
    }
    float[] lanes = lanes();
    vsum.intoArray(lanes, 0);
    float sum = sum(lanes);
    for (; i < n; i++) {
      float e = exp(b.getFloat(off + i * 4) - shift);
      b.putFloat(off + i * 4, e);
      sum += e;
    }
    return sum;
  }

  /**
   * b ← b · scale over n floats (a little-endian buffer as {@link Kernels#buffer} gives, at a byte
   * offset).
   */
  public static void scaleRow(ByteBuffer b, int off, int n, float scale) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      load(b, off + i * 4).mul(scale).intoByteBuffer(b, off + i * 4, LE);
    }
    for (; i < n; i++) {
      b.putFloat(off + i * 4, b.getFloat(off + i * 4) * scale);
    }
  }

  /** b ← v over n floats. */
  static void fill(ByteBuffer b, int off, int n, float v) {
    FloatVector vv = FloatVector.broadcast(S, v);
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      vv.intoByteBuffer(b, off + i * 4, LE);
    }
    for (; i < n; i++) {
      b.putFloat(off + i * 4, v);
    }
  }

  /** Σ a·b over n floats. */
  static float dotRow(ByteBuffer a, int ao, ByteBuffer b, int bo, int n) {
    int vb = bound(n);
    FloatVector vdot = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      vdot = load(a, ao + i * 4).fma(load(b, bo + i * 4), vdot);
    }
    float[] lanes = lanes();
    vdot.intoArray(lanes, 0);
    float dot = sum(lanes);
    for (; i < n; i++) {
      dot = Math.fma(a.getFloat(ao + i * 4), b.getFloat(bo + i * 4), dot);
    }
    return dot;
  }
}
