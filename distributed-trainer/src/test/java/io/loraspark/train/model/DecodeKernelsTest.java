package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The adapter-branch kernel that decoding splits over its threads, {@link DecodeKernels#outer}
 * (both A'x, with A' stored transposed, and B'u): four rows sharing each load, and any split of the
 * outputs, must give every output the very bits of a naive in-order chain of {@link Math#fma},
 * which batch invariance rests on. Output widths that fill whole vectors, that leave a masked
 * part-vector, and splits inside a vector.
 */
class DecodeKernelsTest {
  private final Random rnd = new Random(5);

  @Test
  void outerGivesTheInOrderFmaChainOfEveryOutputUnderAnySplit() {
    int[][] shapes = { // {rank, out}: B'u's, then A'x's (A' transposed: "rank" is in, "out" r)
      {5, 576}, {5, 40}, {5, 9}, {576, 16}, {576, 7}, {37, 20}
    };
    for (int[] shape : shapes) {
      int rank = shape[0];
      int out = shape[1];
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
          DecodeKernels.outer(bt, 0, rank, out, 0, cut, u, uo, z, zo, 0, count);
          DecodeKernels.outer(bt, 0, rank, out, cut, out, u, uo, z, zo, 0, count);
          for (int q = 0; q < count; q++) {
            for (int j = 0; j < out; j++) {
              assertThat(z[zo[q] + j])
                  .as(
                      "%d x %d, %d rows, split at %d, row %d output %d",
                      rank, out, count, cut, q, j)
                  .isEqualTo(naive[zo[q] + j]);
            }
          }
        }
      }
    }
  }

  @Test
  void outerOverAPartOfTheReductionIsTheChainOverThatPartAlone() {
    int rank = 577; // an A'x over an odd input, split where StepBranches splits it
    int out = 16;
    int h = (rank + 1) / 2;
    float[] bt = gaussian(rank * out);
    float[] u = gaussian(4 * rank);
    int[] uo = {0, rank, 2 * rank, 3 * rank};
    int[] zo = {0, out, 2 * out, 3 * out};
    for (int count : new int[] {4, 1}) {
      for (int[] part : new int[][] {{0, h}, {h, rank}}) {
        float[] z = new float[4 * out];
        DecodeKernels.outer(bt, part[0], part[1], out, 0, out, u, uo, z, zo, 0, count);
        for (int q = 0; q < count; q++) {
          for (int j = 0; j < out; j++) {
            float acc = 0f;
            for (int k = part[0]; k < part[1]; k++) {
              acc = Math.fma(bt[k * out + j], u[uo[q] + k], acc);
            }
            assertThat(z[zo[q] + j])
                .as("[%d, %d), %d rows, row %d output %d", part[0], part[1], count, q, j)
                .isEqualTo(acc);
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
