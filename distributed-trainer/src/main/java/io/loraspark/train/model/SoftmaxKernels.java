package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Attention's masked row softmax and its backward, with the additive mask they read, fused and
 * causal ({@link VectorSoftmax}) or in ND4J ops over whole rows ({@link Nd4jSoftmax}, the
 * reference). The mask's layout is part of the pair: the causal kernels read only columns [0, i] of
 * row i, so only those are written. {@link ModelKernels} picks one pair per workspace.
 *
 * <p>Arrays are stacked {@code [X, G*T, T]} blocks: row r is query position {@code r mod T}.
 */
interface SoftmaxKernels {
  /** Additive mask value for disallowed pairs: finite, so a softmax never sees -inf - -inf. */
  double MASKED = -1e9;

  /**
   * Fills the additive mask: row position i may attend to column j when j &lt;= i and both belong
   * to the same non-zero segment; every position always attends to itself, so no softmax row is
   * empty (padded rows compute harmless values that are never scored).
   *
   * @param segments segment id per token, [B*T], 0 for padding
   * @param heads query heads NH
   * @param mask out, [X, G*T, T]
   */
  void fillMask(int[] segments, int b, int t, int heads, INDArray mask);

  /**
   * {@code probs ← softmax(probs + mask)} per row, in place.
   *
   * @param probs the scaled scores in, the probabilities out, [X, G*T, T]
   * @param mask from {@link #fillMask}, [X, G*T, T]
   */
  void forward(INDArray probs, INDArray mask, int t);

  /**
   * Softmax backward given the attention output, in place in {@code dP}: {@code dS = P * (dP -
   * rowsum(dOut * out))}, as out = P v and dP = dOut v^T make rowsum(dP * P) = rowsum(dOut * out),
   * HD columns instead of T.
   *
   * @param dP dOut v^T in, dS out, [X, G*T, T]
   * @param probs P, [X, G*T, T]
   * @param dOut gradient with respect to out, [X, G*T, HD]
   * @param out the forward output, [X, G*T, HD]
   * @param rows X*G*T
   */
  void backward(INDArray dP, INDArray probs, INDArray dOut, INDArray out, long rows, int t, int hd);

  /**
   * Whether position i of batch row {@code r} may attend to position j &lt;= i (see {@link
   * #fillMask}).
   */
  static boolean attends(int[] segments, int r, int t, int i, int j) {
    int si = segments[r * t + i];
    return j == i || (j < i && si != 0 && segments[r * t + j] == si);
  }
}
