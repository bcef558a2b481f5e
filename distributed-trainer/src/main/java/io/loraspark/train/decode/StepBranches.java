package io.loraspark.train.decode;

import io.loraspark.train.model.DecodeKernels;
import io.loraspark.train.model.Projection;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The low-rank branches of one step's rows, computed adapter by adapter: the rows of one adapter (a
 * prefill chunk, or many streams on one adapter) share each load of its A' and B'^T, four rows at a
 * time, instead of each row reading them again. Each (row, adapter) pair's {@code u = A'x} and
 * {@code z = B'u} are {@link DecodeKernels#outer} products (A' stored transposed, so u's r outputs
 * fill one vector's lanes): each output of z one in-order chain of fused multiply-adds, each of u
 * two (over the first and the second half of the input, then added in that order), the same bits
 * whichever rows share the adapter and however the work is split over the kernel threads. They are
 * then added into the rows in each row's mix order, so a row's result does not depend on what else
 * is in the step.
 *
 * <p>Two parallel passes per group of projections that read the same input (q, k and v; gate and
 * up; o; down): u split by projection, blocks of four rows and the input's halves (so even a lone
 * row's A'x, a cold read of the adapter, runs on two threads), then z and the additions split by
 * output columns across the group's projections (each thread reads its share of B'^T). A switch to
 * a cached adapter costs only this arithmetic, so it runs on all kernel threads like the base, with
 * two hand-offs per group rather than per projection.
 *
 * <p>Not thread-safe; one per engine, reused from step to step (grows, never shrinks).
 */
final class StepBranches {
  private int pairs; // (row, adapter) pairs, in row order and each row's mix order
  private int[] pairRow = new int[8];
  private DecodeAdapter[] pairAdapter = new DecodeAdapter[8];
  private float[] pairWeight = new float[8];
  private int[] byAdapter = new int[8]; // pair indices grouped by adapter, rows ascending
  private int[] groupStart = new int[9]; // group g is byAdapter[groupStart[g] .. groupStart[g+1])
  private int groups;
  private int
      uStride; // the step's largest rank: projection j's pair q has u[(j·pairs + q)·uStride ..]
  private float[] u =
      new float[0]; // [projections, pairs, uStride]: A'x over the input's first half
  private float[] uLate = new float[0]; // the same over its second half, then added to u
  private float[] z = new float[0]; // projection j's pairs at zStart[j]: [pairs, out_j]
  private int[] group = new int[8]; // each pair's group, numbered in first-appearance order
  private final Map<DecodeAdapter, Integer> groupOf = new IdentityHashMap<>();
  // adapter group g's branch of the applied group's projection j at [g·projections + j]
  private DecodeAdapter.Branch[] groupBranch = new DecodeAdapter.Branch[8];
  // per slot byAdapter[k] of projection j, at [j·pairs + k]: its pair's offsets into x, u and z
  // (blocks of four slots are the kernels' row groups)
  private int[] xo = new int[8];
  private int[] uo = new int[8];
  private int[] zo = new int[8];

  // The passes read the adapter cold (the base's product has just streamed its weights through the
  // caches), so each float counts this many times a cached one against the kernels' threshold for
  // going parallel: a lone row's branches then use both threads. Measured on the SmolLM2 shape,
  // rank 16, a 1-token prompt: the switch's median 1.08 ms with 1, 1.00 ms with 4 (8 runs each).
  private static final long COLD = 4;

  private final DecodeKernels.RowRange inputsPass = this::lowRankInputs;
  private final DecodeKernels.RowRange outputsPass = this::outputVectors;
  // the group being applied, for the passes' bodies
  private float[] x;
  private int inDim;
  private int projections;
  private float[][] ys;
  private int[] outDims;
  private final int[] zStart = new int[Projection.values().length];
  private final int[] vectorStart = new int[Projection.values().length + 1]; // pass 2's units

