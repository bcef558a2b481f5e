package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Grouped-query causal attention core, {@code softmax(Q K^T / sqrt(HD) + mask) V}, on rotated
 * heads. The G query heads that share one kv head are stacked into one {@code [G*T, HD]} matrix, so
 * a single batched GEMM per kv head serves the whole group without repeating K and V.
 *
 * <p>The fused float32 softmax and its backward are causal ({@link VectorSoftmax}): row i computes
 * columns [0, i] and writes zeros after them, half the work of the full row. Splitting the GEMMs
 * into causal blocks as well was measured and dropped: with blocks of 64 positions at T = 256
 * (62.5% of the FLOPs) a K=8 step was no faster (1,288–1,319 against 1,316–1,343 tokens/s,
 * 2026-11-23), as the smaller GEMMs ran further below the BLAS peak, and ND4J writes a GEMM only
 * into a contiguous output, so the scores stayed full width.
 */
final class Attention {
  private final int b;
  private final int t;
  private final int nh;
  private final int nkv;
  private final int hd;
  private final double scale;
  private final SoftmaxKernels softmax; // fused or ND4J, chosen with the workspace
  private final HeadKernels heads; // likewise
  private final BatchedGemms gemms; // fp32 per matrix, or bf16 with the frozen GEMMs

  Attention(ModelConfig c, int rows, int seqLen, ModelKernels kernels) {
    this(c, rows, seqLen, kernels, BatchedGemms.perMatrix());
  }

  Attention(ModelConfig c, int rows, int seqLen, ModelKernels kernels, BatchedGemms gemms) {
    this.b = rows;
    this.t = seqLen;
    this.nh = c.numHeads();
    this.nkv = c.numKvHeads();
    this.hd = c.headDim();
    this.scale = 1.0 / Math.sqrt(hd);
    this.softmax = kernels.softmax();
    this.heads = kernels.heads();
    this.gemms = gemms;
  }

  /**
   * Fills the additive mask, [X, G*T, T], in the layout the softmax reads (see {@link
   * SoftmaxKernels#fillMask}).
   */
  void fillMask(int[] segments, INDArray mask) {
    softmax.fillMask(segments, b, t, nh, mask);
  }

  /** Copies token rows {@code [N, H*HD]} into head-major {@code [B, H, T, HD]} layout. */
  void toHeads(INDArray rows, INDArray out, int h) {
    heads.toHeads(rows, out, b, t, h, hd);
  }

  /** Copies head-major {@code [B, H, T, HD]} back to token rows {@code [N, H*HD]}. */
  void toRows(INDArray in, INDArray rows, int h) {
    heads.toRows(in, rows, b, t, h, hd);
  }

  /**
   * Forward: {@code probs = softmax(q k^T * scale + mask)}, {@code out = probs v}.
   *
   * @param q rotated queries, [X, G*T, HD]
   * @param k rotated keys, [X, T, HD]
   * @param v values, [X, T, HD]
   * @param probs out, [X, G*T, T]
   * @param out out, [X, G*T, HD]
   */
  void forward(INDArray q, INDArray k, INDArray v, INDArray mask, INDArray probs, INDArray out) {
    batchedGemm(q, k, probs, false, true, scale); // scores = q k^T * scale
    softmax.forward(probs, mask, t); // probs = softmax(scores + mask)
    batchedGemm(probs, v, out, false, false, 1.0);
  }

  /**
   * Backward of {@link #forward}.
   *
   * @param out the forward output, [X, G*T, HD]
   * @param dOut gradient with respect to out, [X, G*T, HD]
   * @param dP scratch, [X, G*T, T]
   * @param dq out, [X, G*T, HD]
   * @param dk out, [X, T, HD]
   * @param dv out, [X, T, HD]
   */
  void backward(
      INDArray q,
      INDArray k,
      INDArray v,
      INDArray probs,
      INDArray out,
      INDArray dOut,
      INDArray dP,
      INDArray dq,
      INDArray dk,
      INDArray dv) {
    batchedGemm(dOut, v, dP, false, true, 1.0); // dP = dOut v^T
    batchedGemm(probs, dOut, dv, true, false, 1.0); // dv = P^T dOut (sums the G stacked heads)
    // softmax backward: dS = P * (dP - rowsum(dP * P)), then the 1/sqrt(HD) scale; since
    // out = P v and dP = dOut v^T, rowsum(dP * P) = rowsum(dOut * out): HD columns, not T
    long rows = (long) b * nkv * (nh / nkv) * t;
    softmax.backward(dP, probs, dOut, out, rows, t, hd); // dP becomes dS
    batchedGemm(dP, k, dq, false, false, scale); // dq = dS k * scale
    batchedGemm(dP, q, dk, true, false, scale); // dk = dS^T q * scale
  }

  private void batchedGemm(
      INDArray a, INDArray b, INDArray c, boolean transA, boolean transB, double alpha) {
    gemms.multiply(a, b, c, transA, transB, alpha);
  }
}
