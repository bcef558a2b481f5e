package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 kernels of incremental decoding ({@code io.loraspark.train.decode}) besides the
 * projections ({@link PackedMatmul}): per-row RMSNorm, rotary embedding, attention over a KV cache
 * and SiLU on heap {@code float[]} activations; embeddings, norms and biases are read in place from
 * ND4J's buffers. No call allocates.
 *
 * <p><b>Batch invariance.</b> Every result of a row is computed by the same arithmetic in the same
 * order whatever other rows share the call and however the work is split over threads. A projection
 * output is one in-order chain of fused multiply-adds in a lane of its own ({@link PackedMatmul}),
 * and so is each output of an adapter's A'x and B'u ({@link #outer}); an attention dot product or a
 * dense ΔW row is one vector accumulator, its pairwise lane sum, then a scalar fused tail ({@link
 * #dotHeap}). So a request's logits are the same bits alone, in a batch of 16, or chunked
 * differently in prefill (a general BLAS picks different kernels for 1 and 16 rows and does not
 * promise that).
 *
 * <p>Uses the JDK Vector API, so only loaded when {@link Kernels#VECTOR}; exp is {@link
 * VectorMath#exp(float)} (reproducible whether compiled or not).
 */
public final class DecodeKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();

  // half vectors, for the part past the last whole vector (at least one lane)
  private static final VectorSpecies<Float> H =
      VectorSpecies.of(float.class, VectorShape.forBitSize(S.vectorBitSize() / 2));

  /** Floats per vector: {@link #outer}'s outputs are best split in multiples of it. */
  public static final int LANES = L;

  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

  private DecodeKernels() {}

  /** A part of a row-parallel call: rows [from, to). */
  public interface RowRange {
    void run(int from, int to);
  }

  /**
   * Runs {@code body} over rows [0, rows) split over the kernel threads ({@link Kernels#threads},
   * spinning between calls: {@link SpinPool}) when the call touches enough floats to pay for them;
   * returns when all parts are done.
   */
  public static void parallel(int rows, long floatsPerRow, RowRange body) {
    if ((long) rows * floatsPerRow < MIN_PARALLEL_FLOATS) {
      body.run(0, rows);
    } else {
      SpinPool.get().run(rows, body);
    }
  }

  // below this many floats per call, even a spinning helper costs more than it saves
  private static final long MIN_PARALLEL_FLOATS = 1 << 14;

  /**
   * Whether the kernels can run in this JVM (started with {@code --add-modules
   * jdk.incubator.vector}).
   */
  public static boolean available() {
    return Kernels.VECTOR;
  }

  // the butterfly partners of a pairwise lane sum, lane i with lane i ^ bit; static final, so C2
  // compiles each rearrange to one permute (a shuffle read from an array is not intrinsified)
  private static final VectorShuffle<Float> XOR8 = partner(8);
  private static final VectorShuffle<Float> XOR4 = partner(4);
  private static final VectorShuffle<Float> XOR2 = partner(2);
  private static final VectorShuffle<Float> XOR1 = partner(1);

  private static VectorShuffle<Float> partner(int bit) {
    return VectorShuffle.fromOp(S, i -> (i ^ bit) < L ? i ^ bit : i);
  }

  /**
   * Σ of the lanes as a pairwise tree: lanes i and i + L/2 first, then pairs of those, down to lane
   * 0. Every step is a lanewise add of a fixed permutation, so the order is the same compiled or
   * interpreted and for every row; log2(L) shuffle-adds instead of L dependent scalar adds (the
   * reduction was half of a 16-row decode step).
   */
  private static float sum(FloatVector v) {
    if (L > 16) {
      return v.reduceLanes(VectorOperators.ADD); // no such x86 vector today; in lane order
    }
    if (L == 16) {
      v = v.add(v.rearrange(XOR8));
    }
    if (L >= 8) {
      v = v.add(v.rearrange(XOR4));
    }
    if (L >= 4) {
      v = v.add(v.rearrange(XOR2));
    }
    if (L >= 2) {
      v = v.add(v.rearrange(XOR1));
    }
    return v.lane(0);
  }

  private static FloatVector w(ByteBuffer b, int byteOffset) {
    return FloatVector.fromByteBuffer(S, b, byteOffset, LE);
  }

  /**
   * One row against a heap matrix (a dense Delta-LoRA ΔW) over the outputs [from, to), each output
   * a {@link #dotHeap}: {@code y[yo + j] = Σ_i m[j, i] · x[xo + i]}.
   */
  public static void matvec(
      float[] m, int from, int to, int in, float[] x, int xo, float[] y, int yo) {
    for (int j = from; j < to; j++) {
      y[yo + j] = dotHeap(m, j * in, x, xo, in);
    }
  }

  /**
   * {@code z_q = Σ_c u_q[c] · bt[c, :]} over c in [kFrom, kTo) and the outputs [from, to) for the
   * rows q &lt; {@code count} (at most 4) at offsets uo[at + q] and zo[at + q]: each output the
   * in-order chain of fused multiply-adds over c from kFrom, the same as {@link #addScaled} of each
   * bt row onto zeros, with up to four rows sharing each load. An output's chain is the same
   * however [from, to) is split.
   *
   * @param bt [rank, out], rows kFrom..kTo read
   */
  public static void outer(
      float[] bt,
      int kFrom,
      int kTo,
      int out,
      int from,
      int to,
      float[] u,
      int[] uo,
      float[] z,
      int[] zo,
      int at,
      int count) {
    if (count == 4) {
      outer4(bt, kFrom, kTo, out, from, to, u, uo, z, zo, at);
    } else {
      for (int q = at; q < at + count; q++) {
        outer1(bt, kFrom, kTo, out, from, to, u, uo[q], z, zo[q]);
      }
    }
  }

  /**
   * {@link #outer} of four rows: two vectors of outputs at a time (eight chains), then one, then
   * the last part-vector row by row. Every vector is assigned on every path, so none is boxed.
   */
  private static void outer4(
      float[] bt,
      int kFrom,
      int kTo,
      int out,
      int from,
      int to,
      float[] u,
      int[] uo,
      float[] z,
      int[] zo,
      int at) {
    int u0 = uo[at];
    int u1 = uo[at + 1];
    int u2 = uo[at + 2];
    int u3 = uo[at + 3];
    int z0 = zo[at];
    int z1 = zo[at + 1];
    int z2 = zo[at + 2];
    int z3 = zo[at + 3];
    int j = from;
    for (; j + 2 * L <= to; j += 2 * L) {
      FloatVector a0 = FloatVector.zero(S);
      FloatVector b0 = FloatVector.zero(S);
      FloatVector c0 = FloatVector.zero(S);
      FloatVector d0 = FloatVector.zero(S);
      FloatVector a1 = FloatVector.zero(S);
      FloatVector b1 = FloatVector.zero(S);
      FloatVector c1 = FloatVector.zero(S);
      FloatVector d1 = FloatVector.zero(S);
      for (int k = kFrom; k < kTo; k++) {
        FloatVector w0 = FloatVector.fromArray(S, bt, k * out + j);
        FloatVector w1 = FloatVector.fromArray(S, bt, k * out + j + L);
        FloatVector v = FloatVector.broadcast(S, u[u0 + k]);
        a0 = w0.fma(v, a0);
        a1 = w1.fma(v, a1);
        v = FloatVector.broadcast(S, u[u1 + k]);
        b0 = w0.fma(v, b0);
        b1 = w1.fma(v, b1);
        v = FloatVector.broadcast(S, u[u2 + k]);
        c0 = w0.fma(v, c0);
        c1 = w1.fma(v, c1);
        v = FloatVector.broadcast(S, u[u3 + k]);
        d0 = w0.fma(v, d0);
        d1 = w1.fma(v, d1);
      }
      a0.intoArray(z, z0 + j);
      b0.intoArray(z, z1 + j);
      c0.intoArray(z, z2 + j);
      d0.intoArray(z, z3 + j);
      a1.intoArray(z, z0 + j + L);
      b1.intoArray(z, z1 + j + L);
      c1.intoArray(z, z2 + j + L);
      d1.intoArray(z, z3 + j + L);
    }
    for (; j + L <= to; j += L) {
      FloatVector a0 = FloatVector.zero(S);
      FloatVector b0 = FloatVector.zero(S);
      FloatVector c0 = FloatVector.zero(S);
      FloatVector d0 = FloatVector.zero(S);
      for (int k = kFrom; k < kTo; k++) {
        FloatVector w = FloatVector.fromArray(S, bt, k * out + j);
        a0 = w.fma(FloatVector.broadcast(S, u[u0 + k]), a0);
        b0 = w.fma(FloatVector.broadcast(S, u[u1 + k]), b0);
        c0 = w.fma(FloatVector.broadcast(S, u[u2 + k]), c0);
        d0 = w.fma(FloatVector.broadcast(S, u[u3 + k]), d0);
      }
      a0.intoArray(z, z0 + j);
      b0.intoArray(z, z1 + j);
      c0.intoArray(z, z2 + j);
      d0.intoArray(z, z3 + j);
    }
    for (int q = at; q < at + 4 && j < to; q++) { // the last part-vector, row by row
      outer1(bt, kFrom, kTo, out, j, to, u, uo[q], z, zo[q]);
    }
  }

  /**
   * {@link #outer} of one row: whole vectors, then half vectors (a rank-8 A'x on 16-lane vectors),
   * then scalars; every output the same chain whichever of them computes it.
   */
  private static void outer1(
      float[] bt,
      int kFrom,
      int kTo,
      int out,
      int from,
      int to,
      float[] u,
      int uo,
      float[] z,
      int zo) {
    int j = from;
    for (; j + L <= to; j += L) {
      FloatVector a = FloatVector.zero(S);
      for (int k = kFrom; k < kTo; k++) {
        a = FloatVector.fromArray(S, bt, k * out + j).fma(FloatVector.broadcast(S, u[uo + k]), a);
      }
      a.intoArray(z, zo + j);
    }
    for (; j + H.length() <= to; j += H.length()) {
      FloatVector a = FloatVector.zero(H);
      for (int k = kFrom; k < kTo; k++) {
        a = FloatVector.fromArray(H, bt, k * out + j).fma(FloatVector.broadcast(H, u[uo + k]), a);
      }
      a.intoArray(z, zo + j);
    }
    for (; j < to; j++) {
      float acc = 0f;
      for (int k = kFrom; k < kTo; k++) {
        acc = Math.fma(bt[k * out + j], u[uo + k], acc);
      }
      z[zo + j] = acc;
    }
  }

  /** {@code y[yo + j] += c · z[j]} over n floats. */
  public static void addScaled(float[] y, int yo, float[] z, int zo, float c, int n) {
    int i = 0;
    for (; i + L <= n; i += L) {
      FloatVector.fromArray(S, z, zo + i)
          .fma(FloatVector.broadcast(S, c), FloatVector.fromArray(S, y, yo + i))
          .intoArray(y, yo + i);
    }
    for (; i < n; i++) {
      y[yo + i] = Math.fma(z[zo + i], c, y[yo + i]);
    }
  }

  /** {@code y[r, j] += b[j]} for every row: a projection's bias (b read in place). */
  public static void addBias(ByteBuffer bb, int bOff, float[] y, int rows, int n) {
    for (int r = 0; r < rows; r++) {
      int yo = r * n;
      int i = 0;
      for (; i + L <= n; i += L) {
        FloatVector.fromArray(S, y, yo + i).add(w(bb, bOff + i * 4)).intoArray(y, yo + i);
      }
      for (; i < n; i++) {
        y[yo + i] += bb.getFloat(bOff + i * 4);
      }
    }
  }

  /**
   * RMSNorm per row: {@code out = x · w / sqrt(mean(x²) + eps)}, the weight read in place.
   *
   * @param x rows, [rows, n]
   * @param out out, [rows, n]
   */
  public static void rmsNorm(
      float[] x, ByteBuffer wb, int wOff, float eps, float[] out, int rows, int n) {
    for (int r = 0; r < rows; r++) {
      int o = r * n;
      FloatVector acc = FloatVector.zero(S);
      int i = 0;
      for (; i + L <= n; i += L) {
        FloatVector v = FloatVector.fromArray(S, x, o + i);
        acc = v.fma(v, acc);
      }
      float ss = sum(acc);
      for (; i < n; i++) {
        ss = Math.fma(x[o + i], x[o + i], ss);
      }
      float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
      i = 0;
      for (; i + L <= n; i += L) {
        FloatVector.fromArray(S, x, o + i).mul(inv).mul(w(wb, wOff + i * 4)).intoArray(out, o + i);
      }
      for (; i < n; i++) {
        out[o + i] = x[o + i] * inv * wb.getFloat(wOff + i * 4);
      }
    }
  }

  /**
   * Rotary embedding in place on the {@code heads} head vectors of one row (HF rotate-half layout):
   * {@code [x1·c − x2·s, x2·c + x1·s]}.
   *
   * @param cos the row position's cos of each frequency, [HD/2]
   * @param sin the row position's sin, [HD/2]
   */
  public static void rope(float[] x, int xo, int heads, int hd, float[] cos, float[] sin, int co) {
    int half = hd / 2;
    for (int h = 0; h < heads; h++) {
      int base = xo + h * hd;
      for (int i = 0; i < half; i++) {
        float x1 = x[base + i];
        float x2 = x[base + half + i];
        float c = cos[co + i];
        float s = sin[co + i];
        x[base + i] = x1 * c - x2 * s;
        x[base + half + i] = x2 * c + x1 * s;
      }
    }
  }

  /**
   * Causal attention of one query row over a KV cache stored position-minor ({@code [NKV, HD,
   * capacity]}: one kv head's d-th coordinate of every position is contiguous, so scores and
   * outputs vectorise over positions, whatever the head dim): for each query head h (kv head g = h
   * / G), {@code out_h = Σ_{t < len} softmax_t(q_h · k_t,g · scale) v_t,g}.
   *
   * @param q the row's rotated queries, NH*HD floats from qo
   * @param keys rotated keys, [NKV, HD, capacity]
   * @param values values, [NKV, HD, capacity]
   * @param len positions to attend to (the row's position + 1)
   * @param scores scratch, at least len floats
   * @param out out, NH*HD floats from oo
   */
  public static void attend(
      float[] q,
      int qo,
      float[] keys,
      float[] values,
      int capacity,
      int len,
      int nh,
      int nkv,
      int hd,
      float scale,
      float[] scores,
      float[] out,
      int oo) {
    int group = nh / nkv;
    for (int h = 0; h < nh; h++) {
      int head = (h / group) * hd * capacity; // kv head g's block
      scores(q, qo + h * hd, keys, head, capacity, len, hd, scale, scores);
      float inv = 1f / softmaxNumerators(scores, len);
      for (int d = 0; d < hd; d++) {
        out[oo + h * hd + d] = dotHeap(scores, 0, values, head + d * capacity, len) * inv;
      }
    }
  }

  /** Σ a·b over n heap floats, in the order of {@link #dot}. */
  private static float dotHeap(float[] a, int ao, float[] b, int bo, int n) {
    FloatVector acc = FloatVector.zero(S);
    int i = 0;
    for (; i + L <= n; i += L) {
      acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
    }
    float s = sum(acc);
    for (; i < n; i++) {
      s = Math.fma(a[ao + i], b[bo + i], s);
    }
    return s;
  }

  /** {@code scores[t] = scale · Σ_d q[d] k[d, t]}, L positions per vector, d in order. */
  private static void scores(
      float[] q, int qo, float[] k, int ko, int capacity, int len, int hd, float scale, float[] s) {
    int t = 0;
    for (; t + L <= len; t += L) {
      FloatVector acc = FloatVector.zero(S);
      for (int d = 0; d < hd; d++) {
        acc =
            FloatVector.fromArray(S, k, ko + d * capacity + t)
                .fma(FloatVector.broadcast(S, q[qo + d]), acc);
      }
      acc.mul(scale).intoArray(s, t);
    }
    for (; t < len; t++) {
      float acc = 0f;
      for (int d = 0; d < hd; d++) {
        acc = Math.fma(k[ko + d * capacity + t], q[qo + d], acc);
      }
      s[t] = acc * scale;
    }
  }

  /** {@code s[t] ← exp(s[t] − max s)} over len floats; returns their sum. */
  private static float softmaxNumerators(float[] s, int len) {
    float max = Float.NEGATIVE_INFINITY;
    int t = 0;
    if (len >= L) {
      FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
      for (; t + L <= len; t += L) {
        vmax = vmax.max(FloatVector.fromArray(S, s, t));
      }
      max = vmax.reduceLanes(VectorOperators.MAX); // exact in any order
    }
    for (; t < len; t++) {
      max = Math.max(max, s[t]);
    }
    FloatVector acc = FloatVector.zero(S);
    t = 0;
    for (; t + L <= len; t += L) {
      FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, t).sub(max));
      e.intoArray(s, t);
      acc = acc.add(e);
    }
    float total = sum(acc);
    for (; t < len; t++) {
      float e = VectorMath.exp(s[t] - max);
      s[t] = e;
      total += e;
    }
    return total;
  }

  /** {@code gate ← silu(gate) · up = gate · σ(gate) · up}, in place over n floats. */
  public static void siluMul(float[] gate, float[] up, int n) {
    int i = 0;
    for (; i + L <= n; i += L) {
      FloatVector g = FloatVector.fromArray(S, gate, i);
      FloatVector sig = VectorMath.exp(g.neg()).add(1f);
      g.div(sig).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
    }
    for (; i < n; i++) {
      float g = gate[i];
      gate[i] = g / (VectorMath.exp(-g) + 1f) * up[i];
    }
  }

  /** Copies row {@code id} of a [V, C] embedding (read in place) into {@code x[xo..xo+C)}. */
  public static void embed(ByteBuffer eb, int eOff, int id, int c, float[] x, int xo) {
    int base = eOff + id * c * 4;
    int i = 0;
    for (; i + L <= c; i += L) {
      w(eb, base + i * 4).intoArray(x, xo + i);
    }
    for (; i < c; i++) {
      x[xo + i] = eb.getFloat(base + i * 4);
    }
  }
}