  /** Lists the step's (row, adapter) pairs and groups them by adapter. */
  void plan(StepRows rows) {
    pairs = 0;
    uStride = 0;
    for (int r = 0; r < rows.count; r++) {
      AdapterMix mix = rows.mixes[r];
      for (int a = 0; a < mix.adapters().size(); a++) {
        if (pairs == pairRow.length) {
          pairRow = Arrays.copyOf(pairRow, 2 * pairs);
          pairAdapter = Arrays.copyOf(pairAdapter, 2 * pairs);
          pairWeight = Arrays.copyOf(pairWeight, 2 * pairs);
          byAdapter = Arrays.copyOf(byAdapter, 2 * pairs);
          group = Arrays.copyOf(group, 2 * pairs);
          groupStart = Arrays.copyOf(groupStart, 2 * pairs + 1);
        }
        pairRow[pairs] = r;
        pairAdapter[pairs] = mix.adapters().get(a);
        pairWeight[pairs] = mix.weights()[a];
        uStride = Math.max(uStride, pairAdapter[pairs].maxRank());
        pairs++;
      }
    }
    groupOf.clear();
    for (int q = 0; q < pairs; q++) {
      group[q] = groupOf.computeIfAbsent(pairAdapter[q], k -> groupOf.size());
    }
    groups = groupOf.size();
    int k = 0; // a counting sort by group, stable: rows stay ascending within a group
    for (int g = 0; g < groups; g++) {
      groupStart[g] = k;
      for (int q = 0; q < pairs; q++) {
        if (group[q] == g) {
          byAdapter[k++] = q;
        }
      }
    }
    groupStart[groups] = k;
    int most = Projection.values().length;
    if (u.length < most * pairs * uStride) {
      u = new float[most * pairs * uStride];
      uLate = new float[most * pairs * uStride];
    }
    if (groupBranch.length < most * groups) {
      groupBranch = new DecodeAdapter.Branch[most * groups];
    }
    if (uo.length < most * pairs) {
      xo = new int[most * pairs];
      uo = new int[most * pairs];
      zo = new int[most * pairs];
    }
  }

  /**
   * Adds every row's branches of the projections {@code ps} of layer {@code l}, which all read
   * {@code x}, to their outputs: for each projection j, {@code ys[j] += w·B'(A'x) (+ w·ΔW x)}, or
   * DoRA's {@code ys[j] = scale ⊙ (ys[j] + B'A'x)} on the bias-free product.
   *
   * @param outDims each projection's output width
   */
  void apply(int l, Projection[] ps, float[] x, int inDim, float[][] ys, int[] outDims) {
    if (pairs == 0) {
      return;
    }
    int n = ps.length;
    int units = 0; // pass 1's work: a unit per (projection, block of rows, input half, u vector)
    int ranks = 0; // pass 2 reads this many floats of B'^T per output column
    int zFloats = 0;
    vectorStart[0] = 0;
    for (int j = 0; j < n; j++) {
      for (int g = 0; g < groups; g++) {
        DecodeAdapter.Branch br = pairAdapter[byAdapter[groupStart[g]]].branch(l, ps[j]);
        groupBranch[g * n + j] = br;
        if (br != null) {
          units += blocks(g) * 2 * vectors(br.rank());
          ranks += br.rank();
        }
      }
      zStart[j] = zFloats;
      zFloats += pairs * outDims[j];
      vectorStart[j + 1] = vectorStart[j] + vectors(outDims[j]);
    }
    if (units == 0) {
      return;
    }
    if (z.length < zFloats) {
      z = new float[zFloats];
    }
    for (int k = 0; k < pairs; k++) {
      int q = byAdapter[k];
      for (int j = 0; j < n; j++) {
        xo[j * pairs + k] = pairRow[q] * inDim;
        uo[j * pairs + k] = (j * pairs + q) * uStride;
        zo[j * pairs + k] = zStart[j] + q * outDims[j];
      }
    }
    this.x = x;
    this.inDim = inDim;
    this.projections = n;
    this.ys = ys;
    this.outDims = outDims;
    DecodeKernels.parallel(units, COLD * (DecodeKernels.LANES + 4L) * half(inDim), inputsPass);
    addSecondHalves();
    DecodeKernels.parallel(
        vectorStart[n], COLD * DecodeKernels.LANES * (ranks / n + 3L * pairs), outputsPass);
    this.x = null;
    this.ys = null;
  }

  /** u += uLate for every pair's rank in each projection: A'x is its two halves' sum, in order. */
  private void addSecondHalves() {
    for (int j = 0; j < projections; j++) {
      for (int q = 0; q < pairs; q++) {
        DecodeAdapter.Branch br = groupBranch[group[q] * projections + j];
        int from = (j * pairs + q) * uStride;
        int to = br == null ? from : from + br.rank();
        for (int i = from; i < to; i++) {
          u[i] += uLate[i];
        }
      }
    }
  }

