package io.loraspark.train.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A low-rank branch that adds {@code c·s · B (A x)} to a projection and trains nothing: forward
 * adds it to y, backward adds {@code c·s · (dy B) A} to dx only; s is the LoRA scaling the caller
 * gives, c the branch's own weight. Delta-LoRA's snapshot (A_K, B_K) with c = −λ is one. The
 * factors are filled in place; c is 0 (the branch off, computing nothing) until {@link #switchOn}
 * sets it.
 *
 * <p>A parent's branch in a child's frozen chain ({@link FrozenChain}) may carry a per-output scale
 * g [out] (a DoRA node at or above it): it then adds {@code g ⊙ (c·s · B (A x))} and its input
 * gradient is {@code c·s · ((g ⊙ dy) B) A}.
 */
public final class FrozenBranch {
  private final INDArray a; // [r, in]
  private final INDArray b; // [out, r]
  private final INDArray outScale; // g [1, out], or null for none
  private double weight; // c; 0 while off

  /**
   * An off branch over {@code a} [r, in] and {@code b} [out, r], which it keeps by reference.
   *
   * @throws IllegalArgumentException when the ranks of a and b differ
   */
  public FrozenBranch(INDArray a, INDArray b) {
    this(a, b, null);
  }

  /**
   * An off branch whose output is scaled per output by {@code outScale} [out] (null for none).
   *
   * @throws IllegalArgumentException when the ranks of a and b differ
   */
  FrozenBranch(INDArray a, INDArray b, INDArray outScale) {
    if (a.rows() != b.columns()) {
      throw new IllegalArgumentException(
          "a frozen branch needs A [r, in] and B [out, r] but got A with "
              + a.rows()
              + " rows and B with "
              + b.columns()
              + " columns");
    }
    this.a = a;
    this.b = b;
    this.outScale = outScale == null ? null : outScale.reshape(1, b.rows());
  }

  /** A, [r, in]. */
  public INDArray a() {
    return a;
  }

  /** B, [out, r]. */
  public INDArray b() {
    return b;
  }

  /** c, 0 while the branch is off. */
  public double weight() {
    return weight;
  }

  /** Whether the branch adds anything. */
  public boolean on() {
    return weight != 0;
  }

  /** Sets c (0 switches the branch off). */
  public void switchOn(double c) {
    this.weight = c;
  }

  /**
   * Adds the branch to {@code y}.
   *
   * @param x the projection input rows, [N, in]
   * @param y the projection output rows, [N, out]; updated in place
   * @param s the LoRA scaling the branch's weight multiplies
   */
  void forward(INDArray x, INDArray y, double s, LoraVariant.Scratch scratch) {
    if (!on()) {
      return;
    }
    INDArray u = scratch.get("frozen_u", x.rows(), a.rows()); // [N, r]
    Nd4j.gemm(x, a, u, false, true, 1.0, 0.0); // u = x A^T
    if (outScale == null) {
      Nd4j.gemm(u, b, y, false, true, weight * s, 1.0); // y += c s u B^T
      return;
    }
    INDArray t = scratch.get("frozen_t", x.rows(), b.rows()); // [N, out]
    Nd4j.gemm(u, b, t, false, true, weight * s, 0.0); // t = c s u B^T
    y.addi(t.muliRowVector(outScale)); // y += g ⊙ t
  }

  /**
   * Adds the branch's input gradient to {@code dx}.
   *
   * @param dy dLoss/dy, [N, out]
   * @param dx dLoss/dx, [N, in]; accumulated in place
   * @param s the LoRA scaling the branch's weight multiplies
   */
  void backward(INDArray dy, INDArray dx, double s, LoraVariant.Scratch scratch) {
    if (!on()) {
      return;
    }
    INDArray g = scratch.get("frozen_g", dy.rows(), a.rows()); // [N, r]
    INDArray dyg = dy;
    if (outScale != null) {
      dyg = scratch.get("frozen_t", dy.rows(), b.rows()).assign(dy).muliRowVector(outScale);
    }
    Nd4j.gemm(dyg, b, g, false, false, 1.0, 0.0); // g = (g ⊙ dy) B
    Nd4j.gemm(g, a, dx, false, false, weight * s, 1.0); // dx += c s g A
  }
}
