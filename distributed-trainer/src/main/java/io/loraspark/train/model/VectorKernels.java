package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused float32 kernels of {@link Kernels} on the JDK Vector API ({@code jdk.incubator.vector},
 * whose {@code EXP} is the JDK's SVML intrinsic on x86): each reads and writes the off-heap ND4J
 * buffers in place, one pass per row where ND4J needs one op (and one temporary) per arithmetic
 * step, and with a vectorised exp where ND4J calls scalar libm. Loaded only when {@link
 * Kernels#VECTOR} found the module, so the JVM never resolves these classes without it.
 *
 * <p>Results are bit-for-bit reproducible, which resumed training relies on: the Vector API runs as
 * Java code until C2 compiles it, so any operation whose result could differ between the two is
 * avoided. {@code exp} is our own (Cephes {@code expf}: Cody–Waite reduction and a degree-5
 * polynomial, within 2 ulp) from IEEE add/mul and exact integer steps, instead of the SVML
 * intrinsic, whose last bits differ from the Java fallback; float sums over lanes are added in lane
 * order instead of {@code reduceLanes(ADD)}, whose order is unspecified; scalar tails use the same
 * arithmetic as a lane.
 *
 * <p>Every array is a float32 row-major block addressed by (buffer, byte offset); rows are {@code
 * cols} floats apart. Loops are a vector body plus a scalar tail, so any width is handled (head
 * dims of 8 included).
 */
final class VectorKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

  private VectorKernels() {}

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

  /** e^x per lane (Cephes expf); 0 below {@link #EXP_LO}. */
  static FloatVector exp(FloatVector x) {
    FloatVector xc = x.max(EXP_LO).min(EXP_HI);
    FloatVector n = xc.mul(LOG2E).add(ROUND).sub(ROUND);
    FloatVector r = xc.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
    FloatVector p = r.mul(P0).add(P1);
    p = p.mul(r).add(P2);
    p = p.mul(r).add(P3);
    p = p.mul(r).add(P4);
    p = p.mul(r).add(P5);
    p = p.mul(r.mul(r)).add(r).add(1f);
    IntVector bits =
        ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
    return p.mul(bits.reinterpretAsFloats()).blend(0f, x.lt(EXP_LO));
  }

  /** One lane of {@link #exp(FloatVector)}: the same operations in the same order. */
  static float exp(float x) {
    if (x < EXP_LO) {
      return 0f;
    }
    float xc = Math.min(x, EXP_HI);
    float n = xc * LOG2E + ROUND - ROUND;
    float r = xc - n * LN2_HI - n * LN2_LO;
    float p = r * P0 + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    p = p * (r * r) + r + 1f;
    return p * Float.intBitsToFloat(((int) n + 127) << 23);
  }

  /** Σ of the lanes, added in lane order (reproducible, unlike {@code reduceLanes(ADD)}). */
  private static float sum(FloatVector v) {
    float s = 0f;
    for (float f : v.toArray()) {
      s += f;
    }
    return s;
  }

  private static FloatVector load(ByteBuffer b, int byteOffset) {
    return FloatVector.fromByteBuffer(S, b, byteOffset, LE);
  }

  private static int bound(int n) {
    return n - n % L;
  }

  /**
   * Softmax cross-entropy, forward: for each row with a target, {@code nll[r] = log Σ exp(x) −
   * x[target]}; the row becomes {@code exp(x − max)} and {@code invSum[r]} its 1/Σ, which {@link
   * #crossEntropyBackward} turns into the gradient. Rows without a target (target &lt; 0) are left
   * untouched.
   */
  static void crossEntropy(
      ByteBuffer x, int off, int rows, int cols, int[] targets, double[] nll, double[] invSum) {
    int vb = bound(cols);
    for (int r = 0; r < rows; r++) {
      if (targets[r] < 0) {
        continue;
      }
      int base = off + r * cols * 4;
      float xt = x.getFloat(base + targets[r] * 4);
      FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
      int i = 0;
      for (; i < vb; i += L) {
        vmax = vmax.max(load(x, base + i * 4));
      }
      float max = vmax.reduceLanes(VectorOperators.MAX);
      for (; i < cols; i++) {
        max = Math.max(max, x.getFloat(base + i * 4));
      }
      FloatVector vsum = FloatVector.zero(S);
      for (i = 0; i < vb; i += L) {
        FloatVector e = exp(load(x, base + i * 4).sub(max));
        e.intoByteBuffer(x, base + i * 4, LE);
        vsum = vsum.add(e);
      }
      double sum = sum(vsum);
      for (; i < cols; i++) {
        float e = exp(x.getFloat(base + i * 4) - max);
        x.putFloat(base + i * 4, e);
        sum += e;
      }
      nll[r] = StrictMath.log(sum) + max - xt;
      invSum[r] = 1.0 / sum;
    }
  }

  /**
   * Softmax cross-entropy, backward: each row becomes {@code weight[r] · (softmax − onehot)}, or
   * zero when its weight is zero.
   */
  static void crossEntropyBackward(
      ByteBuffer x, int off, int rows, int cols, int[] targets, double[] weight, double[] invSum) {
    int vb = bound(cols);
    FloatVector zero = FloatVector.zero(S);
    for (int r = 0; r < rows; r++) {
      int base = off + r * cols * 4;
      if (weight[r] == 0.0) {
        int i = 0;
        for (; i < vb; i += L) {
          zero.intoByteBuffer(x, base + i * 4, LE);
        }
        for (; i < cols; i++) {
          x.putFloat(base + i * 4, 0f);
        }
        continue;
      }
      float scale = (float) (weight[r] * invSum[r]);
      int i = 0;
      for (; i < vb; i += L) {
        load(x, base + i * 4).mul(scale).intoByteBuffer(x, base + i * 4, LE);
      }
      for (; i < cols; i++) {
        x.putFloat(base + i * 4, x.getFloat(base + i * 4) * scale);
      }
      int t = base + targets[r] * 4;
      x.putFloat(t, (float) (x.getFloat(t) - weight[r]));
    }
  }

  /** Row softmax of {@code s + mask}, in place in {@code s}: add, max, exp, sum, scale per row. */
  static void maskedSoftmax(ByteBuffer s, int off, ByteBuffer m, int moff, int rows, int cols) {
    int vb = bound(cols);
    for (int r = 0; r < rows; r++) {
      int base = off + r * cols * 4;
      int mbase = moff + r * cols * 4;
      FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
      int i = 0;
      for (; i < vb; i += L) {
        FloatVector v = load(s, base + i * 4).add(load(m, mbase + i * 4));
        v.intoByteBuffer(s, base + i * 4, LE);
        vmax = vmax.max(v);
      }
      float max = vmax.reduceLanes(VectorOperators.MAX);
      for (; i < cols; i++) {
        float v = s.getFloat(base + i * 4) + m.getFloat(mbase + i * 4);
        s.putFloat(base + i * 4, v);
        max = Math.max(max, v);
      }
      FloatVector vsum = FloatVector.zero(S);
      for (i = 0; i < vb; i += L) {
        FloatVector e = exp(load(s, base + i * 4).sub(max));
        e.intoByteBuffer(s, base + i * 4, LE);
        vsum = vsum.add(e);
      }
      float sum = sum(vsum);
      for (; i < cols; i++) {
        float e = exp(s.getFloat(base + i * 4) - max);
        s.putFloat(base + i * 4, e);
        sum += e;
      }
      float inv = 1f / sum;
      for (i = 0; i < vb; i += L) {
        load(s, base + i * 4).mul(inv).intoByteBuffer(s, base + i * 4, LE);
      }
      for (; i < cols; i++) {
        s.putFloat(base + i * 4, s.getFloat(base + i * 4) * inv);
      }
    }
  }

  /**
   * Softmax backward given the output: {@code dP[r] = (dP[r] − Σ_j dOut[r,j]·out[r,j]) ⊙ P[r]},
   * where the row dot over the value width replaces Σ dP ⊙ P (out = P v, dP = dOut vᵀ).
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
    int vb = bound(cols);
    int wb = bound(width);
    for (int r = 0; r < rows; r++) {
      int ob = r * width * 4;
      FloatVector vdot = FloatVector.zero(S);
      int i = 0;
      for (; i < wb; i += L) {
        vdot = load(dOut, dOutOff + ob + i * 4).fma(load(out, outOff + ob + i * 4), vdot);
      }
      float dot = sum(vdot);
      for (; i < width; i++) {
        dot += dOut.getFloat(dOutOff + ob + i * 4) * out.getFloat(outOff + ob + i * 4);
      }
      int rb = r * cols * 4;
      for (i = 0; i < vb; i += L) {
        load(dp, dpOff + rb + i * 4)
            .sub(dot)
            .mul(load(p, pOff + rb + i * 4))
            .intoByteBuffer(dp, dpOff + rb + i * 4, LE);
      }
      for (; i < cols; i++) {
        int a = dpOff + rb + i * 4;
        dp.putFloat(a, (dp.getFloat(a) - dot) * p.getFloat(pOff + rb + i * 4));
      }
    }
  }

  /** {@code sig = σ(gate)}, {@code act = gate · sig · up}, over {@code n} elements. */
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
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector g = load(gate, gOff + i * 4);
      FloatVector sg = ONE.div(exp(g.neg()).add(1f));
      sg.intoByteBuffer(sig, sOff + i * 4, LE);
      g.mul(sg).mul(load(up, uOff + i * 4)).intoByteBuffer(act, aOff + i * 4, LE);
    }
    for (; i < n; i++) {
      float g = gate.getFloat(gOff + i * 4);
      float sg = 1f / (exp(-g) + 1f);
      sig.putFloat(sOff + i * 4, sg);
      act.putFloat(aOff + i * 4, g * sg * up.getFloat(uOff + i * 4));
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
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector g = load(gate, gOff + i * 4);
      FloatVector sg = load(sig, sOff + i * 4);
      FloatVector da = load(dAct, dOff + i * 4);
      da.mul(g).mul(sg).intoByteBuffer(dUp, duOff + i * 4, LE);
      FloatVector d = g.mul(ONE.sub(sg)).add(1f).mul(sg).mul(load(up, uOff + i * 4)).mul(da);
      d.intoByteBuffer(dGate, dgOff + i * 4, LE);
    }
    for (; i < n; i++) {
      float g = gate.getFloat(gOff + i * 4);
      float sg = sig.getFloat(sOff + i * 4);
      float da = dAct.getFloat(dOff + i * 4);
      dUp.putFloat(duOff + i * 4, da * g * sg);
      dGate.putFloat(dgOff + i * 4, (1f + g * (1f - sg)) * sg * up.getFloat(uOff + i * 4) * da);
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
    int vb = bound(cols);
    for (int r = 0; r < rows; r++) {
      int rb = r * cols * 4;
      FloatVector vss = FloatVector.zero(S);
      int i = 0;
      for (; i < vb; i += L) {
        FloatVector v = load(x, xOff + rb + i * 4);
        vss = v.fma(v, vss);
      }
      float ss = sum(vss);
      for (; i < cols; i++) {
        float v = x.getFloat(xOff + rb + i * 4);
        ss += v * v;
      }
      float inv = (float) (1.0 / Math.sqrt(ss / cols + eps));
      rInv.putFloat(rOff + r * 4, inv);
      for (i = 0; i < vb; i += L) {
        load(x, xOff + rb + i * 4)
            .mul(inv)
            .mul(load(w, wOff + i * 4))
            .intoByteBuffer(out, oOff + rb + i * 4, LE);
      }
      for (; i < cols; i++) {
        out.putFloat(
            oOff + rb + i * 4, x.getFloat(xOff + rb + i * 4) * inv * w.getFloat(wOff + i * 4));
      }
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
    int vb = bound(cols);
    for (int r = 0; r < rows; r++) {
      int rb = r * cols * 4;
      float inv = rInv.getFloat(rOff + r * 4);
      FloatVector vdot = FloatVector.zero(S);
      int i = 0;
      for (; i < vb; i += L) {
        FloatVector g = load(dOut, dOff + rb + i * 4).mul(load(w, wOff + i * 4));
        vdot = g.fma(load(x, xOff + rb + i * 4), vdot);
      }
      float dot = sum(vdot);
      for (; i < cols; i++) {
        dot +=
            dOut.getFloat(dOff + rb + i * 4)
                * w.getFloat(wOff + i * 4)
                * x.getFloat(xOff + rb + i * 4);
      }
      float mean = dot * inv / cols; // mean(g · xn)
      float c = mean * inv; // xn · mean = x · (inv · mean)
      for (i = 0; i < vb; i += L) {
        FloatVector g = load(dOut, dOff + rb + i * 4).mul(load(w, wOff + i * 4));
        FloatVector d = g.sub(load(x, xOff + rb + i * 4).mul(c)).mul(inv);
        load(dx, dxOff + rb + i * 4).add(d).intoByteBuffer(dx, dxOff + rb + i * 4, LE);
      }
      for (; i < cols; i++) {
        float g = dOut.getFloat(dOff + rb + i * 4) * w.getFloat(wOff + i * 4);
        float d = (g - x.getFloat(xOff + rb + i * 4) * c) * inv;
        dx.putFloat(dxOff + rb + i * 4, dx.getFloat(dxOff + rb + i * 4) + d);
      }
    }
  }

  /**
   * Rotary embedding over head vectors of width {@code hd}, in place; {@code inverse} applies the
   * transpose (the backward): forward {@code [x1·c − x2·s, x2·c + x1·s]}, backward {@code [d1·c +
   * d2·s, d2·c − d1·s]}, with c, s the row's cos/sin table halves.
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
    int half = hd / 2;
    int vb = bound(half);
    float sign = inverse ? -1f : 1f;
    for (int r = 0; r < rows; r++) {
      int rb = r * hd * 4;
      int i = 0;
      for (; i < vb; i += L) {
        int lo = rb + i * 4;
        int hi = rb + (i + half) * 4;
        FloatVector x1 = load(x, xOff + lo);
        FloatVector x2 = load(x, xOff + hi);
        FloatVector c1 = load(cos, cOff + lo);
        FloatVector s1 = load(sin, sOff + lo).mul(sign);
        FloatVector c2 = load(cos, cOff + hi);
        FloatVector s2 = load(sin, sOff + hi).mul(sign);
        x1.mul(c1).sub(x2.mul(s1)).intoByteBuffer(x, xOff + lo, LE);
        x2.mul(c2).add(x1.mul(s2)).intoByteBuffer(x, xOff + hi, LE);
      }
      for (; i < half; i++) {
        int lo = rb + i * 4;
        int hi = rb + (i + half) * 4;
        float x1 = x.getFloat(xOff + lo);
        float x2 = x.getFloat(xOff + hi);
        x.putFloat(xOff + lo, x1 * cos.getFloat(cOff + lo) - x2 * sign * sin.getFloat(sOff + lo));
        x.putFloat(xOff + hi, x2 * cos.getFloat(cOff + hi) + x1 * sign * sin.getFloat(sOff + hi));
      }
    }
  }
}
