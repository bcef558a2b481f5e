package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 kernels of incremental decoding ({@code io.loraspark.train.decode}): products of a
 * few token rows with the frozen projections, packed once per base into panels ({@link #pack}), and
 * per-row RMSNorm, rotary embedding, attention over a KV cache and SiLU on heap {@code float[]}
 * activations; embeddings, norms and biases are read in place from ND4J's buffers. No call
 * allocates.
 *
 * <p><b>Batch invariance.</b> Every result of a row is computed by the same arithmetic in the same
 * order whatever other rows share the call and however the outputs are split over threads. A
 * projection output is one in-order chain of fused multiply-adds in a lane of its own ({@link
 * #matmul}: outputs across the lanes, so several rows share each weight load and nothing ends in a
 * lane reduction); an attention or adapter dot product is one vector accumulator, its pairwise lane
 * sum, then a scalar fused tail ({@link #dotHeap}). So a request's logits are the same bits alone,
 * in a batch of 16, or chunked differently in prefill (a general BLAS picks different kernels for 1
 * and 16 rows and does not promise that). Measured and dropped, 2026-12-07: dot products per (row,
 * output) with a lane sum each, blocked 4 x 1 and 2 x 4: the sums were a fifth of a 16-row step and
 * 16 rows made only 2.3–2.7x one row's tokens.
 *
 * <p>Uses the JDK Vector API, so only loaded when {@link Kernels#VECTOR}; exp is {@link
 * VectorKernels#exp(float)} (reproducible whether compiled or not).
 */
public final class DecodeKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
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
   * Outputs per panel of a packed weight ({@link #pack}): two vectors, so a lone row still has two
   * independent accumulator chains and the widest projection's panels split evenly over threads.
   */
  public static final int PANEL = 2 * L;

  /**
   * W [out, in] (read in place from a buffer at a byte offset) packed for {@link #matmul}: panels
   * of {@link #PANEL} consecutive outputs, each stored input-major ({@code [in][PANEL]}, so one
   * input's weights for the panel's outputs are two contiguous vectors), the last panel zero
   * padded.
   */
  public static float[] pack(ByteBuffer wb, int wOff, int out, int in) {
    int panels = (out + PANEL - 1) / PANEL;
    float[] packed = new float[Math.multiplyExact(panels * PANEL, in)];
    java.nio.FloatBuffer w = wb.duplicate().position(wOff).slice().order(LE).asFloatBuffer();
    float[] row = new float[in];
    for (int j = 0; j < out; j++) {
      w.get(j * in, row);
      int base = (j / PANEL) * in * PANEL + j % PANEL;
      for (int i = 0; i < in; i++) {
        packed[base + i * PANEL] = row[i];
      }
    }
    return packed;
  }

  /**
   * {@code y[r, j] = Σ_i W[j, i] · x[r, i]} for rows r &lt; {@code rows}, W packed by {@link
   * #pack}; panels split over the kernel threads.
   *
   * <p>Each output is one chain of fused multiply-adds over i in order, starting from zero: its
   * lane of a vector accumulator. The chain is the same whichever rows and panels share a call and
   * however many rows are blocked together, which is what makes decoding batch invariant; and no
   * output ends in a lane reduction. Four rows share each weight load (eight accumulators), a lone
   * row takes two panels at once (four chains in flight).
   *
   * @param x rows, [rows, in]
   * @param y out, [rows, out]
   */
  public static void matmul(float[] w, int out, int in, float[] x, int rows, float[] y) {
    int panels = (out + PANEL - 1) / PANEL;
    parallel(
        panels,
        (long) PANEL * in * rows,
        (from, to) -> {
          int blocked = rows - rows % 4;
          for (int p = from; p < to; p++) {
            for (int r = 0; r < blocked; r += 4) {
              panelRows4(w, p, out, in, x, r, y);
            }
          }
          for (int r = blocked; r < rows; r++) {
            int p = from;
            for (; p + 2 <= to; p += 2) {
              panelPairRow(w, p, out, in, x, r, y);
            }
            if (p < to) {
              panelRow(w, p, out, in, x, r, y);
            }
          }
        });
  }

  /** Rows r..r+3 against panel p: eight accumulators, each weight load serving four rows. */
  private static void panelRows4(float[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector b0 = FloatVector.zero(S);
    FloatVector b1 = FloatVector.zero(S);
    FloatVector c0 = FloatVector.zero(S);
    FloatVector c1 = FloatVector.zero(S);
    FloatVector d0 = FloatVector.zero(S);
    FloatVector d1 = FloatVector.zero(S);
    int wo = p * in * PANEL;
    int xa = r * in;
    int xb = xa + in;
    int xc = xb + in;
    int xd = xc + in;
    for (int i = 0; i < in; i++, wo += PANEL) {
      FloatVector w0 = FloatVector.fromArray(S, w, wo);
      FloatVector w1 = FloatVector.fromArray(S, w, wo + L);
      FloatVector v = FloatVector.broadcast(S, x[xa + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[xb + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[xc + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[xd + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
    }
    int j = p * PANEL;
    int yo = r * out + j;
    if (j + PANEL <= out) {
      a0.intoArray(y, yo);
      a1.intoArray(y, yo + L);
      b0.intoArray(y, yo + out);
      b1.intoArray(y, yo + out + L);
      c0.intoArray(y, yo + 2 * out);
      c1.intoArray(y, yo + 2 * out + L);
      d0.intoArray(y, yo + 3 * out);
      d1.intoArray(y, yo + 3 * out + L);
    } else { // the last panel, padded: store the lanes of real outputs
      VectorMask<Float> m0 = S.indexInRange(j, out);
      VectorMask<Float> m1 = S.indexInRange(j + L, out);
      a0.intoArray(y, yo, m0);
      a1.intoArray(y, yo + L, m1);
      b0.intoArray(y, yo + out, m0);
      b1.intoArray(y, yo + out + L, m1);
      c0.intoArray(y, yo + 2 * out, m0);
      c1.intoArray(y, yo + 2 * out + L, m1);
      d0.intoArray(y, yo + 3 * out, m0);
      d1.intoArray(y, yo + 3 * out + L, m1);
    }
  }

  /** Row r against panels p and p + 1 (p + 1 &lt; panels): four chains in flight. */
  private static void panelPairRow(float[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector b0 = FloatVector.zero(S);
    FloatVector b1 = FloatVector.zero(S);
    int wa = p * in * PANEL;
    int wb = wa + in * PANEL;
    int xo = r * in;
    for (int i = 0; i < in; i++) {
      FloatVector v = FloatVector.broadcast(S, x[xo + i]);
      int o = i * PANEL;
      a0 = FloatVector.fromArray(S, w, wa + o).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, wa + o + L).fma(v, a1);
      b0 = FloatVector.fromArray(S, w, wb + o).fma(v, b0);
      b1 = FloatVector.fromArray(S, w, wb + o + L).fma(v, b1);
    }
    int j = p * PANEL;
    int yo = r * out + j;
    a0.intoArray(y, yo);
    a1.intoArray(y, yo + L);
    if (j + 2 * PANEL <= out) {
      b0.intoArray(y, yo + PANEL);
      b1.intoArray(y, yo + PANEL + L);
    } else {
      b0.intoArray(y, yo + PANEL, S.indexInRange(j + PANEL, out));
      b1.intoArray(y, yo + PANEL + L, S.indexInRange(j + PANEL + L, out));
    }
  }

  /** Row r against panel p alone. */
  private static void panelRow(float[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    int wo = p * in * PANEL;
    int xo = r * in;
    for (int i = 0; i < in; i++, wo += PANEL) {
      FloatVector v = FloatVector.broadcast(S, x[xo + i]);
      a0 = FloatVector.fromArray(S, w, wo).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, wo + L).fma(v, a1);
    }
    int j = p * PANEL;
    int yo = r * out + j;
    if (j + PANEL <= out) {
      a0.intoArray(y, yo);
      a1.intoArray(y, yo + L);
    } else {
      a0.intoArray(y, yo, S.indexInRange(j, out));
      a1.intoArray(y, yo + L, S.indexInRange(j + L, out));
    }
  }

  /**
   * One row against a heap matrix (an adapter factor), each output a {@link #dotHeap}: {@code y[yo
   * + j] = Σ_i m[j, i] · x[xo + i]}.
   */
  public static void matvec(float[] m, int out, int in, float[] x, int xo, float[] y, int yo) {
    for (int j = 0; j < out; j++) {
      y[yo + j] = dotHeap(m, j * in, x, xo, in);
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
      FloatVector e = VectorKernels.exp(FloatVector.fromArray(S, s, t).sub(max));
      e.intoArray(s, t);
      acc = acc.add(e);
    }
    float total = sum(acc);
    for (; t < len; t++) {
      float e = VectorKernels.exp(s[t] - max);
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
      FloatVector sig = VectorKernels.exp(g.neg()).add(1f);
      g.div(sig).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
    }
    for (; i < n; i++) {
      float g = gate[i];
      gate[i] = g / (VectorKernels.exp(-g) + 1f) * up[i];
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
