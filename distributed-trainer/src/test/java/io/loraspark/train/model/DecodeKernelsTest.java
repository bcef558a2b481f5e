package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The adapter-branch kernels that decoding splits over its threads: four rows sharing each load,
 * and any split of the outputs, must give every output the very bits it gets alone and whole (batch
 * invariance rests on it), and the right value. {@link DecodeKernels#outer} is checked bit for bit
 * against a naive in-order chain of {@link Math#fma}; {@link DecodeKernels#matvec4} bit for bit
 * against {@link DecodeKernels#matvec} of one row and within 1e-5 (relative to the largest
 * |output|) of a double-precision product. Widths that fill whole vectors and that leave tails, odd
 * and even output ranges.
 */
class DecodeKernelsTest {
  private final Random rnd = new Random(5);

  @Test
  void fourRowsAndAnySplitGiveEachRowsOwnLowRankInputs() {
    for (int in : new int[] {576, 37, 16}) {
      int rank = 7;
      float[] a = gaussian(rank * in);
      float[] x = gaussian(6 * in);
      int[] xo = {5 * in, 2 * in, 0, 3 * in}; // rows in any order, as a group's rows are
      int[] uo = {0, rank, 2 * rank, 3 * rank};
      float[] alone = new float[4 * rank];
      for (int q = 0; q < 4; q++) {
        DecodeKernels.matvec(a, rank, in, x, xo[q], alone, uo[q]);
      }
      for (int cut : new int[] {0, 1, 3, 4, rank}) {
        float[] split = new float[4 * rank];
        DecodeKernels.matvec4(a, 0, cut, in, x, xo, split, uo, 0);
        DecodeKernels.matvec4(a, cut, rank, in, x, xo, split, uo, 0);
        assertThat(split).as("in %d, split at %d", in, cut).isEqualTo(alone);
      }
      double maxDiff = 0;
      double maxRef = 0;
      for (int q = 0; q < 4; q++) {
        for (int j = 0; j < rank; j++) {
          double ref = 0;
          for (int i = 0; i < in; i++) {
            ref += (double) a[j * in + i] * x[xo[q] + i];
          }
          maxDiff = Math.max(maxDiff, Math.abs(ref - alone[uo[q] + j]));
          maxRef = Math.max(maxRef, Math.abs(ref));
        }
      }
      assertThat(maxDiff / maxRef).as("in %d", in).isLessThan(1e-5);
    }
  }

  @Test
  void outerGivesTheInOrderFmaChainOfEveryOutputUnderAnySplit() {
    int rank = 5;
    for (int out : new int[] {576, 40, 9}) {
      float[] bt = gaussian(rank * out);
      float[] u = gaussian(4 * rank);
      int[] uo = {3 * rank, 0, rank, 2 * rank};
      int[] zo = {0, out, 2 * out, 3 * out};
      float[] naive = new float[4 * out];
      for (int q = 0; q < 4; q++) {
        for (int j = 0; j < out; j++) {
          float acc = 0f;
          for (int k = 0; k < rank; k++) {
            acc = Math.fma(bt[k * out + j], u[uo[q] + k], acc);
          }
          naive[zo[q] + j] = acc;
        }
      }
      for (int count : new int[] {4, 3, 1}) {
        for (int cut : new int[] {0, 1, Math.min(17, out), out / 2, out}) {
          float[] z = new float[4 * out];
          DecodeKernels.outer(bt, rank, out, 0, cut, u, uo, z, zo, 0, count);
          DecodeKernels.outer(bt, rank, out, cut, out, u, uo, z, zo, 0, count);
          for (int q = 0; q < count; q++) {
            for (int j = 0; j < out; j++) {
              assertThat(z[zo[q] + j])
                  .as("out %d, %d rows, split at %d, row %d output %d", out, count, cut, q, j)
                  .isEqualTo(naive[zo[q] + j]);
            }
          }
        }
      }
    }
  }

  private float[] gaussian(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return v;
  }
}
