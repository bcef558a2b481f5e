package io.loraspark.train.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Delta-LoRA (Zi et al. 2023, "Delta-LoRA: Fine-Tuning High-Rank Parameters with the Delta of
 * Low-Rank Matrices", arXiv:2309.02411, Algorithm 1): A and B train as in LoRA, and from update
 * step K on the frozen weight also moves by the change of the low-rank product, {@code W ← W + λ·(s
 * B_{t+1}A_{t+1} − s B_tA_t)}, with no gradient or optimizer state for W.
 *
 * <p>Here the base is shared read-only by every adapter of an executor, so each module keeps its
 * own dense ΔW [out, in] (zero at init, {@link LoraWeights.Module#delta}) and its branch computes
 * {@code y += ΔW x + s·B·A·x}; backward adds {@code ΔWᵀ dy} to dx (ΔW gets no gradient). The update
 * runs in {@link #afterOptimizerStep} from copies of A and B taken in {@link #beforeOptimizerStep},
 * as {@code ΔW += λ s [(B' − B) A + B' (A' − A)]}, which equals λ (s B'A' − s BA) without
 * subtracting two large products.
 *
 * <p>Choices, as the paper: λ = {@value #UPDATE_RATIO} (its update ratio); no dropout on the branch
 * (§4: it would break ∂L/∂W = ∂L/∂(BA)), so {@link LoraConfig} refuses dropout for this method. The
 * paper starts the W updates after K = 500 steps of runs thousands of steps long; K here is {@code
 * min(500, totalSteps / 10)} (the default warmup length), so short sweeps still exercise the
 * method: the update of step t (0-based) applies when t ≥ K.
 *
 * <p>PEFT has no Delta-LoRA format: the adapter saves with its ΔW under {@code peft_type
 * "DELTA_LORA"} (which PEFT refuses rather than misread) and {@code lora-pipeline merge} turns it
 * into a plain checkpoint {@code W + ΔW + s·B·A} ({@link #merged}).
 */
final class DeltaLoraVariant implements LoraVariant {

  /** λ, the paper's update ratio. */
  static final double UPDATE_RATIO = 0.5;

  /** The paper's start step K, capped for short runs by {@link #startStep}. */
  static final int PAPER_START_STEP = 500;

  /** The PEFT-style state-dict factor name of ΔW in the saved adapter. */
  static final String DELTA = "delta_weight";

  /** K for a run of {@code totalSteps}: min(500, totalSteps / 10). */
  static long startStep(int totalSteps) {
    return Math.min(PAPER_START_STEP, totalSteps / 10);
  }

  @Override
  public boolean keepsDenseDelta() {
    return true;
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  /** A and B as plain LoRA saves them, then ΔW as {@code <module>.delta_weight}. */
  @Override
  public java.util.Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    java.util.Map<String, INDArray> t = LoraVariant.super.peftTensors(w, m);
    t.put(DELTA, m.delta());
    return t;
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    INDArray u = scratch.get("u", x.rows(), m.a().rows()); // [N, r]
    Nd4j.gemm(x, m.a(), u, false, true, 1.0, 0.0); // u = x A^T
    Nd4j.gemm(u, m.b(), y, false, true, s, 1.0); // y += s u B^T
    Nd4j.gemm(x, m.delta(), y, false, true, 1.0, 1.0); // y += x ΔW^T
  }

  @Override
  public void backward(
      LoraWeights.Module m,
      double s,
      INDArray x,
      INDArray xd,
      INDArray dy,
      INDArray dx,
      INDArray dxd,
      Scratch scratch) {
    INDArray u = scratch.get("u", x.rows(), m.a().rows());
    Nd4j.gemm(dy, u, m.gradB(), true, false, s, 1.0); // dB += s dy^T u
    INDArray g = scratch.get("g", x.rows(), m.a().rows()); // [N, r]
    Nd4j.gemm(dy, m.b(), g, false, false, 1.0, 0.0); // g = dy B
    Nd4j.gemm(g, x, m.gradA(), true, false, s, 1.0); // dA += s g^T x
    Nd4j.gemm(g, m.a(), dx, false, false, s, 1.0); // dx += s g A
    Nd4j.gemm(dy, m.delta(), dx, false, false, 1.0, 1.0); // dx += dy ΔW
  }

  @Override
  public void beforeOptimizerStep(LoraWeights w, long step, int totalSteps) {
    if (step < startStep(totalSteps)) {
      return;
    }
    for (LoraWeights.Module m : w.modules()) {
      m.a0().assign(m.a());
      m.b0().assign(m.b());
    }
  }

  @Override
  public void afterOptimizerStep(LoraWeights w, long step, int totalSteps) {
    if (step < startStep(totalSteps)) {
      return;
    }
    for (LoraWeights.Module m : w.modules()) {
      double k = UPDATE_RATIO * w.scaling(m);
      INDArray dB = m.b0().rsubi(m.b()); // B' - B
      Nd4j.gemm(dB, m.a0(), m.delta(), false, false, k, 1.0); // ΔW += λ s (B' - B) A
      INDArray dA = m.a0().rsubi(m.a()); // A' - A
      Nd4j.gemm(m.b(), dA, m.delta(), false, false, k, 1.0); // ΔW += λ s B' (A' - A)
    }
  }

  @Override
  public INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    return LoraVariant.super.merged(m, s, w).addi(m.delta().castTo(DataType.DOUBLE));
  }
}
