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
 * {@code z = B'u} are the same bits whichever rows share the adapter ({@link
 * DecodeKernels#matvec4}, {@link DecodeKernels#outer}); they are then added into the rows in each
 * row's mix order, so a row's result does not depend on what else is in the step.
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
  private float[] u = new float[0]; // one block's A'x, [4, rank]
  private float[] z = new float[0]; // [pairs, out]
  private final int[] xo = new int[4];
  private final int[] uo = new int[4];
  private final int[] zo = new int[4];
  private int[] group = new int[8]; // each pair's group, numbered in first-appearance order
  private final Map<DecodeAdapter, Integer> groupOf = new IdentityHashMap<>();

  /** Lists the step's (row, adapter) pairs and groups them by adapter. */
  void plan(StepRows rows) {
    pairs = 0;
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
  }

  /**
   * Adds every row's branches of projection {@code p} in layer {@code l} to y: {@code y +=
   * w·B'(A'x) (+ w·ΔW x)}, or DoRA's {@code y = scale ⊙ (y + B'A'x)} on the bias-free product.
   */
  void apply(int l, Projection p, float[] x, int inDim, float[] y, int outDim) {
    if (pairs == 0) {
      return;
    }
    if (z.length < pairs * outDim) {
      z = new float[pairs * outDim];
    }
    for (int g = 0; g < groups; g++) {
      DecodeAdapter.Branch br = pairAdapter[byAdapter[groupStart[g]]].branch(l, p);
      if (br != null) {
        lowRank(br, groupStart[g], groupStart[g + 1], x, inDim, outDim);
      }
    }
    for (int q = 0; q < pairs; q++) { // in each row's mix order
      DecodeAdapter.Branch br = pairAdapter[q].branch(l, p);
      if (br != null) {
        add(
            br,
            pairWeight[q],
            z,
            q * outDim,
            x,
            pairRow[q] * inDim,
            inDim,
            y,
            pairRow[q] * outDim,
            outDim);
      }
    }
  }

  /** z of the pairs byAdapter[from..to) of one adapter: four rows at a time, then one by one. */
  private void lowRank(
      DecodeAdapter.Branch br, int from, int to, float[] x, int inDim, int outDim) {
    if (u.length < 4 * br.rank()) {
      u = new float[4 * br.rank()];
    }
    for (int k = from; k < to; k += 4) {
      int count = Math.min(4, to - k);
      for (int i = 0; i < count; i++) {
        int q = byAdapter[k + i];
        xo[i] = pairRow[q] * inDim;
        uo[i] = i * br.rank(); // u holds one block's A'x, used at once by its z
        zo[i] = q * outDim;
      }
      if (count == 4) {
        DecodeKernels.matvec4(br.a(), br.rank(), inDim, x, xo, u, uo);
      } else {
        for (int i = 0; i < count; i++) {
          DecodeKernels.matvec(br.a(), br.rank(), inDim, x, xo[i], u, uo[i]);
        }
      }
      DecodeKernels.outer(br.bt(), br.rank(), outDim, u, uo, z, zo, count);
    }
  }

  /** One row's branch output z (from zOff) into its y row. */
  private static void add(
      DecodeAdapter.Branch br,
      float weight,
      float[] z,
      int zOff,
      float[] x,
      int xOff,
      int inDim,
      float[] y,
      int yo,
      int outDim) {
    if (br.doraScale() != null) {
      float[] scale = br.doraScale();
      for (int j = 0; j < outDim; j++) {
        y[yo + j] = scale[j] * (y[yo + j] + weight * z[zOff + j]);
      }
      return;
    }
    DecodeKernels.addScaled(y, yo, z, zOff, weight, outDim);
    if (br.delta() != null) {
      DecodeKernels.matvec(br.delta(), outDim, inDim, x, xOff, z, zOff); // z = ΔW x
      DecodeKernels.addScaled(y, yo, z, zOff, weight, outDim);
    }
  }
}