  /** Where A'x's input splits: its first half is [0, half), its second [half, in). */
  private static int half(int in) {
    return (in + 1) / 2;
  }

  /** Blocks of up to four rows in group g. */
  private int blocks(int g) {
    return (groupStart[g + 1] - groupStart[g] + 3) / 4;
  }

  /** Vectors of outputs in u of a rank-r branch. */
  private static int vectors(int rank) {
    return (rank + DecodeKernels.LANES - 1) / DecodeKernels.LANES;
  }

  /**
   * Pass 1, units [from, to): A'x of each unit's projection, block of rows, input half (the first
   * into u, the second into uLate) and vector of outputs.
   */
  private void lowRankInputs(int from, int to) {
    int unit = 0;
    for (int j = 0; j < projections && unit < to; j++) {
      for (int g = 0; g < groups && unit < to; g++) {
        DecodeAdapter.Branch br = groupBranch[g * projections + j];
        if (br == null) {
          continue;
        }
        int n = vectors(br.rank());
        for (int k = groupStart[g]; k < groupStart[g + 1] && unit < to; k += 4) {
          int count = Math.min(4, groupStart[g + 1] - k);
          for (int part = 0; part < 2 && unit < to; part++, unit += n) {
            int lo = Math.max(from - unit, 0);
            int hi = Math.min(to - unit, n);
            if (lo < hi) {
              int j0 = lo * DecodeKernels.LANES;
              int j1 = Math.min(hi * DecodeKernels.LANES, br.rank());
              int in0 = part == 0 ? 0 : half(inDim);
              int in1 = part == 0 ? half(inDim) : inDim;
              float[] into = part == 0 ? u : uLate;
              DecodeKernels.outer(
                  br.at(), in0, in1, br.rank(), j0, j1, x, xo, into, uo, j * pairs + k, count);
            }
          }
        }
      }
    }
  }

  /** Pass 2, vectors [from, to) of the group's output columns, projection after projection. */
  private void outputVectors(int from, int to) {
    for (int j = 0; j < projections; j++) {
      int lo = Math.max(from, vectorStart[j]) - vectorStart[j];
      int hi = Math.min(to, vectorStart[j + 1]) - vectorStart[j];
      if (lo < hi) {
        int out = outDims[j];
        outputs(j, lo * DecodeKernels.LANES, Math.min(hi * DecodeKernels.LANES, out));
      }
    }
  }

  /** Projection j's output columns [from, to): z = B'u of every pair, then added into its row. */
  private void outputs(int j, int from, int to) {
    int out = outDims[j];
    for (int g = 0; g < groups; g++) {
      DecodeAdapter.Branch br = groupBranch[g * projections + j];
      if (br == null) {
        continue;
      }
      for (int k = groupStart[g]; k < groupStart[g + 1]; k += 4) {
        int count = Math.min(4, groupStart[g + 1] - k);
        DecodeKernels.outer(
            br.bt(), 0, br.rank(), out, from, to, u, uo, z, zo, j * pairs + k, count);
      }
    }
    for (int q = 0; q < pairs; q++) { // in each row's mix order
      DecodeAdapter.Branch br = groupBranch[group[q] * projections + j];
      if (br != null) {
        add(br, pairWeight[q], zStart[j] + q * out, pairRow[q], ys[j], out, from, to);
      }
    }
  }

  /** One pair's branch output z (from zOff) into its row of y, over the columns [from, to). */
  private void add(
      DecodeAdapter.Branch br,
      float weight,
      int zOff,
      int row,
      float[] y,
      int outDim,
      int from,
      int to) {
    int yo = row * outDim;
    if (br.doraScale() != null) {
      float[] scale = br.doraScale();
      for (int j = from; j < to; j++) {
        y[yo + j] = scale[j] * (y[yo + j] + weight * z[zOff + j]);
      }
      return;
    }
    DecodeKernels.addScaled(y, yo + from, z, zOff + from, weight, to - from);
    if (br.delta() != null) { // z = ΔW x
      DecodeKernels.matvec(br.delta(), from, to, inDim, x, row * inDim, z, zOff);
      DecodeKernels.addScaled(y, yo + from, z, zOff + from, weight, to - from);
    }
  }
}
