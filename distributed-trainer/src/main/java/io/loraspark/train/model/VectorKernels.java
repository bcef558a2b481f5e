package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused float32 kernels of {@link Kernels} on the JDK Vector API ({@code
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
final class VectorKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[L]);
  private static final int CHUNK = 4096; // floats per pass of a two-pass elementwise kernel

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

  private VectorKernels() {}

  // ---- building blocks ----

  private static FloatVector load(ByteBuffer b, int byteOffset) {
    return FloatVector.fromByteBuffer(S, b, byteOffset, LE);
  }

  private static int bound(int n) {
    return n - n % L;
  }

  /**
   * Runs {@code body} over float ranges [start, end) of [0, n) that begin on a {@link #CHUNK}
   * boundary, split over the kernel threads by whole chunks.
   */
  private static void elementwise(int n, KernelThreads.Range body) {
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

  /** Σ of the lanes, added in lane order (reproducible, unlike {@code reduceLanes(ADD)}). */
  private static float sum(FloatVector v) {
    float[] lanes = LANES.get();
    v.intoArray(lanes, 0);
    float s = 0f;
    for (float f : lanes) {
      s += f;
    }
    return s;
  }

  /** max of n floats. */
  private static float maxRow(ByteBuffer b, int off, int n) {
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
  private static float expRow(ByteBuffer b, int off, int n, float shift) {
    int vb = bound(n);
    FloatVector vsum = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector e = exp(load(b, off + i * 4).sub(shift));
      e.intoByteBuffer(b, off + i * 4, LE);
      vsum = vsum.add(e);
    }
    float sum = sum(vsum);
    for (; i < n; i++) {
      float e = exp(b.getFloat(off + i * 4) - shift);
      b.putFloat(off + i * 4, e);
      sum += e;
    }
    return sum;
  }

  /** b ← b · scale over n floats. */
  static void scaleRow(ByteBuffer b, int off, int n, float scale) {
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

  /** Σ a·b over n floats. */
  private static float dotRow(ByteBuffer a, int ao, ByteBuffer b, int bo, int n) {
    int vb = bound(n);
    FloatVector vdot = FloatVector.zero(S);
    int i = 0;
    for (; i < vb; i += L) {
      vdot = load(a, ao + i * 4).fma(load(b, bo + i * 4), vdot);
    }
    float dot = sum(vdot);
    for (; i < n; i++) {
      dot = Math.fma(a.getFloat(ao + i * 4), b.getFloat(bo + i * 4), dot);
    }
    return dot;
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
    float dot = sum(vdot);
    for (; i < n; i++) {
      dot = Math.fma(a.getFloat(ao + i * 4) * w.getFloat(wo + i * 4), x.getFloat(xo + i * 4), dot);
    }
    return dot;
  }

  // ---- kernels ----

  /**
   * Softmax cross-entropy, forward: for each row with a target, {@code nll[r] = log Σ exp(x) −
   * x[target]}; the row becomes {@code exp(x − max)} and {@code invSum[r]} its 1/Σ, which {@link
   * #crossEntropyBackward} turns into the gradient. Rows without a target (target &lt; 0) are left
   * untouched.
   */
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
            float max = maxRow(x, base, cols);
            double sum = expRow(x, base, cols, max);
            nll[r] = StrictMath.log(sum) + max - xt;
            invSum[r] = 1.0 / sum;
          }
        });
  }

  /**
   * Softmax cross-entropy, backward: each row becomes {@code weight[r] · (softmax − onehot)}, or
   * zero when its weight is zero.
   */
  static void crossEntropyBackward(
      ByteBuffer x, int off, int rows, int cols, int[] targets, double[] weight, double[] invSum) {
    KernelThreads.rows(
        rows,
        cols,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int base = off + r * cols * 4;
            if (weight[r] == 0.0) {
              scaleRow(x, base, cols, 0f);
              continue;
            }
            scaleRow(x, base, cols, (float) (weight[r] * invSum[r]));
            int t = base + targets[r] * 4;
            x.putFloat(t, (float) (x.getFloat(t) - weight[r]));
          }
        });
  }

  /**
   * Causal row softmax of {@code s + mask}, in place in {@code s}, over stacked {@code cols × cols}
   * blocks (one per head): row r is position {@code i = r mod cols}, and only its columns [0, i]
   * are computed (add and max, exp and sum, scale); columns after i are set to 0. The causal mask
   * gives those columns e^(−1e9) = 0 exactly, so this is the full softmax with half the work.
   */
  static void maskedSoftmax(ByteBuffer s, int off, ByteBuffer m, int moff, int rows, int cols) {
    KernelThreads.rows(
        rows,
        cols / 2,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int base = off + r * cols * 4;
            int n = r % cols + 1;
            float max = addRowMax(s, base, m, moff + r * cols * 4, n);
            float sum = expRow(s, base, n, max);
            scaleRow(s, base, n, 1f / sum);
            fill(s, base + n * 4, cols - n, 0f);
          }
        });
  }

  /**
   * Softmax backward given the output: {@code dP[r] = (dP[r] − Σ_j dOut[r,j]·out[r,j]) ⊙ P[r]},
   * where the row dot over the value width replaces Σ dP ⊙ P (out = P v, dP = dOut vᵀ). Causal, as
   * {@link #maskedSoftmax}: row r computes columns [0, r mod cols] and zeroes the rest, where P is
   * 0.
   */
  static void softmaxBackward(
      ByteBuffer dp,
      int dpOff,
      ByteBuffer p,
      int pOff,
      ByteBuffer dOut,
      int dOutOff,
      ByteBuffer out,
      int outOff,
      int rows,
      int cols,
      int width) {
    KernelThreads.rows(
        rows,
        cols / 2 + width,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int n = r % cols + 1;
            float dot = dotRow(dOut, dOutOff + r * width * 4, out, outOff + r * width * 4, width);
            subMulRow(dp, dpOff + r * cols * 4, p, pOff + r * cols * 4, n, dot);
            fill(dp, dpOff + (r * cols + n) * 4, cols - n, 0f);
          }
        });
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

  /**
   * {@code sig = σ(gate)}, {@code act = gate · sig · up}, over {@code n} elements, in chunks that
   * stay in cache between the two passes. (One loop doing both did not compile to SIMD: with the
   * inlined exp, C2 stopped inlining the loads and allocated a vector object per load.)
   */
  static void siluMul(
      ByteBuffer gate,
      int gOff,
      ByteBuffer up,
      int uOff,
      ByteBuffer sig,
      int sOff,
      ByteBuffer act,
      int aOff,
      int n) {
    elementwise(
        n,
        (start, end) -> {
          for (int c = start; c < end; c += CHUNK) {
            int len = Math.min(CHUNK, end - c);
            sigmoidRow(gate, gOff + c * 4, sig, sOff + c * 4, len);
            productRow(
                gate, gOff + c * 4, sig, sOff + c * 4, up, uOff + c * 4, act, aOff + c * 4, len);
          }
        });
  }

  /** sig ← 1 / (1 + exp(−gate)) over n floats. */
  private static void sigmoidRow(ByteBuffer gate, int gOff, ByteBuffer sig, int sOff, int n) {
    int vb = bound(n);
    FloatVector one = FloatVector.broadcast(S, 1f);
    int i = 0;
    for (; i < vb; i += L) {
      one.div(exp(load(gate, gOff + i * 4).neg()).add(1f)).intoByteBuffer(sig, sOff + i * 4, LE);
    }
    for (; i < n; i++) {
      sig.putFloat(sOff + i * 4, 1f / (exp(-gate.getFloat(gOff + i * 4)) + 1f));
    }
  }

  /** out ← a · b · c over n floats. */
  private static void productRow(
      ByteBuffer a,
      int ao,
      ByteBuffer b,
      int bo,
      ByteBuffer c,
      int co,
      ByteBuffer out,
      int oo,
      int n) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      load(a, ao + i * 4)
          .mul(load(b, bo + i * 4))
          .mul(load(c, co + i * 4))
          .intoByteBuffer(out, oo + i * 4, LE);
    }
    for (; i < n; i++) {
      out.putFloat(
          oo + i * 4, a.getFloat(ao + i * 4) * b.getFloat(bo + i * 4) * c.getFloat(co + i * 4));
    }
  }

  /**
   * Backward of {@link #siluMul}: {@code dUp = dAct · gate · sig}, {@code dGate = dAct · up · sig ·
   * (1 + gate · (1 − sig))}.
   */
  static void siluMulBackward(
      ByteBuffer gate,
      int gOff,
      ByteBuffer up,
      int uOff,
      ByteBuffer sig,
      int sOff,
      ByteBuffer dAct,
      int dOff,
      ByteBuffer dGate,
      int dgOff,
      ByteBuffer dUp,
      int duOff,
      int n) {
    elementwise(
        n,
        (start, end) -> {
          int o = start * 4;
          siluMulBackwardRow(
              gate,
              gOff + o,
              up,
              uOff + o,
              sig,
              sOff + o,
              dAct,
              dOff + o,
              dGate,
              dgOff + o,
              dUp,
              duOff + o,
              end - start);
        });
  }

  /** {@link #siluMulBackward} over n floats. */
  private static void siluMulBackwardRow(
      ByteBuffer gate,
      int gOff,
      ByteBuffer up,
      int uOff,
      ByteBuffer sig,
      int sOff,
      ByteBuffer dAct,
      int dOff,
      ByteBuffer dGate,
      int dgOff,
      ByteBuffer dUp,
      int duOff,
      int n) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector g = load(gate, gOff + i * 4);
      FloatVector sg = load(sig, sOff + i * 4);
      FloatVector da = load(dAct, dOff + i * 4);
      da.mul(g).mul(sg).intoByteBuffer(dUp, duOff + i * 4, LE);
      FloatVector oneMinus = sg.neg().add(1f);
      FloatVector d = g.mul(oneMinus).add(1f).mul(sg).mul(load(up, uOff + i * 4)).mul(da);
      d.intoByteBuffer(dGate, dgOff + i * 4, LE);
    }
    for (; i < n; i++) {
      float g = gate.getFloat(gOff + i * 4);
      float sg = sig.getFloat(sOff + i * 4);
      float da = dAct.getFloat(dOff + i * 4);
      dUp.putFloat(duOff + i * 4, da * g * sg);
      dGate.putFloat(dgOff + i * 4, (g * (-sg + 1f) + 1f) * sg * up.getFloat(uOff + i * 4) * da);
    }
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

  /**
   * Rotary embedding over head vectors of width {@code hd}, in place; {@code inverse} applies the
   * transpose (the backward): forward {@code [x1·c − x2·s, x2·c + x1·s]}, backward {@code [x1·c +
   * x2·s, x2·c − x1·s]}, with c, s the row's cos/sin table halves (equal halves, as HF builds
   * them).
   */
  static void rope(
      ByteBuffer x,
      int xOff,
      ByteBuffer cos,
      int cOff,
      ByteBuffer sin,
      int sOff,
      int rows,
      int hd,
      boolean inverse) {
    float sign = inverse ? -1f : 1f;
    KernelThreads.rows(
        rows,
        hd,
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int rb = r * hd * 4;
            ropeRow(x, xOff + rb, cos, cOff + rb, sin, sOff + rb, hd / 2, sign);
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
