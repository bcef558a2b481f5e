package io.loraspark.train.lora;

import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Delta-LoRA (Zi et al. 2023, "Delta-LoRA: Fine-Tuning High-Rank Parameters with the Delta of
 * Low-Rank Matrices", arXiv:2309.02411, Algorithm 1): A and B train as in LoRA, and from update
 * step K on the frozen weight also moves by the change of the low-rank product, {@code W_{t+1} =
 * W_t + λ·s·(B_{t+1}A_{t+1} − B_tA_t)}, with no gradient or optimizer state for W. λ and K are the
 * adapter's {@link DeltaLoraParams} (the paper's λ = 2 and K = 500, K capped at a tenth of shorter
 * runs).
 *
 * <p>Low-rank form. The updates telescope: after t &gt; K steps {@code W_t = W_0 + λ·s·(B_tA_t −
 * B_KA_K)}, where (A_K, B_K) are the factors before the update of step K. So instead of a dense ΔW
 * [out, in] per projection the module keeps that rank-r snapshot ({@link DeltaState#snapshot},
 * r·(out + in) values) and, with λ_t = λ once step K is taken and 0 before, computes
 *
 * <pre>
 *   forward:  u = x Aᵀ                                  [N, r]
 *             y += (1 + λ_t)·s · u Bᵀ − λ_t·s · (x A_Kᵀ) B_Kᵀ
 *   backward: g = dy B                                  [N, r]
 *             dB += s · dyᵀ u          dA += s · gᵀ x
 *             dx += (1 + λ_t)·s · g A − λ_t·s · (dy B_K) A_K
 * </pre>
 *
 * The λ part of the trainable branch is detached: W is frozen within a step and the paper gives it
 * no gradient (its update uses the change of A and B, not ∂L/∂W), so A and B get exactly LoRA's
 * gradients {@code s·dyᵀu}, {@code s·gᵀx}, while x gets the gradient through the whole W_t. The
 * snapshot is a {@link FrozenBranch} with weight c = −λ, switched on in {@link
 * #beforeOptimizerStep} of step K and, on resume, by {@link #restored}; the trainable branch's
 * factor is {@code (1 − c)·s}.
 *
 * <p>Step K: the update of step t (0-based) moves W when t ≥ K, so W_t = W_0 for t ≤ K. The paper's
 * Algorithm 1 writes {@code if t > K}; this is the same schedule started one step earlier, as this
 * engine always has. No dropout on the branch (the paper's §4: it would break ∂L/∂W = ∂L/∂(BA)), so
 * {@link LoraConfig} refuses dropout for this method.
 *
 * <p>Export ({@link #exportConfig}, {@link #exportFactors}): an ordinary rank-2r PEFT LoRA, {@code
 * A' = [A_T; A_K]}, {@code B' = [(1 + λ_T)·B_T, −λ_T·B_K]} with lora_alpha 2α (α·√2 with rsLoRA),
 * so PEFT's s' = s and {@code s·B'A' = W_T − W_0 + s·B_T A_T}. That form folds λ into B and cannot
 * be read back bit for bit, so checkpoints keep the training state itself ({@link #stateConfig}:
 * peft_type DELTA_LORA with λ and K, {@link #stateTensors}: A, B, A_K, B_K). Adapters saved by
 * earlier versions with their dense ΔW ({@link DeltaLoraParams#dense}) are still read, scored and
 * merged as {@code W + ΔW + s·B·A}.
 */
final class DeltaLoraVariant implements LoraVariant {

  /** The snapshot (A_K, B_K), off; an earlier version's dense ΔW [out, in] for such a config. */
  @Override
  public ModuleState newState(ModuleState.Shape shape) {
    DataType dt = shape.dt();
    if (shape.config().deltaLora().dense()) {
      return new DenseDeltaState(Nd4j.create(dt, shape.out(), shape.in()));
    }
    return new DeltaState(
        new FrozenBranch(
            Nd4j.create(dt, shape.r(), shape.in()), Nd4j.create(dt, shape.out(), shape.r())));
  }

  /** Plain LoRA's state plus the fp32 snapshot A_K [r, in], B_K [out, r]. */
  @Override
  public long stateBytes(int r, int in, int out) {
    return LoraVariant.super.stateBytes(r, in, out) + 4L * r * (in + out);
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    INDArray u = scratch.get("u", x.rows(), m.a().rows()); // [N, r]
    Nd4j.gemm(x, m.a(), u, false, true, 1.0, 0.0); // u = x A^T
    Nd4j.gemm(u, m.b(), y, false, true, liveScale(m, s), 1.0); // y += (1 + λ_t) s u B^T
    if (m.state() instanceof DeltaState d) {
      d.snapshot().forward(x, y, s, scratch); // y -= λ_t s (x A_K^T) B_K^T
    } else { // an earlier version's y += x ΔW^T
      Nd4j.gemm(x, m.state(DenseDeltaState.class).delta(), y, false, true, 1.0, 1.0);
    }
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
    Nd4j.gemm(g, m.a(), dx, false, false, liveScale(m, s), 1.0); // dx += (1 + λ_t) s g A
    if (m.state() instanceof DeltaState d) {
      d.snapshot().backward(dy, dx, s, scratch); // dx -= λ_t s (dy B_K) A_K
    } else { // dx += dy ΔW
      Nd4j.gemm(dy, m.state(DenseDeltaState.class).delta(), dx, false, false, 1.0, 1.0);
    }
  }

  /** (1 + λ_t)·s = (1 − c)·s with the snapshot's weight c = −λ_t. */
  private static double liveScale(LoraWeights.Module m, double s) {
    return m.state() instanceof DeltaState d ? (1 - d.snapshot().weight()) * s : s;
  }

  /** Takes the snapshot (A_K, B_K) before the update of step K and switches it on. */
  @Override
  public void beforeOptimizerStep(LoraWeights w, long step, int totalSteps) {
    DeltaLoraParams p = params(w);
    if (step != p.startStep(totalSteps)) {
      return;
    }
    for (LoraWeights.Module m : w.modules()) {
      FrozenBranch k = m.state(DeltaState.class).snapshot();
      k.a().assign(m.a());
      k.b().assign(m.b());
      k.switchOn(-p.updateRatio());
    }
  }

  @Override
  public void restored(LoraWeights w, long stepsTaken, int totalSteps) {
    DeltaLoraParams p = params(w);
    double c = stepsTaken > p.startStep(totalSteps) ? -p.updateRatio() : 0;
    for (LoraWeights.Module m : w.modules()) {
      m.state(DeltaState.class).snapshot().switchOn(c);
    }
  }

  private static DeltaLoraParams params(LoraWeights w) {
    DeltaLoraParams p = w.config().deltaLora();
    if (p.dense()) {
      throw new IllegalStateException(
          "a Delta-LoRA adapter saved with its dense ΔW by an earlier version can be scored and"
              + " merged but not trained further");
    }
    return p;
  }

  /** Its own type: PEFT has no Delta-LoRA format and refuses it rather than drop ΔW. */
  @Override
  public String peftType() {
    return PeftAdapterConfig.DELTA_LORA_TYPE;
  }

  /** The rank-2r plain LoRA of the export, or the config itself for an earlier dense adapter. */
  @Override
  public LoraConfig exportConfig(LoraConfig c) {
    if (c.deltaLora().dense()) {
      return c;
    }
    if (c.selection().hasPatterns()) {
      throw new IllegalArgumentException(
          "a Delta-LoRA adapter with rank_pattern or alpha_pattern cannot be exported as one"
              + " rank-2r LoRA; train it with one rank and alpha");
    }
    double alpha = c.rsLora() ? c.alpha() * Math.sqrt(2) : 2 * c.alpha(); // alpha'/r' = s
    return new LoraConfig(
        2 * c.rank(), alpha, 0, c.targets(), c.rsLora(), LoraMethod.LORA, c.selection());
  }

  @Override
  public LoraConfig stateConfig(LoraConfig c) {
    return c;
  }

  /** {A' = [A; A_K] [2r, in], B' = [(1 + λ_t)·B, −λ_t·B_K] [out, 2r]}; A, B for a dense one. */
  @Override
  public INDArray[] exportFactors(LoraWeights.Module m) {
    if (!(m.state() instanceof DeltaState d)) {
      return new INDArray[] {m.a(), m.b()};
    }
    FrozenBranch k = d.snapshot();
    INDArray b = m.b().mul(1 - k.weight());
    return new INDArray[] {Nd4j.vstack(m.a(), k.a()), Nd4j.hstack(b, k.b().mul(k.weight()))};
  }

  /** The export's lora_A and lora_B; an earlier dense adapter's A, B and ΔW. */
  @Override
  public Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    Map<String, INDArray> t = LoraVariant.super.peftTensors(w, m);
    if (m.state() instanceof DenseDeltaState d) {
      t.put(DenseDeltaState.DELTA, d.delta());
    }
    return t;
  }

  /** A, B and the snapshot's A_K, B_K, each the module's own array. */
  @Override
  public Map<String, INDArray> stateTensors(LoraWeights w, LoraWeights.Module m) {
    if (!(m.state() instanceof DeltaState d)) {
      return peftTensors(w, m);
    }
    Map<String, INDArray> t = new LinkedHashMap<>();
    t.put("lora_A.weight", m.a());
    t.put("lora_B.weight", m.b());
    t.put(DeltaState.SNAPSHOT_A, d.snapshot().a());
    t.put(DeltaState.SNAPSHOT_B, d.snapshot().b());
    return t;
  }

  /** W + s·B'A' ({@link #exportFactors}), plus ΔW for an earlier dense adapter. */
  @Override
  public INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    INDArray out = LoraVariant.super.merged(m, s, w);
    return m.state() instanceof DenseDeltaState d
        ? out.addi(d.delta().castTo(DataType.DOUBLE))
        : out;
  }
}
