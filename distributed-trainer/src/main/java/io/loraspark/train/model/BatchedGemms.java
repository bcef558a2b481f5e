package io.loraspark.train.model;

import java.util.IdentityHashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Attention's GEMMs, between two activations rather than an activation and a frozen weight: {@code
 * c[x] = alpha · op(a[x]) · op(b[x])} for every x of the leading dimension of three row-major 3-D
 * arrays. One instance serves one {@link Workspace} (one thread); it may keep views of that
 * workspace's arrays.
 */
public interface BatchedGemms {
  /**
   * c[x] ← alpha · op(a[x]) · op(b[x]), op the transpose when its flag is set.
   *
   * @param a [X, M, K], or [X, K, M] with {@code transA}
   * @param b [X, K, N], or [X, N, K] with {@code transB}
   * @param c out, [X, M, N]
   */
  void multiply(INDArray a, INDArray b, INDArray c, boolean transA, boolean transB, double alpha);

  /**
   * The fp32 GEMMs: one BLAS GEMM per matrix. ND4J's batched matmul runs the GEMMs of a batch on
   * parallel OpenMP threads that each call the multithreaded OpenBLAS: that oversubscribes the
   * cores, and on this machine exhausted OpenBLAS's buffer table ("Bad memory unallocation") and
   * crashed at B=4, T=256.
   */
  static BatchedGemms perMatrix() {
    // the per-matrix views of each array, made once: INDArray.slice builds a new view (shape info,
    // native descriptor) each call, hundreds of times a step
    Map<INDArray, INDArray[]> slices = new IdentityHashMap<>();
    return (a, b, c, transA, transB, alpha) -> {
      INDArray[] as = slices.computeIfAbsent(a, BatchedGemms::slices);
      INDArray[] bs = slices.computeIfAbsent(b, BatchedGemms::slices);
      INDArray[] cs = slices.computeIfAbsent(c, BatchedGemms::slices);
      for (int x = 0; x < cs.length; x++) {
        Nd4j.gemm(as[x], bs[x], cs[x], transA, transB, alpha, 0.0);
      }
    };
  }

  private static INDArray[] slices(INDArray a) {
    INDArray[] out = new INDArray[(int) a.size(0)];
    for (int x = 0; x < out.length; x++) {
      out[x] = a.slice(x);
    }
    return out;
  }
}
