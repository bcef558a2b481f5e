package io.loraspark.train.model;

import io.loraspark.train.safetensors.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The frozen projections of incremental decoding: {@code y[r, j] = Σ_i W[j, i] · x[r, i]} for a few
 * token rows, W packed once per base into panels of {@link #PANEL} outputs stored input-major
 * ({@code [in][PANEL]}: one input's weights for the panel's outputs are two contiguous vectors; the
 * last panel zero padded), in float32 or in bfloat16.
 *
 * <p>Each output is one chain of fused multiply-adds over i in order, starting from zero, in a lane
 * of its own. The chain is the same whichever rows and panels share a call and however many rows
 * are blocked together, which is what makes decoding batch invariant; and no output ends in a lane
 * reduction. Four rows share each weight load (eight accumulators); a lone row reads one panel at a
 * time (two chains). Measured and dropped, 2026-12-07: dot products per (row, output) over W as
 * stored, with a lane sum each, blocked 4 x 1 and 2 x 4: the sums were a fifth of a 16-row step and
 * 16 rows made only 2.3–2.7x one row's tokens.
 *
 * <p>bfloat16 panels hold each weight rounded to nearest even ({@link HalfFloats#floatToBf16}) and
 * widen it exactly on load (a 16-bit shift), so the products and sums stay float32: the same as the
 * float32 path on the rounded weights, at half the bytes read per token, which is what bounds
 * decoding one stream. The packed copy costs the projections' size in float32, half that in bf16.
 *
 * <p>The float32 and bfloat16 kernels are written out twice, differing only in their weight loads:
 * one body behind an interface or a passed-in loader would leave C2 a call it may not inline, and a
 * vector crossing a call that is not inlined is boxed (an allocation per load).
 */
public final class PackedMatmul {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> I =
      VectorSpecies.of(int.class, VectorShape.forBitSize(S.vectorBitSize()));
  private static final VectorSpecies<Short> H =
      VectorSpecies.of(short.class, VectorShape.forBitSize(S.vectorBitSize() / 2));
  private static final int L = S.length();

  /** Outputs per panel: two vectors, so a lone row still has two independent chains. */
  public static final int PANEL = 2 * L;

  private PackedMatmul() {}

  /** W [out, in], read in place from a buffer at a byte offset, packed into float32 panels. */
  public static float[] pack(ByteBuffer wb, int wOff, int out, int in) {
    float[] packed = new float[Math.multiplyExact(panels(out) * PANEL, in)];
    FloatBuffer w = rows(wb, wOff);
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

  /** W [out, in] packed into bfloat16 panels, each weight rounded to nearest even. */
  public static short[] packBf16(ByteBuffer wb, int wOff, int out, int in) {
    short[] packed = new short[Math.multiplyExact(panels(out) * PANEL, in)];
    FloatBuffer w = rows(wb, wOff);
    float[] row = new float[in];
    for (int j = 0; j < out; j++) {
      w.get(j * in, row);
      int base = (j / PANEL) * in * PANEL + j % PANEL;
      for (int i = 0; i < in; i++) {
        packed[base + i * PANEL] = HalfFloats.floatToBf16(row[i]);
      }
    }
    return packed;
  }

  private static FloatBuffer rows(ByteBuffer wb, int wOff) {
    return wb.duplicate().position(wOff).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  private static int panels(int out) {
    return (out + PANEL - 1) / PANEL;
  }

  /**
   * {@code y[r, j] = Σ_i W[j, i] · x[r, i]} for rows r &lt; {@code rows}, W packed by {@link
   * #pack}; panels split over the kernel threads.
   *
   * @param x rows, [rows, in]
   * @param y out, [rows, out]
   */
  public static void matmul(float[] w, int out, int in, float[] x, int rows, float[] y) {
    run(w, null, out, in, x, rows, y);
  }

  /**
   * {@link #matmul(float[], int, int, float[], int, float[])} on bfloat16 panels ({@link
   * #packBf16}).
   */
  public static void matmul(short[] w, int out, int in, float[] x, int rows, float[] y) {
    run(null, w, out, in, x, rows, y);
  }

  private static void run(float[] wf, short[] wh, int out, int in, float[] x, int rows, float[] y) {
    DecodeKernels.parallel(
        panels(out),
        (long) PANEL * in * rows,
        (from, to) -> {
          int blocked = rows - rows % 4;
          for (int p = from; p < to; p++) {
            for (int r = 0; r < blocked; r += 4) {
              if (wf != null) {
                rows4(wf, p, out, in, x, r, y);
              } else {
                rows4(wh, p, out, in, x, r, y);
              }
            }
          }
          for (int r = blocked; r < rows; r++) {
            for (int p = from; p < to; p++) { // one panel, one weight stream, at a time
              if (wf != null) {
                row(wf, p, out, in, x, r, y);
              } else {
                row(wh, p, out, in, x, r, y);
              }
            }
          }
        });
  }

  private static FloatVector load(short[] w, int o) {
    return ((IntVector) ShortVector.fromArray(H, w, o).convertShape(VectorOperators.S2I, I, 0))
        .lanewise(VectorOperators.LSHL, 16)
        .reinterpretAsFloats();
  }

  /**
   * Rows r..r+3 against float32 panel p: eight accumulators, each weight load serving four rows.
   */
  private static void rows4(float[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector b0 = FloatVector.zero(S);
    FloatVector b1 = FloatVector.zero(S);
    FloatVector c0 = FloatVector.zero(S);
    FloatVector c1 = FloatVector.zero(S);
    FloatVector d0 = FloatVector.zero(S);
    FloatVector d1 = FloatVector.zero(S);
    int xa = r * in;
    for (int i = 0, wo = p * in * PANEL; i < in; i++, wo += PANEL) {
      FloatVector w0 = FloatVector.fromArray(S, w, wo);
      FloatVector w1 = FloatVector.fromArray(S, w, wo + L);
      FloatVector v = FloatVector.broadcast(S, x[xa + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[xa + in + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[xa + 2 * in + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[xa + 3 * in + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
    }
    int j = p * PANEL;
    store(a0, a1, y, r * out + j, j, out);
    store(b0, b1, y, (r + 1) * out + j, j, out);
    store(c0, c1, y, (r + 2) * out + j, j, out);
    store(d0, d1, y, (r + 3) * out + j, j, out);
  }

  /** {@link #rows4} on bfloat16 panels: the same chains on the widened weights. */
  private static void rows4(short[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector b0 = FloatVector.zero(S);
    FloatVector b1 = FloatVector.zero(S);
    FloatVector c0 = FloatVector.zero(S);
    FloatVector c1 = FloatVector.zero(S);
    FloatVector d0 = FloatVector.zero(S);
    FloatVector d1 = FloatVector.zero(S);
    int xa = r * in;
    for (int i = 0, wo = p * in * PANEL; i < in; i++, wo += PANEL) {
      FloatVector w0 = load(w, wo);
      FloatVector w1 = load(w, wo + L);
      FloatVector v = FloatVector.broadcast(S, x[xa + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[xa + in + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[xa + 2 * in + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[xa + 3 * in + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
    }
    int j = p * PANEL;
    store(a0, a1, y, r * out + j, j, out);
    store(b0, b1, y, (r + 1) * out + j, j, out);
    store(c0, c1, y, (r + 2) * out + j, j, out);
    store(d0, d1, y, (r + 3) * out + j, j, out);
  }

  /**
   * Row r against float32 panel p: two chains. (Two panels at once, four chains in two weight
   * streams, measured 10–15% slower on the memory-bound single stream, 2026-12-07.)
   */
  private static void row(float[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    int wo = p * in * PANEL;
    for (int i = 0, xo = r * in; i < in; i++, wo += PANEL) {
      FloatVector v = FloatVector.broadcast(S, x[xo + i]);
      a0 = FloatVector.fromArray(S, w, wo).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, wo + L).fma(v, a1);
    }
    int j = p * PANEL;
    store(a0, a1, y, r * out + j, j, out);
  }

  /** {@link #row} on bfloat16 panels. */
  private static void row(short[] w, int p, int out, int in, float[] x, int r, float[] y) {
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    int wo = p * in * PANEL;
    for (int i = 0, xo = r * in; i < in; i++, wo += PANEL) {
      FloatVector v = FloatVector.broadcast(S, x[xo + i]);
      a0 = load(w, wo).fma(v, a0);
      a1 = load(w, wo + L).fma(v, a1);
    }
    int j = p * PANEL;
    store(a0, a1, y, r * out + j, j, out);
  }

  /** A panel's two vectors of one row into y from yo; the padded last panel stores real outputs. */
  private static void store(FloatVector a, FloatVector b, float[] y, int yo, int j, int out) {
    if (j + PANEL <= out) {
      a.intoArray(y, yo);
      b.intoArray(y, yo + L);
    } else {
      a.intoArray(y, yo, S.indexInRange(j, out));
      b.intoArray(y, yo + L, S.indexInRange(j + L, out));
    }
  }
}
